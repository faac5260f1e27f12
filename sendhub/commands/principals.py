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
from sendhub.principal_rules import KINDS, principal_to_add

principals_app = typer.Typer(
    help="Who may connect and what each may do (schools, post-16 providers, connectors, "
    "local authorities, trusts, auditors).", no_args_is_help=True)


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
    from sendhub.principals_admin import give_kafka, kafka_note
    from services.shared.access import PrincipalError
    from services.shared.principals import PrincipalStore

    settings = hub_settings(ctx)
    try:
        principal = principal_to_add(kind, identifier, acts_for or ())
    except PrincipalError as exc:
        raise fail(str(exc), 2) from None
    store = PrincipalStore(settings.database_conninfo)
    store.add(principal, uses_kafka=kafka)
    console.print(f"principal {principal.name} ({principal.kind.value})"
                  + (f", acts for {', '.join(sorted(principal.acts_for))}"
                     if principal.acts_for else ""))
    if kafka:
        give_kafka(settings, principal)
        console.print(kafka_note(settings, principal))
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
    from sendhub.principals_admin import revoke_principal
    from services.shared.access import PrincipalError
    from services.shared.principals import PrincipalStore, UnknownPrincipal

    settings = hub_settings(ctx)
    try:
        revoke_principal(settings, PrincipalStore(settings.database_conninfo), name)
    except PrincipalError as exc:
        raise fail(str(exc), 2) from None
    except UnknownPrincipal as exc:
        raise fail(str(exc), 1) from None
    console.print(f"revoked {name}: tokens, webhooks and Kafka credentials")


@principals_app.command("rotate")
def rotate(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="the principal's name")], days: Annotated[int, typer.Option(
        help="how long the new token is valid")] = 90) -> None:
    """A new token (printed once, on the last line); every older token is revoked."""
    from sendhub.principals_admin import rotate_token
    from services.shared.principals import PrincipalStore, UnknownPrincipal

    store = PrincipalStore(hub_settings(ctx).database_conninfo)
    try:
        issued, with_old = rotate_token(store, name, days)
    except UnknownPrincipal as exc:
        raise fail(str(exc), 1) from None
    console.print(f"new token for {name}, valid until {issued.expires_at:%Y-%m-%d}; "
                  f"{with_old} older token(s) revoked:")
    sys.stdout.write(issued.token + "\n")


@principals_app.command("sync")
def sync_command(ctx: typer.Context) -> None:
    """Give every principal exactly its Kafka credentials, grants and topics (idempotent;
    deploy/local/up runs it)."""
    from sendhub.principals_admin import sync, sync_summary
    from services.shared.principals import PrincipalStore

    settings = hub_settings(ctx)
    console.print(sync_summary(sync(settings, PrincipalStore(settings.database_conninfo))))
