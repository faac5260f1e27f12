"""Webhooks: packets pushed to a receiver's own HTTPS endpoint as they are sent.

A receiver (a school, a post-16 provider, or an LA for both its inboxes: its lost pupils
and its EHC plan notices) registers an
HTTPS URL (`POST /v1/webhooks`, or the operator's `sendhub webhooks add PRINCIPAL URL`)
and is given the signing secret once. `WebhookDeliveries`, a periodic task in the
gateway process, POSTs each packet sent to that receiver's inbox after registration:
the packet's JSON (as `GET /v1/packets/{id}` gives it), signed as `signing.py` says,
with `X-Sendhub-Packet-Id` and `X-Sendhub-Delivery-Attempt`. A 2xx ends it; anything
else is retried after `SENDHUB_GATEWAY_WEBHOOK_RETRY_SECONDS` (one wait per retry),
then given up. Every attempt is a row in `webhook_deliveries`. A webhook's 2xx is not
a receipt: the receiver still sends one (`POST /v1/receipts`), or transfers re-sends.

Delivery is at least once (a crash between the POST and its row repeats it), so a
receiver keys on the packet id. Rounds of several gateway processes are serialised by
a PostgreSQL advisory lock.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import anyio
import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from sendhub.gateway.auth import Caller
from sendhub.gateway.context import Gateway, gateway
from sendhub.gateway.problems import Problem, forbidden, not_found
from sendhub.gateway.signing import SIGNATURE_HEADER, new_secret, sign
from sendhub.gateway.store import DueDelivery, GatewayStore, Webhook
from services.shared.access import Principal, PrincipalError, receivers_of
from services.shared.locks import GATEWAY_WEBHOOKS
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings
from services.shared.tasks import PeriodicTask
from services.transfers.forms import render

log = logging.getLogger("sendhub.gateway.webhooks")
router = APIRouter(prefix="/v1", tags=["webhooks"])
Hub = Annotated[Gateway, Depends(gateway)]
ROUND = 50  # deliveries per webhook per round
TIMEOUT_SECONDS = 10.0


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str


def check_url(url: str) -> str:
    """HTTPS only: a packet is special category data."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("a webhook URL must be https://host/...")
    return url


def register(store: GatewayStore, principal: Principal, url: str) -> tuple[Webhook, str]:
    """A webhook for a receiver; its secret is returned here and never again."""
    if not receivers_of(principal):
        raise PrincipalError(f"{principal.name} receives no packets, so it cannot have a webhook")
    secret = new_secret()
    return store.add_webhook(principal.name, check_url(url), secret), secret


def register_for(principals: PrincipalStore, store: GatewayStore, name: str, url: str
                 ) -> tuple[Webhook, str]:
    """The operator's registration (`sendhub webhooks add`, the admin console): for an
    active principal named by the operator, not the caller."""
    found = principals.active(name)
    if found is None:
        raise PrincipalError(f"no active principal {name!r}: see `sendhub principals list`")
    return register(store, found, url)


def _document(webhook: Webhook) -> dict[str, Any]:
    return {"id": str(webhook.id), "principal": webhook.principal, "url": webhook.url,
            "created_at": webhook.created_at.isoformat()}


@router.post("/webhooks", status_code=201, summary="Register an HTTPS URL to push packets to")
async def post_webhook(request: WebhookRequest, principal: Caller, hub: Hub) -> JSONResponse:
    """The signing secret is in this answer only: keep it (see `X-Sendhub-Signature`)."""
    try:
        webhook, secret = await anyio.to_thread.run_sync(register, hub.store, principal,
                                                         request.url)
    except PrincipalError as exc:
        raise forbidden(str(exc)) from None
    except ValueError as exc:
        raise Problem(422, str(exc), problems=[{"path": "url", "message": str(exc)}]) from None
    return JSONResponse({**_document(webhook), "secret": secret}, status_code=201)


@router.get("/webhooks", summary="The caller's webhooks")
async def get_webhooks(principal: Caller, hub: Hub) -> JSONResponse:
    found = await anyio.to_thread.run_sync(hub.store.webhooks, principal.name)
    return JSONResponse({"webhooks": [_document(w) for w in found]})


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Stop a webhook")
async def delete_webhook(webhook_id: UUID, principal: Caller, hub: Hub) -> Response:
    if not await anyio.to_thread.run_sync(hub.store.revoke_webhook, webhook_id, principal.name):
        raise not_found(f"{principal.name} has no webhook {webhook_id}")
    return Response(status_code=204)


def retry_after(schedule: list[float], attempt: int) -> float | None:
    """The wait before the next attempt after failed attempt `attempt` (from 1), or None
    when the schedule is used up."""
    return schedule[attempt - 1] if attempt <= len(schedule) else None


class WebhookDeliveries(PeriodicTask):
    """Pushes due packets to every active webhook, one round at a time."""

    def __init__(self, settings: HubSettings, store: GatewayStore, tls: ssl.SSLContext) -> None:
        super().__init__(settings.gateway_webhook_interval_seconds, log, "webhooks")
        self.store = store
        self.schedule = list(settings.gateway_webhook_retry_seconds)
        self.tls = tls

    async def once(self) -> bool:
        lock = await anyio.to_thread.run_sync(self.store.pool.getconn)
        try:
            if not await anyio.to_thread.run_sync(_lock, lock, "pg_try_advisory_lock"):
                return False  # another gateway process is delivering
            try:
                due = await anyio.to_thread.run_sync(self._due)
                if due:
                    async with httpx.AsyncClient(verify=self.tls, timeout=TIMEOUT_SECONDS,
                                                 follow_redirects=False) as client:
                        for delivery in due:
                            await self.deliver(client, delivery)
            finally:
                await anyio.to_thread.run_sync(_lock, lock, "pg_advisory_unlock")
        finally:
            self.store.pool.putconn(lock)
        return len(due) >= ROUND

    def _due(self) -> list[DueDelivery]:
        found: list[DueDelivery] = []
        for webhook in self.store.webhooks():
            for inbox in receivers_of(Principal.parse(webhook.principal)):  # an LA has two
                found += self.store.due(webhook, inbox, ROUND)
        return found

    async def deliver(self, client: httpx.AsyncClient, due: DueDelivery) -> None:
        body = render(due.packet, "json")
        headers = {"Content-Type": "application/json", "User-Agent": "sendhub-gateway",
                   SIGNATURE_HEADER: sign(due.secret, body, int(time.time())),
                   "X-Sendhub-Packet-Id": str(due.packet.packet_id),
                   "X-Sendhub-Delivery-Attempt": str(due.attempt)}
        status, error = None, None
        try:
            response = await client.post(due.webhook.url, content=body, headers=headers)
            status = response.status_code
            if not response.is_success:
                error = f"answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: could not deliver"
        delivered = error is None
        retry = None if delivered else retry_after(self.schedule, due.attempt)
        await anyio.to_thread.run_sync(lambda: self.store.record_attempt(
            due, status=status, error=error, delivered=delivered, retry_in=retry))
        log.info("webhook.delivered" if delivered else "webhook.failed",
                 extra={"webhook_id": str(due.webhook.id), "packet_id": str(due.packet.packet_id),
                        "attempt": due.attempt, "status": status, "retry_in": retry})


def _lock(conn: Any, function: str) -> bool:
    row = conn.execute(f"SELECT {function}(%s) AS done", (GATEWAY_WEBHOOKS,)).fetchone()
    return bool(row and row["done"])
