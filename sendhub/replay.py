"""Showing a replayed history: a table for people, a JSON document for programs.

Both show the events and the SEN record they add up to, through the shared projection
that the packet builder uses, so a replay and a packet never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from contracts.inbound import where_recorded
from services.records.application import RecordsApplication
from services.records.domain import GENESIS_HASH, pupil_id_for
from services.records.handlers import to_history_entry
from services.shared.sen_record import CorrectionMark, HistoryEntry, corrections_of, record_at
from services.shared.sen_wording import STATUS_WORDS, describe_event, mark_words


def history_at(records: RecordsApplication, upn: str, known_at: datetime | None,
               day: date | None) -> tuple[list[HistoryEntry], str]:
    """A pupil's history now, as known at an instant, or as of a day, and the words for
    that point (which the access log records): one rule for the CLI and the gateway."""
    if known_at:
        events = records.replay(upn, known_at=known_at)
    elif day:
        events = records.replay(upn, as_of_day=day)
    else:
        events = records.history_events(upn)
    point = (f"as known at {known_at.isoformat()}" if known_at
             else f"as of {day.isoformat()}" if day else "now")
    return [to_history_entry(e) for e in events], point


def _chain_head(history: Sequence[HistoryEntry]) -> str:
    return (history[-1].event_hash or GENESIS_HASH) if history else GENESIS_HASH


def _entry_document(entry: HistoryEntry, mark: CorrectionMark | None = None) -> dict[str, Any]:
    """One event as recorded; `corrected` says how its setting has since corrected it,
    `refiled_from` where a misfiled entry came from."""
    return {"pupil_id": str(pupil_id_for(entry.upn)), "upn": entry.upn,
            "version": entry.version, "recorded_at": entry.recorded_at.isoformat(),
            "upn_is_temporary": entry.upn_is_temporary,
            "event": entry.event.model_dump(mode="json"),
            "previous_hash": entry.previous_hash, "event_hash": entry.event_hash,
            "corrected": None if mark is None else {
                "kind": mark.kind, "by_version": mark.version, "on": mark.on.isoformat(),
                "reason": mark.reason},
            "refiled_from": None if entry.refiled_from is None
            else entry.refiled_from.model_dump(mode="json")}


def _described(entry: HistoryEntry, marks: dict[Any, CorrectionMark]) -> str:
    """The event as recorded, with its correction's mark: the auditor sees everything."""
    mark = marks.get(entry.event.event_id)
    text = describe_event(entry)
    if entry.refiled_from is not None:
        text += f" [moved here from another pupil's history, v{entry.refiled_from.version}]"
    return f"{text} [{mark_words(mark)}]" if mark else text


def history_document(upn: str, history: Sequence[HistoryEntry], *,
                     known_at: datetime | None, as_of: date | None) -> dict[str, Any]:
    record = record_at(history)
    marks = corrections_of(history)
    return {
        "upn": upn,
        "as_known_at": known_at.isoformat() if known_at else None,
        "as_of": as_of.isoformat() if as_of else None,
        "sen_status": record.status,
        "current_needs": [{"code": n.code.value, "rank": n.rank} for n in record.needs],
        "open_concerns": [str(c.event_id) for c in record.open_concerns()],
        "chain_head": _chain_head(history),
        "events": [_entry_document(h, marks.get(h.event.event_id)) for h in history],
    }


def history_table(upn: str, history: Sequence[HistoryEntry], point: str) -> Group:
    record = record_at(history)
    marks = corrections_of(history)
    pupil = history[-1].event.pupil
    table = Table(title=f"SEN history of {pupil.given_name} {pupil.family_name} ({upn}), {point}")
    for column in ("v", "happened", "recorded by the hub", "setting", "by", "event"):
        table.add_column(column)
    for h in history:
        table.add_row(str(h.version), h.event.occurred_at.date().isoformat(),
                      h.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), where_recorded(h.event),
                      h.event.recorded_by.role, Text(_described(h, marks)))
    needs = ", ".join(f"{n.rank}. {n.code.value}" for n in record.needs) or "none identified"
    summary = Text.assemble(
        ("SEN record at this point: ", "bold"), STATUS_WORDS[record.status],
        f"; needs {needs}; {len(record.open_concerns())} open concern(s); "
        f"chain head {_chain_head(history)[:16]}...")
    return Group(table, summary)
