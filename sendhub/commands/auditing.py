"""Commands for auditors: a pupil's history on either time axis, the hash-chain checks,
who read what, and the auditor's report.

Every read of a pupil's record needs an authenticated auditor and a reason and is recorded in the
access log, including reads of the access log itself.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from sendhub.commands.common import (
    Reason,
    access_log,
    console,
    errors,
    fail,
    hub_settings,
    reader_for,
    records_app,
)
from services.shared.access import may_read_history


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 instant, "
                                 "e.g. 2025-06-30T17:00:00+01:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date, e.g. 2025-06-30") from None


def history(
    ctx: typer.Context,
    upn: str,
    as_known_at: Annotated[str | None, typer.Option(
        "--as-known-at", help="as the hub held it at this instant (recording time); "
        "ISO 8601, UTC when no offset")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="what had happened by this date (occurrence time), as known now")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
    reason: Reason = None,
) -> None:
    """A pupil's SEN history from the records store: now, as known at T, or as of D."""
    from sendhub.replay import history_at, history_document, history_table

    settings = hub_settings(ctx)
    if as_known_at and as_of:
        raise fail("Give --as-known-at or --as-of, not both: they are different time axes.")
    known_at = _instant(as_known_at) if as_known_at else None
    day = _day(as_of) if as_of else None
    who = reader_for(settings, reason, may_read_history, "pupils' SEN histories (auditors only)")
    entries, point = history_at(records_app(settings), upn, known_at, day)
    access_log(settings).record(who, "history", upn=upn, detail=point)
    if not entries:
        errors.print(f"No SEN history is recorded for UPN {upn} ({point}).")
        raise typer.Exit(1)
    if as_json:
        document = history_document(upn, entries, known_at=known_at, as_of=day)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console.print(history_table(upn, entries, point))


def verify(
    ctx: typer.Context,
    upn: Annotated[str | None, typer.Argument(help="one pupil; or use --all")] = None,
    every: Annotated[bool, typer.Option("--all", help="every pupil in the store")] = False,
    against_anchors: Annotated[bool, typer.Option(
        "--against-anchors", help="also compare with the chain heads held in Kafka")] = False,
) -> None:
    """Recompute pupils' hash chains and report the first broken link of each."""
    from sendhub.verifying import verify_command

    settings = hub_settings(ctx)
    if not upn and not every:
        raise fail("Name a pupil (UPN) or use --all.")
    raise typer.Exit(verify_command(settings, records_app(settings), console, upn=upn,
                                    against_anchors=against_anchors))


def access_log_command(ctx: typer.Context, upn: str, reason: Reason = None) -> None:
    """Who read a pupil's history or packets through the hub's tools, when and why."""
    from rich.table import Table

    settings = hub_settings(ctx)
    who = reader_for(settings, reason, may_read_history, "pupils' SEN histories (auditors only)")
    log = access_log(settings)
    entries = log.entries(upn)
    log.record(who, "access-log", upn=upn)
    if not entries:
        console.print(f"Nobody has read the SEN record of {upn} through the hub's tools.")
        return
    table = Table(title=f"Access log for UPN {upn}")
    for column in ("when", "who", "why", "what", "route", "packet", "detail"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.reason, e.action,
                      e.route, str(e.packet_id or ""), e.detail or "")
    console.print(table)


def report(
    ctx: typer.Context,
    upn: str,
    form: Annotated[str, typer.Option("--format", help="html")] = "html",
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    reason: Reason = None,
) -> None:
    """An auditor's report: timeline chart, statutory clocks, measured intervals, every event."""
    from sendhub.report import ChainCheck, render_report
    from services.records.chain import chain_head
    from services.records.handlers import to_history_entry
    from services.shared.clocks import LocalPolicy

    if form != "html":
        raise fail("The report is produced as --format html.")
    settings = hub_settings(ctx)
    who = reader_for(settings, reason, may_read_history, "pupils' SEN histories (auditors only)")
    records = records_app(settings)
    events = records.history_events(upn)
    if not events:
        raise fail(f"No SEN history is recorded for UPN {upn}.", 1)
    checked, broken = records.verify_pupil(upn)
    access_log(settings).record(who, "report", upn=upn)
    now = datetime.now(UTC)
    policy = LocalPolicy(concern_open_weeks=settings.policy_concern_open_weeks,
                         plan_gap_weeks=settings.policy_plan_gap_weeks)
    page = render_report([to_history_entry(e) for e in events], today=now.date(),
                         generated_at=now, actor=who.actor,
                         chain=ChainCheck(checked, chain_head(events),
                                          broken.problem if broken else None),
                         policy=policy)
    target = output or Path(f"sen-report-{upn}.html")
    target.write_text(page)
    console.print(f"Wrote the auditor's report for {upn} to {target}")
