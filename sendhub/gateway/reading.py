"""What callers read: their inbox, one packet, the transfers they oversee, and (auditors)
a pupil's history.

Edge adapter; who may read what is `services.shared.access` alone. Every packet or
history handed out is written to the access log first (actor: the authenticated
principal; route `https`; reason: the `X-Reason` header, which auditors must send and
receivers may). Forms by `Accept`: `application/json` (default), `application/xml`
(CTF, schools only) and `text/html`. A packet whose pupil was erased is 410 Gone, with
the erasure ("erased on D by X because Y"), and an inbox lists it only as erased.
"""

from __future__ import annotations

import base64
import binascii
import html
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response

from contracts.packet import TransferPacketV1
from sendhub.access_log import Reader
from sendhub.gateway.auth import Caller
from sendhub.gateway.context import Gateway, gateway
from sendhub.gateway.problems import Problem, forbidden, not_found
from sendhub.gateway.store import InboxPacket
from services.shared.access import (
    Kind,
    Principal,
    may_oversee,
    may_read_history,
    may_receive_for,
    packet_inbox,
    receivers_of,
)
from services.shared.pupil_keys import PupilErased
from services.transfers import wording
from services.transfers.forms import CTFRefused, ctf_files, render, with_current_registry
from services.transfers.sealed_rows import ErasedPacket

router = APIRouter(prefix="/v1", tags=["reading"])
Hub = Annotated[Gateway, Depends(gateway)]
Accept = Annotated[str | None, Header(description="application/json, application/xml "
                                      "(CTF, schools only) or text/html")]
XReason = Annotated[str | None, Header(alias="X-Reason", description="why the record is "
                                       "read (access log); required for histories")]
Form = Literal["json", "ctf", "html"]
MEDIA = {"json": "application/json", "ctf": "application/xml", "html": "text/html; charset=utf-8"}
_ACCEPTED = {"application/json": "json", "application/xml": "ctf", "text/xml": "ctf",
             "text/html": "html", "*/*": "json", "application/*": "json", "text/*": "html"}
NEXT_SINCE = "X-Sendhub-Next-Since"
RECEIVING = "receiving its own packets"


def negotiate(accept: str | None, principal: Principal) -> Form:
    """The form to answer in: the caller's most preferred one that the hub makes."""
    ranges = []
    for index, part in enumerate((accept or "*/*").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            ranges.append((-float(q), index, media.lower()))
        except ValueError:
            continue
    for negative_q, _, media in sorted(ranges):
        form = _ACCEPTED.get(media)
        if negative_q < 0 and form is not None:
            if form == "ctf" and principal.kind is not Kind.school:
                raise Problem(406, "CTF (application/xml) is for schools; ask for "
                              "application/json or text/html")
            return form  # type: ignore[return-value]
    raise Problem(406, "this hub answers application/json, application/xml (CTF) or text/html")


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"inbox:{position}".encode()).decode().rstrip("=")


def decode_cursor(since: str) -> int:
    try:
        text = base64.urlsafe_b64decode(since + "=" * (-len(since) % 4)).decode()
        kind, _, position = text.partition(":")
        if kind == "inbox" and position.isdigit():
            return int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Problem(400, "since is not a cursor this hub gave (use next_since as it came)")


GONE = 410
"""A packet whose pupil's data was erased (UK GDPR Article 17): it existed, and is gone."""


def is_for(principal: Principal, packet: TransferPacketV1 | ErasedPacket) -> bool:
    inbox = packet.inbox if isinstance(packet, ErasedPacket) else packet_inbox(packet)
    return may_receive_for(principal, inbox)


def gone(hub: Gateway, principal: Principal, packet_id: UUID, erased: PupilErased) -> Problem:
    """410 with the erasure for the packet's addressee; 403 for anyone else, who is told
    nothing of it."""
    addressee = hub.transfers.addressee_of(packet_id)
    if addressee is None or not may_receive_for(principal, addressee.inbox):
        return forbidden(f"packet {packet_id} is not addressed to {principal.name}")
    return Problem(GONE, f"packet {packet_id} is gone: its pupil's data was "
                   f"{erased.erasure.describe_for_receivers()}",
                   erased=erased.erasure.describe_for_receivers())


def erased_line(packet: ErasedPacket) -> dict[str, str]:
    """What an inbox says of a packet whose pupil was erased."""
    return {"packet_id": str(packet.packet_id), "erased": packet.describe()}


# -- what a caller may read: one set of functions for the API and the web pages ---------

def inboxes_of(principal: Principal) -> tuple[str, ...]:
    """The caller's inboxes, or 403 for a principal that has none."""
    inboxes = receivers_of(principal)
    if not inboxes:
        raise forbidden(f"{principal.name} has no inbox (schools, post-16 providers and "
                        "local authorities do)")
    return inboxes


def inbox_page(hub: Gateway, principal: Principal, *, since: int | None, limit: int
               ) -> tuple[list[TransferPacketV1], list[ErasedPacket], int | None, bool]:
    """The caller's packets, newest first: (packets, those whose pupil was erased, the
    newest position or `since`, whether more wait)."""
    page, more = hub.store.inbox(inboxes_of(principal), since=since, limit=limit)
    mine = [p.packet for p in page if is_for(principal, p.packet)]
    return ([p for p in mine if isinstance(p, TransferPacketV1)],
            [p for p in mine if isinstance(p, ErasedPacket)],
            page[0].position if page else since, more)


def inbox_rows(hub: Gateway, principal: Principal, *, before: int | None, limit: int
               ) -> tuple[list[InboxPacket], bool]:
    """As `inbox_page` without `since`, for a page of the inbox: the newest `limit`
    packets sent before position `before` (None: the newest), each with its position
    (the next page's `before`), and whether older ones wait."""
    page, more = hub.store.inbox(inboxes_of(principal), since=None, before=before, limit=limit)
    return [p for p in page if is_for(principal, p.packet)], more


def packet_for(hub: Gateway, principal: Principal, packet_id: UUID) -> TransferPacketV1:
    """A packet addressed to the caller: 404 when there is none, 403 when it went to
    someone else, 410 (to its addressee only) when its pupil's data was erased."""
    try:
        packet = hub.transfers.packet(packet_id)
    except PupilErased as erased:
        raise gone(hub, principal, packet_id, erased) from None
    if packet is None:
        raise not_found(f"no packet {packet_id}")
    if not is_for(principal, packet):
        raise forbidden(f"packet {packet_id} is not addressed to {principal.name}")
    return packet


def history_reason(principal: Principal, reason: str | None) -> str:
    """The reason an auditor gave for reading a history: 403 for anyone else, 400
    without one."""
    if not may_read_history(principal):
        raise forbidden("only auditors read a pupil's whole history")
    if not (reason or "").strip():
        raise Problem(400, "give the reason this record is read (the API's X-Reason "
                      "header): it is recorded in the access log")
    return str(reason).strip()


def _log_reads(hub: Gateway, reader: Reader, action: str, packets: list[TransferPacketV1],
               inbox: bool = False) -> None:
    """Each packet read, with (for an inbox) the inbox it was read from."""
    for packet in packets:
        hub.access_log.record(reader, action, upn=packet.pupil.upn, packet_id=packet.packet_id,
                              detail=packet_inbox(packet) if inbox else None, route="https")


def inbox_html(receiver: str, packets: list[TransferPacketV1],
               erased: list[ErasedPacket] | None = None) -> bytes:
    gone = "".join(f"<li>Packet {p.packet_id} from "
                   f"{html.escape(p.from_setting.name or str(p.from_setting.urn))} "
                   f"({p.generated_at:%Y-%m-%d}): {html.escape(p.describe())}</li>"
                   for p in erased or [])
    items = "".join(
        f'<li><a href="/v1/packets/{p.packet_id}">{html.escape(p.pupil.given_name)} '
        f"{html.escape(p.pupil.family_name)}</a> from "
        f"{html.escape(p.from_setting.name or str(p.from_setting.urn))} "
        f"({p.generated_at:%Y-%m-%d})"
        + (f" <strong>{html.escape(wording.notice_heading(p) or '')}</strong>"
           if p.la_notice else "") + "</li>" for p in packets)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Inbox of "
            f"{html.escape(receiver)}</title></head><body><h1>Inbox of {html.escape(receiver)}"
            f"</h1><ul>{items}{gone}</ul></body></html>").encode()


@router.get("/inbox", summary="The caller's transfer packets, newest first")
async def get_inbox(
    principal: Caller, hub: Hub, accept: Accept = None, reason: XReason = None,
    since: Annotated[str | None, Query(description="next_since from an earlier answer: only "
                                       "packets sent after it")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    from_urn: Annotated[str | None, Query(description="CTF: only the packets from this "
                                          "sending school (a CTF names one)")] = None,
) -> Response:
    """Without `since`: the newest `limit` packets. With it: the packets sent after it
    (the oldest `limit` of them when more wait, `more` true). Either way newest first,
    with `next_since` (also the `X-Sendhub-Next-Since` header) to poll with next."""
    inboxes = inboxes_of(principal)
    receiver = inboxes[0]  # an LA's first is its lost pupils, as before it had two
    form = negotiate(accept, principal)
    cursor = decode_cursor(since) if since else None
    packets, erased, newest, more = await anyio.to_thread.run_sync(
        lambda: inbox_page(hub, principal, since=cursor, limit=limit))
    next_since = encode_cursor(newest) if newest is not None else None
    reader = Reader(principal.name, (reason or "").strip() or RECEIVING)
    await anyio.to_thread.run_sync(_log_reads, hub, reader, f"inbox-{form}", packets, True)
    headers = {NEXT_SINCE: next_since} if next_since else {}
    if form == "json":
        return JSONResponse({"receiver": receiver, "inboxes": list(inboxes),
                             "packets": [p.model_dump(mode="json") for p in packets],
                             "erased": [erased_line(p) for p in erased],
                             "next_since": next_since, "more": more}, headers=headers)
    if form == "ctf":
        body = await anyio.to_thread.run_sync(inbox_ctf, hub, packets, from_urn)
        if body is None:
            return Response(status_code=204, headers=headers)
        return Response(body, media_type=MEDIA["ctf"], headers=headers)
    return Response(inbox_html(" and ".join(inboxes), packets, erased), media_type=MEDIA["html"],
                    headers=headers)


NO_CTF = 409
"""A CTF the hub cannot make yet (a setting not in the registry; several sending schools):
409 Conflict, because the request is right and the hub's state is what stands in the way."""


def inbox_ctf(hub: Gateway, packets: list[TransferPacketV1], from_urn: str | None
              ) -> bytes | None:
    """The inbox's CTF for one sending school, superseded packets left out; None when
    there is nothing to send. 409 when several schools sent packets and `from_urn` does
    not pick one, or when a packet cannot go in a CTF (each is named, with why)."""
    packets = with_current_registry(packets, hub.transfers.registered_settings())
    if from_urn:
        packets = [p for p in packets if p.from_setting.urn == from_urn]
    files, refused = ctf_files(packets)
    if refused:
        raise Problem(NO_CTF, "some packets cannot go in a CTF yet: " + "; ".join(refused),
                      refused=refused)
    if len(files) > 1:
        raise Problem(NO_CTF, "a CTF names one sending school and these packets come from "
                      f"{len(files)}: ask for each with ?from_urn=URN", sending_schools=[
                          {"urn": f.from_urn, "name": f.school, "pupils": f.pupils,
                           "href": f"/v1/inbox?from_urn={f.from_urn}"} for f in files])
    return files[0].body if files else None


def packet_form(hub: Gateway, packet: TransferPacketV1, form: Form) -> bytes:
    """The packet in a form; for the CTF, settings described by the registry as it is now,
    and 409 when the CTF cannot be made (the reason says what to do)."""
    if form == "ctf":
        (packet,) = with_current_registry([packet], hub.transfers.registered_settings())
        try:
            return render(packet, "ctf")
        except CTFRefused as refused:
            raise Problem(NO_CTF, str(refused)) from None
    replaced = (hub.transfers.packet(packet.supersedes)
                if packet.supersedes and form == "html" else None)
    return render(packet, form, replaced=replaced)


@router.get("/packets/{packet_id}", summary="One transfer packet addressed to the caller")
async def get_packet(packet_id: UUID, principal: Caller, hub: Hub, accept: Accept = None,
                     reason: XReason = None) -> Response:
    form = negotiate(accept, principal)
    packet = await anyio.to_thread.run_sync(packet_for, hub, principal, packet_id)
    reader = Reader(principal.name, (reason or "").strip() or RECEIVING)
    body = await anyio.to_thread.run_sync(packet_form, hub, packet, form)
    await anyio.to_thread.run_sync(_log_reads, hub, reader, f"packet-{form}", [packet])
    return Response(body, media_type=MEDIA[form])


def overseen(hub: Gateway, principal: Principal, overdue: bool) -> list[dict[str, Any]]:
    urns = {principal.identifier} if principal.kind is Kind.school else principal.members
    visible = {e.packet_id for e in hub.store.packets_touching(sorted(urns))
               if any(u and may_oversee(principal, u) for u in (e.from_urn, e.to_urn))}
    rows = hub.transfers.deliveries(overdue_only=overdue) if visible else []
    return [{"packet_id": str(d.packet_id), "upn": d.upn, "receiver": d.receiver,
             "kind": d.kind, "state": d.delivery.state, "attempts": d.delivery.attempts,
             "reason": d.delivery.reason, "overdue": d.overdue,
             "school_days_waiting": d.school_days_waiting,
             "supersedes": str(d.supersedes) if d.supersedes else None}
            for d in rows if d.packet_id in visible]


@router.get("/transfers", summary="Packets by delivery state, for the settings the caller "
            "oversees")
async def get_transfers(principal: Caller, hub: Hub,
                        overdue: Annotated[bool, Query(description="only packets with no "
                                                       "receipt past the re-send period")] = False
                        ) -> JSONResponse:
    """A school: the packets it sent and received. A trust: its member schools'. A local
    authority: those of the settings in its area (the settings registry says which)."""
    if principal.kind not in (Kind.school, Kind.trust, Kind.la):
        raise forbidden("transfers are listed for schools, trusts and local authorities")
    rows = await anyio.to_thread.run_sync(overseen, hub, principal, overdue)
    return JSONResponse({"transfers": rows})


@router.get("/pupils/{upn}/history", summary="A pupil's SEN history (auditors)")
async def get_history(
    upn: str, principal: Caller, hub: Hub, reason: XReason = None,
    as_known_at: Annotated[datetime | None, Query(description="as the hub held it at this "
                                                  "instant (ISO 8601; UTC if no offset)")] = None,
    as_of: Annotated[date | None, Query(description="what had happened by this date")] = None,
) -> JSONResponse:
    """As `sendhub history --json`: now, as known at an instant, or as of a date. Needs an
    auditor and an `X-Reason`; the read is in the access log before it is answered."""
    why = history_reason(principal, reason)
    if as_known_at and as_of:
        raise Problem(400, "give as_known_at or as_of, not both: they are different time axes")
    known_at = as_known_at.replace(tzinfo=UTC) if as_known_at and not as_known_at.tzinfo \
        else as_known_at
    document = await anyio.to_thread.run_sync(
        history_read, hub, Reader(principal.name, why), upn, known_at, as_of)
    if document is None:
        raise not_found("no SEN history is recorded for this UPN")
    return JSONResponse(document)


def history_read(hub: Gateway, reader: Reader, upn: str, known_at: datetime | None,
                 day: date | None) -> dict[str, Any] | None:
    """The history document, once the read is in the access log (None: no history)."""
    from sendhub.replay import history_at, history_document

    entries, point = history_at(hub.records(), upn, known_at, day)
    hub.access_log.record(reader, "history", upn=upn, detail=point, route="https")
    if not entries:
        return None
    return history_document(upn, entries, known_at=known_at, as_of=day)
