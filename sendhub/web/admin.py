"""The operator's administration console (`sendhub serve admin`): what its pages share.

Served by its own process beside the gateway, on loopback by default, with the database
owner's connection and the operator's Kafka credentials: the gateway's database role
cannot manage principals, and must not. Only a session begun with the one-time link the
process printed at start is the operator here (`Operator`); any other session, say a
school's from the gateway on the same host, is sent to sign in. Every change is logged
as `admin.<action>` with the operator and the principal's name, never a token or a
secret (the CLI's commands log nothing), and is done with the CLI's own functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from sendhub.gateway.store import GatewayStore
from sendhub.web.context import Web, web
from sendhub.web.pages import page
from sendhub.web.security import SignInNeeded, Viewer, here, viewer
from services.shared.access import OPERATOR
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings
from services.transfers.registry import RegistryLine

log = logging.getLogger("sendhub.admin")
router = APIRouter(include_in_schema=False)
MAX_TOKEN_DAYS = 3650
SHOWN_IMPORTED_LINES = 500


@dataclass
class Console:
    """What the console's pages act on, built once per process."""

    settings: HubSettings
    principals: PrincipalStore
    webhooks: GatewayStore

    @classmethod
    def from_settings(cls, settings: HubSettings) -> Console:
        conninfo = settings.database_conninfo
        return cls(settings, PrincipalStore(conninfo), GatewayStore(conninfo))

    def close(self) -> None:
        self.webhooks.close()


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


async def operator(request: Request, hub: Annotated[Web, Depends(web)]) -> Viewer:
    """The operator, signed in by this process's one-time link; anyone else signs in."""
    seen_by = await viewer(request, hub)
    if seen_by.session.signed_in_with != "link" or seen_by.principal != OPERATOR:
        raise SignInNeeded(here(request))
    return seen_by


Operator = Annotated[Viewer, Depends(operator)]
Hub = Annotated[Console, Depends(console)]


def recorded(action: str, seen_by: Viewer, principal: str, **detail: object) -> None:
    """The structured line each change leaves: who did what to whom, never a secret."""
    log.info(f"admin.{action}", extra={"operator": seen_by.principal.name,
                                       "principal": principal, **detail})


def field(form: FormData, name: str) -> str:
    """A text field of a posted form ('' when missing or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def token_days(text: str) -> int:
    """How long a new token lasts: a whole number of days, 1 to MAX_TOKEN_DAYS."""
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or not 1 <= int(text) <= MAX_TOKEN_DAYS:
        raise ValueError(f"a token lasts a whole number of days from 1 to {MAX_TOKEN_DAYS}, "
                         f"not {text.strip()!r}")
    return int(text)


def acts_for_of(text: str) -> list[str]:
    """The URNs a connector acts for, as typed: separated by commas, spaces or lines."""
    return [urn for urn in re.split(r"[\s,;]+", text) if urn]


def shown_lines(lines: Sequence[RegistryLine], limit: int = SHOWN_IMPORTED_LINES
                ) -> tuple[list[RegistryLine], int]:
    """The report's rows: every refused line, and the first `limit` imported ones; and
    how many imported lines were left out (a full DfE file has tens of thousands)."""
    shown: list[RegistryLine] = []
    left_out = 0
    imported = 0
    for line in lines:
        if line.problem is None:
            imported += 1
            if imported > limit:
                left_out += 1
                continue
        shown.append(line)
    return shown, left_out


@router.get("/admin")
async def overview(request: Request, seen_by: Operator, hub: Hub) -> Response:
    stored = await anyio.to_thread.run_sync(hub.principals.all)
    hooks = await anyio.to_thread.run_sync(hub.webhooks.webhooks)
    active = [s for s in stored if s.revoked_at is None]
    return page(request, "admin/overview.html.j2", seen_by, title="Administration",
                active=len(active), revoked=len(stored) - len(active),
                on_kafka=sum(1 for s in active if s.uses_kafka), webhooks=len(hooks))
