"""`POST /v1/events` and `POST /v1/receipts`: what a setting sends the hub over HTTPS.

Edge adapter. An event is screened by ingest's own function (`screen_school_event`), so
a 422 lists exactly the problems a dead letter would; then the caller must speak for its
`source.urn` (`access.may_send_events_for`), else 403 and nothing is published; then it
is published, keyed by UPN, with the caller named in the `sendhub-principal` header, and
202 is answered once the broker has acknowledged it (acks=all).

A batch (`application/x-ndjson`, at most `SENDHUB_GATEWAY_MAX_BATCH_EVENTS` lines) is
answered 207 with one result per line, in order: `{"line", "status", "event_id"?,
"detail"?, "problems"?}`, where status is 202 (published), 403, 413 (that one event over
`SENDHUB_MAX_EVENT_BYTES`), 422 or 503 (the broker did not acknowledge it: send it
again). Each line stands alone: refused lines are not published, the others are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from contracts.accepted import Position
from contracts.dead_letter import problems_from
from contracts.inbound import where_recorded
from contracts.packet import TransferPacketV1
from contracts.receipts import PacketReceiptV1
from sendhub.gateway.auth import Caller
from sendhub.gateway.bodies import JSON, NDJSON, media_type, ndjson_lines, read_body
from sendhub.gateway.context import Gateway, gateway
from sendhub.gateway.problems import Problem, forbidden, not_found, too_large
from services.ingest.application import screen_school_event
from services.shared.access import Principal, may_receive_for, may_send_events_for, packet_inbox
from services.shared.errors import MessageRefused
from services.shared.pupil_keys import PupilErased

router = APIRouter(prefix="/v1", tags=["sending"])
Hub = Annotated[Gateway, Depends(gateway)]
# Where an event is "read from" before it is on a topic: ingest's screen wants a position.
_NOT_YET_PUBLISHED = Position(topic="https", partition=-1, offset=-1)


@dataclass
class Outcome:
    """One event's answer: its status and, if refused, why."""

    line: int
    status: int
    event_id: str | None = None
    detail: str | None = None
    problems: list[dict[str, str]] = field(default_factory=list)
    key: bytes = b""
    body: bytes = b""

    def document(self) -> dict[str, Any]:
        found = {"line": self.line, "status": self.status, "event_id": self.event_id,
                 "detail": self.detail, "problems": self.problems or None}
        return {k: v for k, v in found.items() if v is not None}


def screen_event(line: int, raw: bytes, principal: Principal, *, now: datetime,
                 max_bytes: int) -> Outcome:
    """Pure: 202-to-be (with key and body to publish), 403, 413 or 422."""
    try:
        accepted = screen_school_event(raw, position=_NOT_YET_PUBLISHED, now=now,
                                       max_bytes=max_bytes)
    except MessageRefused as exc:
        status = 413 if exc.reason == "too_large" else 422
        return Outcome(line, status, detail=f"the event is refused ({exc.reason})",
                       problems=[p.model_dump() for p in exc.problems])
    event = accepted.event
    if not may_send_events_for(principal, where_recorded(event)):
        return Outcome(line, 403, str(event.event_id),
                       detail=f"{principal.name} may not send events for {where_recorded(event)}")
    return Outcome(line, 202, str(event.event_id), key=event.pupil.upn.encode(), body=raw)


async def admit(hub: Gateway, principal: Principal, lines: list[tuple[int, bytes]]
                ) -> list[Outcome]:
    now = datetime.now(UTC)
    outcomes = [screen_event(n, raw, principal, now=now, max_bytes=hub.settings.max_event_bytes)
                for n, raw in lines]
    ready = [o for o in outcomes if o.status == 202]
    failures = await hub.publisher.publish_events(principal.name, [(o.key, o.body) for o in ready])
    for outcome, failure in zip(ready, failures, strict=True):
        if failure is not None:
            outcome.status = 503
            outcome.detail = f"the broker did not acknowledge the event ({type(failure).__name__})"
    return outcomes


def receipt_for(hub: Gateway, principal: Principal, receipt: PacketReceiptV1
                ) -> TransferPacketV1:
    """The packet a receipt is for, once the caller may send it (the API and the web
    pages both ask this): 404, 403, or 422 when the receipt names another receiver; 410
    when the packet's pupil was erased."""
    from sendhub.gateway.reading import gone

    try:
        packet = hub.transfers.packet(receipt.packet_id)
    except PupilErased as erased:
        raise gone(hub, principal, receipt.packet_id, erased) from None
    if packet is None:
        raise not_found(f"no packet {receipt.packet_id}")
    if not may_receive_for(principal, packet_inbox(packet)):
        raise forbidden(f"packet {receipt.packet_id} is not addressed to {principal.name}")
    if receipt.receiver != packet.receiver:
        raise Problem(422, f"the packet's receiver is {packet.receiver}, "
                      f"not {receipt.receiver}",
                      problems=[{"path": "receiver", "message": "not the packet's receiver"}])
    return packet


EVENTS_BODY = {"content": {
    JSON: {"schema": {"type": "object", "description": "one school event "
                      "(contracts/schemas/school-event.v1.json)"}},
    NDJSON: {"schema": {"type": "string", "description": "one school event per line"}}},
    "required": True}


@router.post("/events", status_code=202, openapi_extra={"requestBody": EVENTS_BODY},
             summary="Send one school event (JSON) or a batch (NDJSON)",
             responses={207: {"description": "a batch: one result per line"},
                        403: {"description": "the caller may not speak for source.urn"},
                        413: {"description": "over the body or batch limit"},
                        422: {"description": "the contract refuses the event"}})
async def post_events(request: Request, principal: Caller, hub: Hub) -> JSONResponse:
    """One event as `application/json` (202 once the broker has it), or up to
    `SENDHUB_GATEWAY_MAX_BATCH_EVENTS` (default 500) as `application/x-ndjson`, answered
    207 with each line's status (202, 403, 413, 422 or 503) in order."""
    kind = media_type(request)
    if kind not in (JSON, NDJSON):
        raise Problem(415, f"send {JSON} (one event) or {NDJSON} (a batch)")
    body = await read_body(request, hub.settings.gateway_max_body_bytes)
    if kind == JSON:
        [outcome] = await admit(hub, principal, [(1, body)])
        if outcome.status != 202:
            extra: dict[str, Any] = {"problems": outcome.problems} if outcome.problems else {}
            raise Problem(outcome.status, outcome.detail or "refused", **extra)
        return JSONResponse({"event_id": outcome.event_id, "status": 202}, status_code=202)
    lines = ndjson_lines(body)
    limit = hub.settings.gateway_max_batch_events
    if len(lines) > limit:
        raise too_large(f"{len(lines)} events in one batch; the limit is {limit}")
    if not lines:
        raise Problem(400, "the batch has no events")
    outcomes = await admit(hub, principal, lines)
    accepted = sum(o.status == 202 for o in outcomes)
    return JSONResponse({"accepted": accepted, "refused": len(outcomes) - accepted,
                         "results": [o.document() for o in outcomes]}, status_code=207)


@router.post("/receipts", status_code=202, summary="Say a packet was received, accepted "
             "or rejected", responses={403: {"description": "not the caller's packet"},
                                       404: {"description": "no such packet"}})
async def post_receipt(request: Request, principal: Caller, hub: Hub) -> JSONResponse:
    """A `PacketReceiptV1` for a packet in the caller's inbox; published to the gateway's
    receipts topic (202 once the broker has it). A receipt is the receiver's word; a
    webhook's 2xx never is."""
    if media_type(request) != JSON:
        raise Problem(415, f"send a receipt as {JSON}")
    body = await read_body(request, hub.settings.gateway_max_body_bytes)
    try:
        receipt = PacketReceiptV1.model_validate_json(body)
    except ValidationError as exc:
        raise Problem(422, "the receipt is refused",
                      problems=[p.model_dump() for p in problems_from(exc)]) from None
    await anyio.to_thread.run_sync(receipt_for, hub, principal, receipt)
    await hub.publisher.publish_receipt(principal.name, str(receipt.packet_id), body)
    return JSONResponse({"packet_id": str(receipt.packet_id), "status": 202}, status_code=202)
