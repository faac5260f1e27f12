"""`sendhub principals`: the operator's commands to add, list, rotate and revoke the
principals the hub knows, and to apply them to the broker (`sync`).

They run with the operator's Kafka credentials (operator.env) and the database owner's
connection, so only whoever holds those can run them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sendhub.commands.common import console, fail, hub_settings

principals_app = typer.Typer(
    help="Who may connect and what each may do (schools, post-16 providers, connectors, "
    "local authorities, trusts, auditors).", no_args_is_help=True)

KINDS = "school URN, post16 UKPRN, connector NAME, la CODE, trust NAME, auditor NAME"


@principals_app.command("add")
def add(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help=KINDS)],
    identifier: Annotated[str, typer.Argument(help="URN, UKPRN, LA code or name")],
    acts_for: Annotated[list[str] | None, typer.Option(
        "--acts-for", help="a connector: a URN it may send events for (repeat)")] = None,
    kafka: Annotated[bool, typer.Option(
        "--kafka", help="also give it Kafka credentials and its own topics")] = False,
    token: Annotated[bool, typer.Option(
        "--token", help="issue a bearer token for the HTTPS gateway, printed once, alone on "
        "the last line")] = False,
    days: Annotated[int, typer.Option(help="how long the token is valid")] = 90,
) -> None:
    """Add a principal (or update what a connector acts for); idempotent."""
    from sendhub.principals_admin import KafkaAccess, SyncReport, kafka_user
    from services.shared.access import Kind, Principal, PrincipalError, slug
    from services.shared.principals import PrincipalStore

    settings = hub_settings(ctx)
    try:
        principal = Principal(Kind(kind), slug(identifier) if kind in ("trust", "connector",
                              "auditor") else identifier, frozenset(acts_for or ()))
    except ValueError as exc:
        message = str(exc) if isinstance(exc, PrincipalError) else (
            f"unknown kind {kind!r}: one of {KINDS}")
        raise fail(message, 2) from None
    if principal.kind in (Kind.service, Kind.operator):
        raise fail("services and the operator are built in; `sendhub principals sync` "
                   "gives them their credentials", 2)
    store = PrincipalStore(settings.database_conninfo)
    store.add(principal, uses_kafka=kafka)
    console.print(f"principal {principal.name} ({principal.kind.value})"
                  + (f", acts for {', '.join(sorted(principal.acts_for))}"
                     if principal.acts_for else ""))
    if kafka:
        access = KafkaAccess(settings)
        try:
            access.apply(principal, SyncReport())
        finally:
            access.close()
        user = kafka_user(settings, principal)
        console.print(f"Kafka user {user}; its password is in "
                      f"{settings.credentials_dir / (user + '.password')}")
    if token:
        issued = store.issue_token(principal.name, days=days)
        console.print(f"token for {principal.name}, valid until {issued.expires_at:%Y-%m-%d}; "
                      "shown once, keep it secret:")
        sys.stdout.write(issued.token + "\n")


@principals_app.command("list")
def list_principals(ctx: typer.Context) -> None:
    """Every principal, what it acts for, and whether it is revoked."""
    from rich.table import Table

    from services.shared.principals import PrincipalStore

    store = PrincipalStore(hub_settings(ctx).database_conninfo)
    table = Table("principal", "kind", "acts for", "Kafka", "added", "revoked")
    for s in store.all():
        table.add_row(s.principal.name, s.principal.kind.value,
                      ", ".join(sorted(s.principal.acts_for)) or "-",
                      "yes" if s.uses_kafka else "-", f"{s.created_at:%Y-%m-%d}",
                      f"{s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "-")
    console.print(table)


@principals_app.command("revoke")
def revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="the principal's name, e.g. school-100001")]) -> None:
    """Revoke a principal: its tokens stop working on the next request, its Kafka
    credentials and grants are deleted now."""
    from sendhub.principals_admin import KafkaAccess, SyncReport
    from services.shared.principals import PrincipalStore, UnknownPrincipal

    settings = hub_settings(ctx)
    store = PrincipalStore(settings.database_conninfo)
    try:
        store.revoke(name)
    except UnknownPrincipal as exc:
        raise fail(str(exc), 1) from None
    stored = store.get(name)
    assert stored is not None
    if stored.uses_kafka:
        access = KafkaAccess(settings)
        try:
            access.withdraw(stored.principal, SyncReport())
        finally:
            access.close()
    console.print(f"revoked {name}: tokens, webhooks and Kafka credentials")


@principals_app.command("rotate")
def rotate(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="the principal's name")], days: Annotated[int, typer.Option(
        help="how long the new token is valid")] = 90) -> None:
    """A new token (printed once, on the last line); every older token is revoked."""
    from services.shared.principals import PrincipalStore, UnknownPrincipal

    store = PrincipalStore(hub_settings(ctx).database_conninfo)
    try:
        issued = store.issue_token(name, days=days)
    except UnknownPrincipal as exc:
        raise fail(str(exc), 1) from None
    with_old = store.revoke_tokens_except(name, issued.credential_id)
    console.print(f"new token for {name}, valid until {issued.expires_at:%Y-%m-%d}; "
                  f"{with_old} older token(s) revoked:")
    sys.stdout.write(issued.token + "\n")


@principals_app.command("sync")
def sync_command(ctx: typer.Context) -> None:
    """Give every principal exactly its Kafka credentials, grants and topics (idempotent;
    deploy/local/up runs it)."""
    from sendhub.principals_admin import sync
    from services.shared.principals import PrincipalStore

    settings = hub_settings(ctx)
    report = sync(settings, PrincipalStore(settings.database_conninfo))
    console.print(f"principals synced: {len(report.users)} Kafka users, {report.granted} "
                  f"grants added, {report.removed} removed, {len(report.revoked)} revoked, "
                  f"{len(report.topics_created)} topics created")
