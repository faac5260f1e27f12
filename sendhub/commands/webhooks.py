"""`sendhub webhooks`: the operator registers (and lists) receivers' webhooks, as a
receiver itself does with `POST /v1/webhooks` on the gateway.

The signing secret is printed once, alone on the last line, and not shown again.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sendhub.commands.common import console, fail, hub_settings

webhooks_app = typer.Typer(help="Webhooks: packets pushed to a receiver's HTTPS endpoint "
                           "by the gateway.", no_args_is_help=True)


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="the receiver, e.g. school-100001")],
    url: Annotated[str, typer.Argument(help="its HTTPS endpoint")],
) -> None:
    """Register URL for PRINCIPAL's packets; prints the signing secret once, last."""
    from sendhub.gateway.store import GatewayStore
    from sendhub.gateway.webhooks import register_for
    from services.shared.access import PrincipalError
    from services.shared.principals import PrincipalStore

    settings = hub_settings(ctx)
    store = GatewayStore(settings.database_conninfo)
    try:
        webhook, secret = register_for(PrincipalStore(settings.database_conninfo), store,
                                       principal, url)
    except (PrincipalError, ValueError) as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    console.print(f"webhook {webhook.id} for {webhook.principal}: {webhook.url}")
    console.print("Its signing secret, shown only now (verify X-Sendhub-Signature with it):")
    sys.stdout.write(secret + "\n")  # alone on the last line, for scripts


@webhooks_app.command("list")
def list_webhooks(ctx: typer.Context) -> None:
    """Active webhooks (never their secrets)."""
    from sendhub.gateway.store import GatewayStore

    store = GatewayStore(hub_settings(ctx).database_conninfo)
    try:
        found = store.webhooks()
    finally:
        store.close()
    if not found:
        console.print("No webhooks.")
    for w in found:
        console.print(f"{w.id} {w.principal} {w.url} (since {w.created_at:%Y-%m-%d %H:%M})")
