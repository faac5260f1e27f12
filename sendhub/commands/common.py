"""What the command modules share: the consoles, the settings built once per call, and
the access checks every read of a pupil's record goes through.

Light on purpose (typer, rich and the settings only): it is imported on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from services.shared.settings import HubSettings

if TYPE_CHECKING:
    from sendhub.access_log import AccessLog, Reader
    from services.records.application import RecordsApplication
    from services.shared.access import Principal

console = Console()
errors = Console(stderr=True)

Reason = Annotated[str | None, typer.Option(
    "--reason", help="why this record is being read; recorded in the access log")]


def fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def hub_settings(ctx: typer.Context) -> HubSettings:
    """The settings `sendhub.cli`'s callback built for this call, so that every command of
    one call sees the same configuration and none reads the environment itself."""
    settings = ctx.find_object(HubSettings)
    if settings is None:
        raise RuntimeError("sendhub commands run under sendhub.cli's app, which builds the settings")
    return settings


def principal_of(settings: HubSettings) -> Principal:
    """Who is calling: the principal whose bearer token the settings hold
    (SENDHUB_TOKEN_FILE or SENDHUB_TOKEN), checked against the hub's credentials now."""
    from services.shared.principals import PrincipalStore, Unauthenticated

    token = settings.cli_token()
    if not token:
        raise fail("Reading a pupil's SEN record needs an authenticated principal: set "
                   "SENDHUB_TOKEN_FILE to a file holding your token (the operator issues "
                   "one with `sendhub principals add KIND ID --token`).")
    try:
        return PrincipalStore(settings.database_conninfo).authenticate(token)
    except Unauthenticated as exc:
        raise fail(f"The token in SENDHUB_TOKEN_FILE / SENDHUB_TOKEN was refused: {exc}.",
                   3) from None


def reader_for(settings: HubSettings, reason: str | None,
               may: Callable[[Principal], bool], what: str) -> Reader:
    """The authenticated reader, if `may` allows it and a reason is given."""
    from sendhub.access_log import AccessRefused, Reader

    principal = principal_of(settings)
    if not may(principal):
        raise fail(f"{principal.name} may not read {what}.", 4)
    try:
        return Reader.of(principal.name, reason)
    except AccessRefused as exc:
        raise fail(str(exc)) from None


def access_log(settings: HubSettings) -> AccessLog:
    from sendhub.access_log import AccessLog

    return AccessLog(settings.database_conninfo)


def records_app(settings: HubSettings) -> RecordsApplication:
    from services.records.entrypoint import build_application

    return build_application(settings)
