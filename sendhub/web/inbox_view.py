"""What the inbox and packet pages say about a packet: its kind, its flags in words
(unread, what was still open at the move, the receipt sent), the receipt form read back,
and the names of its downloads.

Pure: a function of the packet, whether this principal has opened it (the access log
says), and its delivery events, folded as `sendhub transfers` folds them
(`transfers.domain.delivery_of`). Every flag is a word, so no flag is colour alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args
from uuid import UUID

from pydantic import ValidationError

from contracts.packet import TransferPacketV1
from contracts.receipts import PacketReceiptV1, ReceiptStatus
from sendhub.gateway.store import InboxPacket
from services.shared.access import packet_inbox
from services.transfers.domain import DeliveryEvent, delivery_of
from services.transfers.sealed_rows import ErasedPacket

PACKET, AMENDMENT, REROUTED, LA_NOTICE = "Packet", "Amendment", "Re-routed packet", "LA notice"
RECEIPTS: tuple[ReceiptStatus, ...] = get_args(ReceiptStatus)
_RECEIPT_RANK = {"received": 1, "accepted": 2, "rejected": 2}
OPENED_ACTIONS = "packet-"
"""Access-log actions that open one packet (the API's `packet-json`, `packet-ctf`,
`packet-html`; the pages' `packet-page`, `packet-download-*`). An inbox listing
(`inbox-*`) shows a packet's line, not the packet: it leaves it unread."""


def kind_of(packet: TransferPacketV1 | ErasedPacket) -> str:
    if packet.la_notice:
        return LA_NOTICE
    if packet.supersedes and packet.rerouted_from_lost_pupils:
        return REROUTED
    return AMENDMENT if packet.supersedes else PACKET


def _counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def open_flags(packet: TransferPacketV1) -> list[str]:
    """What was still open at the move, short: the packet page says each in full. A
    minimal post-16 packet says so instead (what is open is not shared, not absent)."""
    if packet.minimal_packet:
        return ["Minimal packet: history not shared"]
    flags = []
    if packet.concerns_open:
        flags.append(_counted(len(packet.concerns_open), "open concern", "open concerns"))
    if packet.referrals_pending:
        flags.append(_counted(len(packet.referrals_pending), "referral waiting",
                              "referrals waiting"))
    if packet.ehc_request_open:
        flags.append("EHC needs assessment requested")
    if packet.review_overdue_since:
        flags.append("Plan review overdue")
    return flags


@dataclass(frozen=True)
class Receipt:
    """The receipt the receiver sent, as transfers recorded it."""

    status: ReceiptStatus
    at: datetime
    reason: str | None = None


def receipt_of(events: Sequence[DeliveryEvent]) -> Receipt | None:
    """The furthest receipt (a later one of the same rank wins, as in `delivery_of`),
    still known after the packet was superseded or re-routed."""
    found: Receipt | None = None
    for event in events:
        rank = _RECEIPT_RANK.get(event.state)
        if rank is not None and (found is None or rank >= _RECEIPT_RANK[found.status]):
            found = Receipt(event.state, event.at,  # type: ignore[arg-type]
                            event.detail if event.state == "rejected" else None)
    return found


REPLACED = {"superseded": "Replaced by a later packet",
            "rerouted": "Re-routed to the pupil's new setting"}
NO_RECEIPT = "No receipt yet"


@dataclass(frozen=True)
class Delivered:
    """A packet's delivery as the pages show it."""

    state: str
    sent_at: datetime | None
    receipt: Receipt | None

    @property
    def replaced(self) -> str | None:
        return REPLACED.get(self.state)

    @property
    def receipt_words(self) -> str:
        return self.receipt.status.capitalize() if self.receipt else NO_RECEIPT


def delivered(events: Sequence[DeliveryEvent]) -> Delivered:
    folded = delivery_of(events)
    return Delivered(folded.state, folded.first_sent, receipt_of(events))


def inbox_label(inbox: str) -> str:
    """Which of an LA's two inboxes a packet is in."""
    if inbox.startswith("lost-pupils."):
        return "Lost pupils"
    return "EHC plans" if inbox.startswith("la-") else "Your setting's"


@dataclass(frozen=True)
class InboxRow:
    packet: TransferPacketV1 | ErasedPacket
    position: int
    kind: str
    unread: bool
    open_items: list[str]
    delivery: Delivered
    inbox: str
    erased: str | None = None
    """"erased on D by X because Y": the pupil's data was erased, the row says only that."""

    @property
    def sent_at(self) -> datetime:
        return self.delivery.sent_at or self.packet.generated_at


def flagged_rows(entries: Sequence[InboxPacket], opened: set[UUID],
               events: Mapping[UUID, Sequence[DeliveryEvent]]) -> list[InboxRow]:
    return [_row(e.packet, e.position, opened, events.get(e.packet.packet_id, ()))
            for e in entries]


def _row(packet: TransferPacketV1 | ErasedPacket, position: int, opened: set[UUID],
         events: Sequence[DeliveryEvent]) -> InboxRow:
    if isinstance(packet, ErasedPacket):
        return InboxRow(packet, position, kind_of(packet), False, [], delivered(events),
                        inbox_label(packet.inbox), packet.describe())
    return InboxRow(packet, position, kind_of(packet), packet.packet_id not in opened,
                    open_flags(packet), delivered(events), inbox_label(packet_inbox(packet)))


# -- the receipt form -------------------------------------------------------------------

CHOOSE = "Choose received, accepted or rejected"
WHY_REJECTED = "Say why you reject this packet (wrong pupil, unreadable, not ours...)"
REASON_ONLY_IF_REJECTED = ("A reason goes only with a rejection: clear the reason, or "
                           "choose rejected")


def receipt_from_form(packet: TransferPacketV1, status: object, reason: object, at: datetime
                      ) -> tuple[PacketReceiptV1 | None, dict[str, str]]:
    """The receipt the form asks for, or the form's errors by field (`status`,
    `reason`), in the words the page shows."""
    chosen = status if isinstance(status, str) else ""
    why = reason.strip() if isinstance(reason, str) else ""
    if chosen not in RECEIPTS:
        return None, {"status": CHOOSE}
    if chosen == "rejected" and not why:
        return None, {"reason": WHY_REJECTED}
    if chosen != "rejected" and why:
        return None, {"reason": REASON_ONLY_IF_REJECTED}
    try:
        receipt = PacketReceiptV1(packet_id=packet.packet_id, receiver=packet.receiver,
                                  status=chosen, reason=why or None, at=at)
    except ValidationError as refused:
        return None, {"reason": "; ".join(e["msg"] for e in refused.errors())}
    return receipt, {}


# -- downloads ------------------------------------------------------------------------------

Download = Literal["ctf", "json"]


def download_name(packet: TransferPacketV1, form: Download) -> str:
    """A CTF named as DfE names CTF files (`<LA><estab>_CTF_<LA><estab>_001.XML`; the
    packet with the registry as it is now); JSON by the packet's reference. No pupil's
    name: a file name ends up in folder listings."""
    if form == "ctf":
        origin, to = packet.from_setting, packet.to_setting
        return (f"{origin.la_code}{origin.establishment_number}_CTF_"
                f"{to.la_code}{to.establishment_number}_001.XML")
    return f"transfer-packet-{packet.packet_id}.json"
