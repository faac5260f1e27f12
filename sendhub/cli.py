"""`sendhub`: run the services, publish school events, and read what the hub holds.

Entry point: thin; builds settings once (SENDHUB_* variables) and calls the services'
entry points or application layers. Every read of a pupil's history or packet needs an
actor and a reason, and is recorded in the access log.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from sendhub.topics_reader import read_topic
from services.shared.logs import configure_logging
from services.shared.settings import HubSettings

if TYPE_CHECKING:
    from sendhub.access_log import AccessLog, Reader
    from services.records.application import RecordsApplication

app = typer.Typer(help="SEN transfer hub: the services and the tools around them.",
                  no_args_is_help=True, add_completion=False)
settings_app = typer.Typer(help="The settings registry: schools and post-16 providers.",
                           no_args_is_help=True)
app.add_typer(settings_app, name="settings")
console = Console()
errors = Console(stderr=True)

Actor = Annotated[str | None, typer.Option(
    "--actor", help="who is reading (default: SENDHUB_ACTOR); recorded in the access log")]
Reason = Annotated[str | None, typer.Option(
    "--reason", help="why this record is being read; recorded in the access log")]


class ServiceName(StrEnum):
    ingest = "ingest"
    records = "records"
    transfers = "transfers"


class PacketForm(StrEnum):
    json = "json"
    ctf = "ctf"
    html = "html"


class InboxForm(StrEnum):
    summary = "summary"
    json = "json"
    ctf = "ctf"
    html = "html"


def fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def reader_for(settings: HubSettings, actor: str | None, reason: str | None) -> Reader:
    from sendhub.access_log import AccessRefused, Reader

    try:
        return Reader.of(actor or settings.actor, reason)
    except AccessRefused as exc:
        raise fail(str(exc)) from None


def access_log(settings: HubSettings) -> AccessLog:
    from sendhub.access_log import AccessLog

    return AccessLog(settings.database_conninfo)


def records_app(settings: HubSettings) -> RecordsApplication:
    from services.records.entrypoint import build_application

    return build_application(settings)


@app.command()
def serve(service: ServiceName) -> None:
    """Run one service until stopped (Ctrl-C or SIGTERM)."""
    settings = HubSettings()
    configure_logging(settings.log_level)
    if service is ServiceName.ingest:
        from services.ingest.entrypoint import build_app
    elif service is ServiceName.records:
        from services.records.entrypoint import build_app
    else:
        from services.transfers.entrypoint import build_app
    asyncio.run(build_app(settings).run())


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(help="JSON lines: one school event a line")],
) -> None:
    """Send school events (JSON lines) onto sen.school-events.v1, keyed by UPN."""
    from sendhub.publishing import publish_lines

    settings = HubSettings()
    if not file.exists():
        raise fail(f"No such file: {file}")
    sent = publish_lines(settings, file.read_bytes().splitlines(), progress=True)
    console.print(f"Sent {sent.count} event(s) to {settings.topics.school_events}"
                  + (f" ({sent.unkeyed} without a readable UPN, sent unkeyed)" if sent.unkeyed else ""))


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


@app.command()
def history(
    upn: str,
    as_known_at: Annotated[str | None, typer.Option(
        "--as-known-at", help="as the hub held it at this instant (recording time); "
        "ISO 8601, UTC when no offset")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="what had happened by this date (occurrence time), as known now")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """A pupil's SEN history from the records store: now, as known at T, or as of D."""
    from sendhub.replay import history_document, history_table
    from services.records.handlers import to_history_entry

    settings = HubSettings()
    if as_known_at and as_of:
        raise fail("Give --as-known-at or --as-of, not both: they are different time axes.")
    known_at = _instant(as_known_at) if as_known_at else None
    day = _day(as_of) if as_of else None
    who = reader_for(settings, actor, reason)
    records = records_app(settings)
    if known_at:
        events = records.replay(upn, known_at=known_at)
    elif day:
        events = records.replay(upn, as_of_day=day)
    else:
        events = records.history_events(upn)
    point = (f"as known at {known_at.isoformat()}" if known_at
             else f"as of {day.isoformat()}" if day else "now")
    access_log(settings).record(who, "history", upn=upn, detail=point)
    entries = [to_history_entry(e) for e in events]
    if not entries:
        errors.print(f"No SEN history is recorded for UPN {upn} ({point}).")
        raise typer.Exit(1)
    if as_json:
        document = history_document(upn, entries, known_at=known_at, as_of=day)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console.print(history_table(upn, entries, point))


@app.command()
def packet(
    packet_id: UUID,
    form: Annotated[PacketForm, typer.Option("--format", help="json, ctf (XML) or html")] = (
        PacketForm.json),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write to this file")] = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="rebuild it from the records store and show that it matches")] = False,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """One transfer packet, as sent, in the form a receiving setting uses."""
    from services.transfers.application import TransfersApplication
    from services.transfers.forms import render

    settings = HubSettings()
    who = reader_for(settings, actor, reason)
    store = TransfersApplication.on_postgres(settings.database_conninfo)
    try:
        sent = store.packet(packet_id)
        superseded = store.packet(sent.supersedes) if sent and sent.supersedes else None
    finally:
        store.close()
    if sent is None:
        raise fail(f"No packet {packet_id} has been built by this hub.", 1)
    access_log(settings).record(who, "packet-rebuild" if rebuild else f"packet-{form.value}",
                                upn=sent.pupil.upn, packet_id=packet_id)
    if rebuild:
        raise typer.Exit(_rebuild(settings, sent, superseded))
    body = render(sent, form.value)
    if output:
        output.write_bytes(body)
        console.print(f"Wrote packet {packet_id} ({form.value}) to {output}")
    else:
        sys.stdout.buffer.write(body)


def _rebuild(settings: HubSettings, sent: TransferPacketV1,
             superseded: TransferPacketV1 | None) -> int:
    from services.records.handlers import to_history_entry
    from services.transfers.packets import differences, rebuild_transfer_packet

    events = records_app(settings).history_events(sent.pupil.upn)
    history = [to_history_entry(e) for e in events]
    rebuilt = rebuild_transfer_packet(sent, history, superseded)
    differ = differences(sent, rebuilt)
    if differ:
        console.print(f"[red]The rebuilt packet differs from what was sent in: "
                      f"{', '.join(differ)}[/red]")
        if sent.builder_version != rebuilt.builder_version:
            console.print(f"It was built by packet rules version {sent.builder_version or 0}, "
                          f"rebuilt by version {rebuilt.builder_version}: the difference may be "
                          "wording; compare the history itself with `sendhub verify`.")
        return 1
    console.print(f"[green]Rebuilt packet {sent.packet_id} from history versions 1.."
                  f"{sent.history_version}: it matches what was sent, field for field "
                  f"(chain head {sent.history_chain_head}).[/green]")
    return 0


@app.command()
def inbox(
    receiver: Annotated[str, typer.Argument(help="urn-<URN>, ukprn-<UKPRN> or lost-pupils")],
    form: Annotated[InboxForm, typer.Option("--format")] = InboxForm.summary,
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="ctf: a file; html: a folder (one page per packet)")] = None,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """The transfer packets in a receiving setting's inbox topic, in the form it uses."""
    from sendhub.summaries import packet_summary
    from services.transfers.forms import render, render_ctf_file

    settings = HubSettings()
    who = reader_for(settings, actor, reason)
    form = InboxForm.json if as_json else form
    seen: dict[str, TransferPacketV1] = {}
    for r in read_topic(settings.kafka_bootstrap, settings.topics.inbox(receiver)):
        packet = TransferPacketV1.model_validate_json(r.value, extra="ignore")
        seen[str(packet.packet_id)] = packet
    log = access_log(settings)
    for p in seen.values():
        log.record(who, f"inbox-{form.value}", upn=p.pupil.upn, packet_id=p.packet_id,
                   detail=receiver)
    if not seen:
        console.print(f"The inbox of {receiver} is empty.")
        return
    packets = list(seen.values())
    if form is InboxForm.summary:
        for p in packets:
            console.print(packet_summary(p))
    elif form is InboxForm.json:
        for p in packets:
            sys.stdout.write(p.model_dump_json() + "\n")
    elif form is InboxForm.ctf:
        body = render_ctf_file(packets)
        if output:
            output.write_bytes(body)
            console.print(f"Wrote {len(packets)} pupil(s) as one CTF to {output}")
        else:
            sys.stdout.buffer.write(body)
    else:
        folder = output or Path(f"inbox-{receiver}")
        folder.mkdir(parents=True, exist_ok=True)
        for p in packets:
            (folder / f"{p.packet_id}.html").write_bytes(render(p, "html"))
        console.print(f"Wrote {len(packets)} readable packet(s) to {folder}/")


@app.command()
def transfers(
    overdue: Annotated[bool, typer.Option("--overdue", help="only packets with no receipt "
                                          "past the re-send period")] = False,
    receiver: Annotated[str | None, typer.Option("--receiver")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Packets by delivery state, for admissions and the local authority."""
    from sendhub.summaries import deliveries_table
    from services.transfers.application import TransfersApplication

    settings = HubSettings()
    store = TransfersApplication.on_postgres(
        settings.database_conninfo, resend_after_school_days=settings.resend_after_school_days)
    try:
        rows = store.deliveries(receiver=receiver, overdue_only=overdue)
    finally:
        store.close()
    if as_json:
        for d in rows:
            sys.stdout.write(json.dumps({
                "packet_id": str(d.packet_id), "upn": d.upn, "receiver": d.receiver,
                "kind": d.kind, "state": d.delivery.state, "attempts": d.delivery.attempts,
                "reason": d.delivery.reason, "overdue": d.overdue,
                "school_days_waiting": d.school_days_waiting,
                "supersedes": str(d.supersedes) if d.supersedes else None}) + "\n")
        return
    if not rows:
        console.print("No packets" + (" overdue" if overdue else "")
                      + (f" for {receiver}" if receiver else "") + ".")
        return
    console.print(deliveries_table(rows, settings.resend_after_school_days))


@app.command()
def receipt(
    packet_id: UUID,
    receiver: Annotated[str, typer.Option("--receiver", help="urn-<URN> or ukprn-<UKPRN>")],
    status: Annotated[str, typer.Option("--status", help="received, accepted or rejected")],
    reason: Annotated[str | None, typer.Option("--reason", help="why it was rejected")] = None,
) -> None:
    """Send a receipt for a packet (for receivers without a system that does it)."""
    from pydantic import ValidationError

    from contracts.receipts import PacketReceiptV1
    from sendhub.publishing import publish_receipt

    settings = HubSettings()
    try:
        message = PacketReceiptV1.model_validate({
            "packet_id": packet_id, "receiver": receiver, "status": status, "reason": reason,
            "at": datetime.now(UTC)})
    except ValidationError as exc:
        raise fail("; ".join(e["msg"] for e in exc.errors())) from None
    publish_receipt(settings, message)
    console.print(f"Receipt sent: {receiver} {status} packet {packet_id}")


@app.command()
def verify(
    upn: Annotated[str | None, typer.Argument(help="one pupil; or use --all")] = None,
    every: Annotated[bool, typer.Option("--all", help="every pupil in the store")] = False,
    against_anchors: Annotated[bool, typer.Option(
        "--against-anchors", help="also compare with the chain heads held in Kafka")] = False,
) -> None:
    """Recompute pupils' hash chains and report the first broken link of each."""
    from sendhub.verifying import verify_command

    settings = HubSettings()
    if not upn and not every:
        raise fail("Name a pupil (UPN) or use --all.")
    raise typer.Exit(verify_command(settings, records_app(settings), console, upn=upn,
                                    against_anchors=against_anchors))


@app.command("access-log")
def access_log_command(upn: str, actor: Actor = None, reason: Reason = None) -> None:
    """Who read a pupil's history or packets through the hub's tools, when and why."""
    settings = HubSettings()
    who = reader_for(settings, actor, reason)
    log = access_log(settings)
    entries = log.entries(upn)
    log.record(who, "access-log", upn=upn)
    if not entries:
        console.print(f"Nobody has read the SEN record of {upn} through the hub's tools.")
        return
    table = Table(title=f"Access log for UPN {upn}")
    for column in ("when", "who", "why", "what", "packet", "detail"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.reason, e.action,
                      str(e.packet_id or ""), e.detail or "")
    console.print(table)


@app.command()
def report(
    upn: str,
    form: Annotated[str, typer.Option("--format", help="html")] = "html",
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """An auditor's report: timeline chart, measured and statutory intervals, every event."""
    from sendhub.report import ChainCheck, render_report
    from services.records.domain import chain_head
    from services.records.handlers import to_history_entry

    if form != "html":
        raise fail("The report is produced as --format html.")
    settings = HubSettings()
    who = reader_for(settings, actor, reason)
    records = records_app(settings)
    events = records.history_events(upn)
    if not events:
        raise fail(f"No SEN history is recorded for UPN {upn}.", 1)
    checked, broken = records.verify_pupil(upn)
    access_log(settings).record(who, "report", upn=upn)
    now = datetime.now(UTC)
    page = render_report([to_history_entry(e) for e in events], today=now.date(),
                         generated_at=now, actor=who.actor,
                         chain=ChainCheck(checked, chain_head(events),
                                          broken.problem if broken else None))
    target = output or Path(f"sen-report-{upn}.html")
    target.write_text(page)
    console.print(f"Wrote the auditor's report for {upn} to {target}")


@settings_app.command("import")
def settings_import(file: Annotated[Path, typer.Argument(help="CSV in the DfE establishment "
                                                          "data layout")]) -> None:
    """Load schools and post-16 providers into the registry (new ones added, known updated)."""
    from services.transfers.application import TransfersApplication
    from services.transfers.registry import RegistryFileError, parse_registry_csv

    if not file.exists():
        raise fail(f"No such file: {file}")
    try:
        found, problems = parse_registry_csv(file.read_text(encoding="utf-8-sig"))
    except RegistryFileError as exc:
        raise fail(str(exc)) from None
    for problem in problems:
        errors.print(f"[yellow]{file}:{problem.line}: skipped: {problem.message}[/yellow]")
    store = TransfersApplication.on_postgres(HubSettings().database_conninfo)
    try:
        count = store.import_settings(found)
    finally:
        store.close()
    console.print(f"Imported {count} setting(s) from {file}"
                  + (f"; {len(problems)} row(s) skipped" if problems else ""))
    if problems:
        raise typer.Exit(1)


@settings_app.command("list")
def settings_list() -> None:
    """The settings the registry knows."""
    from services.transfers.application import TransfersApplication

    store = TransfersApplication.on_postgres(HubSettings().database_conninfo)
    try:
        known = store.registered_settings()
    finally:
        store.close()
    if not known:
        console.print("The registry is empty: load it with `sendhub settings import FILE`.")
        return
    table = Table(title=f"Settings registry ({len(known)})")
    for column in ("URN", "UKPRN", "LAESTAB", "name", "phase", "trust or LA"):
        table.add_column(column)
    for s in known:
        table.add_row(s.urn, s.ukprn or "", f"{s.la_code or '---'}{s.establishment_number or '----'}",
                      s.name, s.phase, s.belongs_to)
    console.print(table)


@app.command()
def rejected(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Dead letters: what was refused, why, and where it came from."""
    from sendhub.summaries import dead_letter_summary

    settings = HubSettings()
    letters = [DeadLetterV1.model_validate_json(r.value)
               for r in read_topic(settings.kafka_bootstrap, settings.topics.rejected)]
    if as_json:
        for letter in letters:
            sys.stdout.write(letter.model_dump_json() + "\n")
        return
    if not letters:
        console.print("Nothing has been rejected.")
    for letter in letters:
        console.print(dead_letter_summary(letter))


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option(help="leave Kafka and PostgreSQL running")] = False,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="drop and recreate the hub's database first (all its data is lost)")] = False,
) -> None:
    """The whole flow on a realistic scenario: services up, events in, packets out."""
    from sendhub.demo import run_demo

    raise typer.Exit(run_demo(HubSettings(), console, keep_infrastructure=keep_running,
                              fresh=fresh))


def main() -> None:
    """The `sendhub` command: infrastructure that cannot be reached is a clear message
    (exit 3), not a traceback."""
    import psycopg
    from eventsourcing.persistence import OperationalError as StoreUnreachable
    from kafka.errors import KafkaError
    from psycopg_pool import PoolTimeout

    from services.shared.binding import WrongCluster

    try:
        app(standalone_mode=True)
    except WrongCluster as exc:
        errors.print(f"[red]Refusing to start: {exc}[/red]")
        sys.exit(3)
    except (psycopg.OperationalError, StoreUnreachable, PoolTimeout) as exc:
        settings = HubSettings()
        errors.print(f"[red]PostgreSQL cannot be reached at {settings.database_url.hosts()[0]['host']}"
                     f":{settings.database_url.hosts()[0]['port']} ({str(exc).splitlines()[0]}). "
                     "Start it with deploy/local/up, or set SENDHUB_DATABASE_URL.[/red]")
        sys.exit(3)
    except KafkaError as exc:
        errors.print(f"[red]Kafka cannot be reached at {HubSettings().kafka_bootstrap} ({exc}). "
                     "Start it with deploy/local/up, or set SENDHUB_KAFKA_BOOTSTRAP.[/red]")
        sys.exit(3)


if __name__ == "__main__":
    main()
