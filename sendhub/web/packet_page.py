"""One packet as a page of the web application: the readable packet (the same template
as the packet's standalone HTML form, `render_html_body`), what it is and where its
receipt stands, for an amendment what changed since the packet it replaces, its
downloads and the receipt form.

Called once the packet is known to be the signed-in principal's and its reading is in
the access log (`inbox.py`). The packet an amendment replaces is compared only when it
too was addressed to this principal (a re-routed packet replaces the LA's, not theirs).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from contracts.packet import TransferPacketV1
from sendhub.access_log import Reader
from sendhub.gateway.context import Gateway
from sendhub.gateway.reading import RECEIVING, is_for
from sendhub.web.context import TEMPLATES
from sendhub.web.inbox_view import RECEIPTS, delivered, kind_of
from sendhub.web.packet_changes import changes_since
from sendhub.web.pages import page
from sendhub.web.security import Viewer
from services.shared.access import Kind, Principal
from services.transfers import wording
from services.transfers.forms import render_html_body

HOW_TAG = {"added": "green", "withdrawn": "grey", "changed": "amber"}


def earlier_packet(hub: Gateway, principal: Principal, packet: TransferPacketV1
                   ) -> TransferPacketV1 | None:
    """The packet this amendment replaces, when the principal had that one too."""
    if packet.supersedes is None or packet.rerouted_from_lost_pupils:
        return None
    earlier = hub.transfers.packet(packet.supersedes)
    return earlier if earlier is not None and is_for(principal, earlier) else None


def packet_page(request: Request, hub: Gateway, seen_by: Viewer, packet: TransferPacketV1, *,
                sent: str | None = None, errors: dict[str, str] | None = None,
                status: int = 200, chosen: Any = None, reason: Any = None) -> HTMLResponse:
    principal = seen_by.principal
    earlier = earlier_packet(hub, principal, packet)
    if earlier is not None:  # what was withdrawn is shown from it: a read of it too
        hub.access_log.record(Reader(principal.name, RECEIVING, "web"), "packet-replaced",
                              upn=earlier.pupil.upn, packet_id=earlier.packet_id,
                              detail=f"replaced by {packet.packet_id}", route="web")
    delivery = delivered(hub.transfers.delivery_events(packet.packet_id))
    context = {
        "p": packet, "kind": kind_of(packet), "delivery": delivery, "day": wording.day,
        "ctf": principal.kind is Kind.school, "earlier": earlier, "how_tag": HOW_TAG,
        "changes": changes_since(earlier, packet) if earlier else None,
    }
    summary = TEMPLATES.env.get_template("packet_summary.html.j2").render(context)
    body = render_html_body(packet, replaced=earlier, after_heading=summary)
    name = f"{packet.pupil.given_name} {packet.pupil.family_name}"
    return page(request, "packet_page.html.j2", seen_by, title=f"Transfer packet: {name}",
                status=status, body=Markup(body), sent=sent if sent in RECEIPTS else None,
                errors=errors or {}, chosen=chosen if chosen in RECEIPTS else None,
                reason=reason if isinstance(reason, str) else "", **context)
