"""What the command modules share: the consoles, the settings built once per call, and
the access checks every read of a pupil's record goes through.

Light on purpose (typer, rich and the settings only): it is imported on every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from services.shared.settings import HubSettings

if TYPE_CHECKING:
    from sendhub.access_log import AccessLog, Reader
    from services.records.application import RecordsApplication

console = Console()
errors = Console(stderr=True)

Actor = Annotated[str | None, typer.Option(
    "--actor", help="who is reading (default: SENDHUB_ACTOR); recorded in the access log")]
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
