"""`sendhub`: run the services, publish school events, and read what the hub holds.

Entry point: thin; builds settings once (SENDHUB_* variables) and calls the services'
entry points or application layers.
"""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from sendhub.topics_reader import read_topic
from services.shared.logs import configure_logging
from services.shared.settings import HubSettings

app = typer.Typer(help="SEN transfer hub: the services and the tools around them.",
                  no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)


class ServiceName(StrEnum):
    ingest = "ingest"
    records = "records"
    transfers = "transfers"


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
        errors.print(f"[red]No such file: {file}[/red]")
        raise typer.Exit(2)
    sent = publish_lines(settings, file.read_bytes().splitlines(), progress=True)
    console.print(f"Sent {sent.count} event(s) to {settings.topics.school_events}"
                  + (f" ({sent.unkeyed} without a readable UPN, sent unkeyed)" if sent.unkeyed else ""))


@app.command()
def history(
    upn: str,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """A pupil's whole SEN history, in recorded order, read from the records store."""
    from services.records.entrypoint import build_application
    from services.records.handlers import to_history_contract

    settings = HubSettings()
    records = build_application(settings)
    events = records.history_events(upn)
    if not events:
        errors.print(f"No SEN history is recorded for UPN {upn}.")
        raise typer.Exit(1)
    contracts = [to_history_contract(e, 0) for e in events]
    if as_json:
        for c in contracts:
            sys.stdout.write(c.model_dump_json(exclude={"notification_id"}) + "\n")
        return
    pupil = contracts[-1].event.pupil
    table = Table(title=f"SEN history of {pupil.given_name} {pupil.family_name} ({upn})")
    for column in ("v", "occurred", "recorded", "setting", "by", "event"):
        table.add_column(column)
    from services.transfers.domain import describe_event

    for c in contracts:
        table.add_row(str(c.version), c.event.occurred_at.date().isoformat(),
                      c.recorded_at.strftime("%Y-%m-%d %H:%M"), c.event.source.urn,
                      c.event.recorded_by.role, describe_event(c))
    console.print(table)


@app.command()
def inbox(
    receiver: Annotated[str, typer.Argument(help="urn-<URN> or ukprn-<UKPRN>")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The transfer packets in a receiving setting's inbox topic."""
    from sendhub.summaries import packet_summary

    settings = HubSettings()
    seen: dict[str, TransferPacketV1] = {}
    for r in read_topic(settings.kafka_bootstrap, settings.topics.inbox(receiver)):
        packet = TransferPacketV1.model_validate_json(r.value, extra="ignore")
        seen[str(packet.packet_id)] = packet
    if as_json:
        for p in seen.values():
            sys.stdout.write(p.model_dump_json() + "\n")
        return
    if not seen:
        console.print(f"The inbox of {receiver} is empty.")
        return
    for p in seen.values():
        console.print(packet_summary(p))


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
) -> None:
    """The whole flow on a realistic scenario: services up, events in, packets out."""
    from sendhub.demo import run_demo

    raise typer.Exit(run_demo(HubSettings(), console, keep_infrastructure=keep_running))


if __name__ == "__main__":
    app()
