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

from services.records.domain import SENHistoryEvent, chain_head
from services.records.handlers import to_history_contract
from services.shared.sen_record import STATUS_WORDS, describe_event, record_at


def history_document(upn: str, events: Sequence[SENHistoryEvent], *,
                     known_at: datetime | None, as_of: date | None) -> dict[str, Any]:
    history = [to_history_contract(e, 0) for e in events]
    record = record_at(history)
    return {
        "upn": upn,
        "as_known_at": known_at.isoformat() if known_at else None,
        "as_of": as_of.isoformat() if as_of else None,
        "sen_status": record.status,
        "current_needs": [{"code": n.code.value, "rank": n.rank} for n in record.needs],
        "open_concerns": [str(c.event_id) for c in record.open_concerns()],
        "chain_head": chain_head(events),
        "events": [h.model_dump(mode="json", exclude={"notification_id"}) for h in history],
    }


def history_table(upn: str, events: Sequence[SENHistoryEvent], point: str) -> Group:
    history = [to_history_contract(e, 0) for e in events]
    record = record_at(history)
    pupil = history[-1].event.pupil
    table = Table(title=f"SEN history of {pupil.given_name} {pupil.family_name} ({upn}), {point}")
    for column in ("v", "happened", "recorded by the hub", "setting", "by", "event"):
        table.add_column(column)
    for h in history:
        table.add_row(str(h.version), h.event.occurred_at.date().isoformat(),
                      h.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), h.event.source.urn,
                      h.event.recorded_by.role, describe_event(h))
    needs = ", ".join(f"{n.rank}. {n.code.value}" for n in record.needs) or "none identified"
    summary = Text.assemble(
        ("SEN record at this point: ", "bold"), STATUS_WORDS[record.status],
        f"; needs {needs}; {len(record.open_concerns())} open concern(s); "
        f"chain head {chain_head(events)[:16]}...")
    return Group(table, summary)
