"""Commands for whoever runs the hub: the services, publishing school events, where
packets stand, the settings registry, dead letters, the demo and the database.

None of these reads a pupil's record for a person, so none needs an actor or a reason
(`transfers` shows packets by delivery state, not their content).
"""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sendhub.commands.common import console, errors, fail, hub_settings

settings_app = typer.Typer(help="The settings registry: schools and post-16 providers.",
                           no_args_is_help=True)
db_app = typer.Typer(help="The hub's database: its schema, and sealing rows stored before "
                      "sealing existed.", no_args_is_help=True)


class ServiceName(StrEnum):
    ingest = "ingest"
    records = "records"
    transfers = "transfers"
    gateway = "gateway"
    admin = "admin"


def serve(ctx: typer.Context, service: ServiceName) -> None:
    """Run one service until stopped (Ctrl-C or SIGTERM); /healthz, /readyz and /metrics
    on SENDHUB_HTTP_PORT (9101 ingest, 9102 records, 9103 transfers by default). The
    gateway serves HTTPS on SENDHUB_GATEWAY_URL (default https://127.0.0.1:8443); admin,
    the operator's console, on SENDHUB_ADMIN_URL (default https://127.0.0.1:8444), as the
    database owner and the operator on Kafka, printing a one-time sign-in link."""
    from services.shared.logs import configure_logging
    from services.shared.serving import HttpPortUnavailable, bind, serve

    if service is ServiceName.admin:
        from sendhub.gateway.server import GatewayConfigError
        from sendhub.web.admin_app import serve_admin

        configure_logging(hub_settings(ctx).log_level)
        try:  # the owner's settings, as `sendhub principals` has them
            asyncio.run(serve_admin(hub_settings(ctx)))
        except (GatewayConfigError, HttpPortUnavailable) as exc:
            raise fail(str(exc), code=3) from None
        return
    settings = hub_settings(ctx).for_service(service.value)  # its own database role
    configure_logging(settings.log_level)
    if service is ServiceName.gateway:
        from sendhub.gateway.server import GatewayConfigError, serve_gateway

        try:
            asyncio.run(serve_gateway(settings))
        except (GatewayConfigError, HttpPortUnavailable) as exc:
            raise fail(str(exc), code=3) from None
        return
    if service is ServiceName.ingest:
        from services.ingest.entrypoint import build_app
    elif service is ServiceName.records:
        from services.records.entrypoint import build_app
    else:
        from services.transfers.entrypoint import build_app
    try:  # bound first: a port in use is said before the service connects to anything
        sock = bind(settings.http_host, settings.http_port_for(service.value))
    except HttpPortUnavailable as exc:
        raise fail(str(exc), code=3) from None
    asyncio.run(serve(build_app(settings), service.value, settings, sock))


def publish(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON lines: one school event a line")],
) -> None:
    """Send school events (JSON lines) onto sen.school-events.v1, keyed by UPN."""
    from sendhub.publishing import publish_lines

    settings = hub_settings(ctx)
    if not file.exists():
        raise fail(f"No such file: {file}")
    sent = publish_lines(settings, file.read_bytes().splitlines(), progress=True)
    console.print(f"Sent {sent.count} event(s) to {settings.topics.school_events}"
                  + (f" ({sent.unkeyed} without a readable UPN, sent unkeyed)" if sent.unkeyed else ""))


def transfers(
    ctx: typer.Context,
    overdue: Annotated[bool, typer.Option("--overdue", help="only packets with no receipt "
                                          "past the re-send period")] = False,
    receiver: Annotated[str | None, typer.Option("--receiver")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Packets by delivery state, for admissions and the local authority."""
    from sendhub.summaries import deliveries_table
    from services.shared.pupil_keys import pupil_keys_for
    from services.shared.school_terms_store import load_calendar
    from services.transfers.application import TransfersApplication

    settings = hub_settings(ctx)
    store = TransfersApplication.on_postgres(settings.database_conninfo,
                           keys=pupil_keys_for(settings),
                           resend_after_school_days=settings.resend_after_school_days,
                           calendar=load_calendar(settings.database_conninfo))
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


@settings_app.command("import")
def settings_import(ctx: typer.Context,
                    file: Annotated[Path, typer.Argument(help="CSV in the DfE establishment "
                                                         "data layout")]) -> None:
    """Load schools and post-16 providers into the registry (new ones added, known updated)."""
    from services.shared.pupil_keys import pupil_keys_for
    from services.transfers.application import TransfersApplication
    from services.transfers.registry import (
        RegistryFileError,
        imported_message,
        parse_registry_csv,
        skipped_message,
    )

    if not file.exists():
        raise fail(f"No such file: {file}")
    try:
        found, problems = parse_registry_csv(file.read_text(encoding="utf-8-sig"))
    except RegistryFileError as exc:
        raise fail(str(exc)) from None
    for problem in problems:
        errors.print(f"[yellow]{skipped_message(str(file), problem)}[/yellow]")
    settings = hub_settings(ctx)
    store = TransfersApplication.on_postgres(settings.database_conninfo,
                                             keys=pupil_keys_for(settings))
    try:
        count = store.import_settings(found)
    finally:
        store.close()
    console.print(imported_message(str(file), count, len(problems)))
    if problems:
        raise typer.Exit(1)


@settings_app.command("list")
def settings_list(ctx: typer.Context) -> None:
    """The settings the registry knows."""
    from rich.table import Table

    from services.shared.pupil_keys import pupil_keys_for
    from services.transfers.application import TransfersApplication

    settings = hub_settings(ctx)
    store = TransfersApplication.on_postgres(settings.database_conninfo,
                                             keys=pupil_keys_for(settings))
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


def rejected(ctx: typer.Context,
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Dead letters: what was refused, why, and where it came from."""
    from contracts.dead_letter import DeadLetterV1
    from sendhub.summaries import dead_letter_summary
    from sendhub.topics_reader import read_topic

    settings = hub_settings(ctx)
    letters = [DeadLetterV1.model_validate_json(r.value)
               for r in read_topic(settings, settings.topics.rejected)]
    if as_json:
        for letter in letters:
            sys.stdout.write(letter.model_dump_json() + "\n")
        return
    if not letters:
        console.print("Nothing has been rejected.")
    for letter in letters:
        console.print(dead_letter_summary(letter))


def demo(
    ctx: typer.Context,
    keep_running: Annotated[bool, typer.Option(help="leave Kafka and PostgreSQL running")] = False,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="drop and recreate the hub's database first (all its data is lost)")] = False,
) -> None:
    """The whole flow on a realistic scenario: services up, events in, packets out."""
    from sendhub.demo import run_demo

    raise typer.Exit(run_demo(hub_settings(ctx), console, keep_infrastructure=keep_running,
                              fresh=fresh))


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the hub's database to the newest schema revision (the services expect it)."""
    # services.shared.database arrives with the migrations branch; until it is merged
    # here, mypy cannot see it and this command cannot run.
    from services.records.persistence import plain_events
    from services.shared.database import upgrade
    from services.transfers.postgres import plain_rows

    settings = hub_settings(ctx)
    revision = upgrade(settings)
    name = (settings.database_url.path or "").lstrip("/")
    console.print(f"Database {name} is at revision {revision}")
    # revisions 0007 and 0008 cannot seal them: the pupils' keys are not in SQL
    for left, what in ((plain_events(settings.database_conninfo), "records (history)"),
                       (plain_rows(settings.database_conninfo), "transfers")):
        if left:
            console.print(f"{left} {what} row(s) stored before sealing are still plain: "
                          "seal them with `sendhub db seal-existing`")


@db_app.command("seal-existing")
def db_seal_existing(ctx: typer.Context) -> None:
    """Seal with each pupil's data key the rows stored before sealing existed, which `db
    upgrade` leaves plain: records' history events (before revision 0007) and transfers'
    histories and packets (before 0008); an erased pupil's rows lose their plain content.
    As the database owner, with the master key; safe to run again, beside the services."""
    from services.records.application import seal_stored_history
    from services.shared.pupil_keys import pupil_keys_for
    from services.transfers.postgres import seal_stored_rows

    settings = hub_settings(ctx)
    keys = pupil_keys_for(settings)
    try:
        history = seal_stored_history(settings, keys)
        done = seal_stored_rows(settings.database_conninfo, keys)
    finally:
        keys.close()
    console.print(f"Sealed {history.sealed} records (history) row(s) stored before sealing"
                  + (f"; {history.shredded} of erased pupils shredded"
                     if history.shredded else "") + ".")
    if history.unreadable:
        console.print(f"[yellow]{history.unreadable} of them did not read as events (altered "
                      "while plain?): sealed as they were; `sendhub verify` reports "
                      "them[/yellow]")
    console.print(f"Sealed {done.sealed} transfers row(s) stored before sealing"
                  + (f"; {done.shredded} of erased pupils shredded" if done.shredded else "")
                  + ".")
