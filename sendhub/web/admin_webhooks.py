"""The console's webhooks: every active one, registering one for a receiver (as `sendhub
webhooks add` does, its signing secret shown once) and stopping one (as the receiver's
own `DELETE /v1/webhooks/{id}` does)."""

from __future__ import annotations

import uuid

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sendhub.gateway.problems import Problem
from sendhub.gateway.store import Webhook
from sendhub.gateway.webhooks import register_for
from sendhub.web.admin import Hub, Operator, field, recorded
from sendhub.web.pages import page
from sendhub.web.security import checked_form
from services.shared.access import PrincipalError

router = APIRouter(include_in_schema=False)


def webhooks_page(request: Request, seen_by: Operator, hooks: list[Webhook], *,
                  error: str | None = None, values: dict[str, str] | None = None) -> Response:
    return page(request, "admin/webhooks.html.j2", seen_by, title="Webhooks", webhooks=hooks,
                error=error, values=values or {"principal": "", "url": ""},
                status=422 if error else 200)


@router.get("/admin/webhooks")
async def webhooks(request: Request, seen_by: Operator, hub: Hub) -> Response:
    hooks = await anyio.to_thread.run_sync(hub.webhooks.webhooks)
    return webhooks_page(request, seen_by, list(hooks))


@router.post("/admin/webhooks")
async def add_webhook(request: Request, seen_by: Operator, hub: Hub) -> Response:
    form = await checked_form(request, seen_by)
    values = {"principal": field(form, "principal"), "url": field(form, "url")}
    try:
        webhook, secret = await anyio.to_thread.run_sync(
            register_for, hub.principals, hub.webhooks, values["principal"], values["url"])
    except (PrincipalError, ValueError) as exc:
        hooks = await anyio.to_thread.run_sync(hub.webhooks.webhooks)
        return webhooks_page(request, seen_by, list(hooks), error=str(exc), values=values)
    recorded("webhook_added", seen_by, webhook.principal, webhook=str(webhook.id))
    return page(request, "admin/done.html.j2", seen_by,
                title=f"Webhook added for {webhook.principal}",
                messages=[f"webhook {webhook.id} for {webhook.principal}: {webhook.url}"],
                principal=webhook.principal, secret=secret, secret_label="Signing secret",
                secret_hint="verify X-Sendhub-Signature with it")


@router.post("/admin/webhooks/{webhook_id}/revoke")
async def revoke_webhook(request: Request, webhook_id: uuid.UUID, seen_by: Operator,
                         hub: Hub) -> Response:
    form = await checked_form(request, seen_by)
    principal = field(form, "principal")
    if not await anyio.to_thread.run_sync(hub.webhooks.revoke_webhook, webhook_id, principal):
        raise Problem(409, f"{principal or 'that principal'} has no active webhook {webhook_id}")
    recorded("webhook_revoked", seen_by, principal, webhook=str(webhook_id))
    return page(request, "admin/done.html.j2", seen_by, title="Webhook stopped",
                messages=[f"webhook {webhook_id} of {principal} stopped: no more packets are "
                          "pushed to it"], principal=principal)
