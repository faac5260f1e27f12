"""A receiving setting's inbox in the browser: its packets, each packet as a page, its
downloads, and the receipt it sends.

Edge adapter, as the API's `/v1/inbox`, `/v1/packets/{id}` and `/v1/receipts` are, with
the same functions deciding (`inbox_rows`/`inbox_page`, `packet_for`, `packet_form`,
`receipt_for`): a school, a post-16 provider, or a local authority (its lost pupils and
its own inbox together). Every packet shown, listed or downloaded is in the access log
before the page is answered (route `web`); a receipt is published exactly as the API
publishes it, and only for a packet addressed to the signed-in principal.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from contracts.packet import TransferPacketV1
from contracts.receipts import ReceiptStatus
from sendhub.access_log import Reader
from sendhub.gateway.context import Gateway, gateway
from sendhub.gateway.problems import Problem
from sendhub.gateway.reading import (
    MEDIA,
    RECEIVING,
    inbox_rows,
    inboxes_of,
    packet_for,
    packet_form,
)
from sendhub.gateway.sending import receipt_for
from sendhub.web import inbox_store
from sendhub.web.inbox_view import Download, download_name, flagged_rows, receipt_from_form
from sendhub.web.packet_page import packet_page
from sendhub.web.pages import page
from sendhub.web.security import SignedIn, Viewer, checked_form
from services.shared.access import Kind, Principal, packet_inbox
from services.transfers.forms import with_current_registry

log = logging.getLogger("sendhub.web")
router = APIRouter(include_in_schema=False)
Hub = Annotated[Gateway, Depends(gateway)]
PAGE_SIZE = 25
ROUTE = "web"
NOT_SENT = ("the hub could not send your receipt just now (its message broker did not "
            "answer): nothing was sent; try again in a moment")
CTF_FOR_SCHOOLS = "a CTF (the file a school's MIS imports) is for schools: download the JSON"


def reader_of(principal: Principal) -> Reader:
    return Reader(principal.name, RECEIVING, ROUTE)


def _record(hub: Gateway, principal: Principal, action: str, packets: list[TransferPacketV1],
            inbox: bool = False) -> None:
    for packet in packets:
        hub.access_log.record(reader_of(principal), action, upn=packet.pupil.upn,
                              packet_id=packet.packet_id,
                              detail=packet_inbox(packet) if inbox else None, route=ROUTE)


def _inbox(hub: Gateway, principal: Principal, before: int | None) -> dict[str, Any]:
    """The page's rows, each packet listed in the access log before it is shown (one
    whose pupil was erased shows nothing of the pupil, and is not)."""
    entries, more = inbox_rows(hub, principal, before=before, limit=PAGE_SIZE)
    packets = [e.packet for e in entries if isinstance(e.packet, TransferPacketV1)]
    opened = inbox_store.opened_by(hub.store, principal.name, packets)
    events = inbox_store.delivery_events(hub.store, [e.packet.packet_id for e in entries])
    _record(hub, principal, "inbox-web", packets, inbox=True)
    return {"rows": flagged_rows(entries, opened, events),
            "older": entries[-1].position if more and entries else None}


@router.get("/inbox")
async def get_inbox(request: Request, seen_by: SignedIn, hub: Hub,
                    before: Annotated[int | None, Query(ge=1, description="older packets: "
                                                        "those sent before this one")] = None
                    ) -> Response:
    principal = seen_by.principal
    inboxes = inboxes_of(principal)
    found = await anyio.to_thread.run_sync(_inbox, hub, principal, before)
    return page(request, "inbox.html.j2", seen_by, title="Inbox", before=before,
                la=principal.kind is Kind.la, inboxes=inboxes, **found)


def _shown(hub: Gateway, seen_by: Viewer, packet_id: UUID) -> TransferPacketV1:
    packet = packet_for(hub, seen_by.principal, packet_id)
    _record(hub, seen_by.principal, "packet-page", [packet])
    return packet


@router.get("/packets/{packet_id}")
async def get_packet(request: Request, packet_id: UUID, seen_by: SignedIn, hub: Hub,
                     sent: Annotated[ReceiptStatus | None, Query()] = None) -> Response:
    packet = await anyio.to_thread.run_sync(_shown, hub, seen_by, packet_id)
    return await anyio.to_thread.run_sync(
        lambda: packet_page(request, hub, seen_by, packet, sent=sent))


def _download(hub: Gateway, principal: Principal, packet_id: UUID, form: Download
              ) -> tuple[bytes, str]:
    packet = packet_for(hub, principal, packet_id)
    if form == "ctf" and principal.kind is not Kind.school:
        raise Problem(406, CTF_FOR_SCHOOLS)
    body = packet_form(hub, packet, form)  # 409, with the reason, when no CTF can be made
    named = (with_current_registry([packet], hub.transfers.registered_settings())[0]
             if form == "ctf" else packet)
    _record(hub, principal, f"packet-download-{form}", [packet])
    return body, download_name(named, form)


@router.get("/packets/{packet_id}/download")
async def download(packet_id: UUID, seen_by: SignedIn, hub: Hub,
                   form: Annotated[Download, Query()] = "json") -> Response:
    body, name = await anyio.to_thread.run_sync(_download, hub, seen_by.principal,
                                                packet_id, form)
    return Response(body, media_type=MEDIA[form],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/packets/{packet_id}/receipt")
async def post_receipt(request: Request, packet_id: UUID, seen_by: SignedIn, hub: Hub
                       ) -> Response:
    """Checked as the API checks a receipt (`receipt_for`), then published as it
    publishes one; an incomplete form is the packet page again, with what to put right."""
    form = await checked_form(request, seen_by)
    principal = seen_by.principal
    packet = await anyio.to_thread.run_sync(packet_for, hub, principal, packet_id)
    receipt, errors = receipt_from_form(packet, form.get("status"), form.get("reason"),
                                        datetime.now(UTC))
    if receipt is None:
        await anyio.to_thread.run_sync(_record, hub, principal, "packet-page", [packet])
        return await anyio.to_thread.run_sync(lambda: packet_page(
            request, hub, seen_by, packet, errors=errors, status=400,
            chosen=form.get("status"), reason=form.get("reason")))
    await anyio.to_thread.run_sync(receipt_for, hub, principal, receipt)
    body = receipt.model_dump_json(exclude_none=True).encode()
    try:
        await hub.publisher.publish_receipt(principal.name, str(packet_id), body)
    except Exception as failed:  # the broker's errors: nothing was published
        log.warning("web.receipt_not_sent", extra={"error": type(failed).__name__})
        raise Problem(503, NOT_SENT) from None
    return RedirectResponse(f"/packets/{packet_id}?sent={receipt.status}", status_code=303)
