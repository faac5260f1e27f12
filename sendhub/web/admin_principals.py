"""The console's principals: list, add, revoke (after a confirmation), and the Kafka sync.

Each change is the CLI's own (`principal_rules`, `principals_admin`): the same checks,
the same errors, the same broker work, whose report the result page shows. A change the
broker could not take is said plainly, with the command that finishes it.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from kafka.errors import KafkaError

from sendhub.gateway.problems import Problem, not_found
from sendhub.principal_rules import ADDABLE, KINDS, principal_to_add
from sendhub.principals_admin import (
    SyncReport,
    give_kafka,
    kafka_note,
    revoke_principal,
    sync,
    sync_summary,
)
from sendhub.web.admin import Hub, Operator, acts_for_of, field, recorded
from sendhub.web.pages import page
from sendhub.web.security import checked_form
from services.shared.access import PrincipalError
from services.shared.principals import StoredPrincipal, UnknownPrincipal

router = APIRouter(include_in_schema=False)
BROKER_FAILED = ("{done}, but the broker could not be updated ({error}): run "
                 "`sendhub principals sync` (or Sync with the broker, on the principals page) "
                 "once it can be reached")
BROKER_ERRORS = (KafkaError, ValueError, RuntimeError)
"""What the broker's admin client raises (a missing operator password is a ValueError)."""


async def stored_or_404(hub: Hub, name: str) -> StoredPrincipal:
    stored = await anyio.to_thread.run_sync(hub.principals.get, name)
    if stored is None:
        raise not_found(f"the hub has no principal {name}")
    return stored


async def on_broker(done: str, work: Any, *args: Any) -> Any:
    """Kafka work after a change already made in the database."""
    try:
        return await anyio.to_thread.run_sync(work, *args)
    except BROKER_ERRORS as exc:
        raise Problem(503, BROKER_FAILED.format(done=done, error=exc)) from None


@router.get("/admin/principals")
async def principals(request: Request, seen_by: Operator, hub: Hub) -> Response:
    stored = await anyio.to_thread.run_sync(hub.principals.all)
    return page(request, "admin/principals.html.j2", seen_by, title="Principals",
                principals=stored)


def add_form(request: Request, seen_by: Operator, *, error: str | None = None,
             values: dict[str, Any] | None = None) -> Response:
    return page(request, "admin/principal_new.html.j2", seen_by, title="Add a principal",
                status=422 if error else 200, error=error, kinds=ADDABLE, kinds_help=KINDS,
                values=values or {"kind": "school", "identifier": "", "acts_for": "",
                                  "kafka": False})


@router.get("/admin/principals/new")
async def new_principal(request: Request, seen_by: Operator) -> Response:
    return add_form(request, seen_by)


@router.post("/admin/principals")
async def add_principal(request: Request, seen_by: Operator, hub: Hub) -> Response:
    form = await checked_form(request, seen_by)
    kind, identifier, acts_for = (field(form, "kind"), field(form, "identifier"),
                                  field(form, "acts_for"))
    kafka = field(form, "kafka") == "yes"
    try:
        principal = principal_to_add(kind, identifier, acts_for_of(acts_for))
    except PrincipalError as exc:
        return add_form(request, seen_by, error=str(exc), values={
            "kind": kind, "identifier": identifier, "acts_for": acts_for, "kafka": kafka})
    await anyio.to_thread.run_sync(lambda: hub.principals.add(principal, uses_kafka=kafka))
    recorded("principal_added", seen_by, principal.name, kind=principal.kind.value,
             kafka=kafka, acts_for=sorted(principal.acts_for))
    report: SyncReport | None = None
    if kafka:
        report = await on_broker(f"{principal.name} was added", give_kafka, hub.settings,
                                 principal)
    return page(request, "admin/done.html.j2", seen_by, title=f"Added {principal.name}",
                messages=[f"principal {principal.name} ({principal.kind.value})"
                          + (f", acts for {', '.join(sorted(principal.acts_for))}"
                             if principal.acts_for else "")]
                + ([kafka_note(hub.settings, principal)] if kafka else []),
                report=report, principal=principal.name)


@router.get("/admin/principals/{name}")
async def principal_page(request: Request, name: str, seen_by: Operator, hub: Hub) -> Response:
    stored = await stored_or_404(hub, name)
    tokens = await anyio.to_thread.run_sync(hub.principals.tokens, name)
    hooks = await anyio.to_thread.run_sync(hub.webhooks.webhooks, name)
    return page(request, "admin/principal.html.j2", seen_by, title=name, stored=stored,
                tokens=tokens, webhooks=hooks)


@router.get("/admin/principals/{name}/revoke")
async def confirm_revoke(request: Request, name: str, seen_by: Operator, hub: Hub) -> Response:
    stored = await stored_or_404(hub, name)
    if stored.revoked_at is not None:
        raise Problem(409, f"{name} was revoked on {stored.revoked_at:%Y-%m-%d %H:%M}")
    return page(request, "admin/principal_revoke.html.j2", seen_by, title=f"Revoke {name}",
                stored=stored)


@router.post("/admin/principals/{name}/revoke")
async def revoke(request: Request, name: str, seen_by: Operator, hub: Hub) -> Response:
    await checked_form(request, seen_by)
    try:
        stored, report = await anyio.to_thread.run_sync(revoke_principal, hub.settings,
                                                        hub.principals, name)
    except PrincipalError as exc:  # a built-in principal
        raise Problem(400, str(exc)) from None
    except UnknownPrincipal as exc:
        raise not_found(str(exc)) from None
    except BROKER_ERRORS as exc:
        recorded("principal_revoked", seen_by, name, kafka="failed")
        raise Problem(503, BROKER_FAILED.format(done=f"{name} was revoked", error=exc)) from None
    recorded("principal_revoked", seen_by, name, kafka=stored.uses_kafka)
    return page(request, "admin/done.html.j2", seen_by, title=f"Revoked {name}",
                messages=[f"revoked {name}: tokens, webhooks and Kafka credentials"],
                report=report, principal=name)


@router.post("/admin/sync")
async def sync_broker(request: Request, seen_by: Operator, hub: Hub) -> Response:
    await checked_form(request, seen_by)
    report = await on_broker("nothing was changed in the database", sync, hub.settings,
                             hub.principals)
    recorded("principals_synced", seen_by, "*", users=len(report.users))
    return page(request, "admin/done.html.j2", seen_by, title="Synced with the broker",
                messages=[sync_summary(report)], report=report, principal=None)
