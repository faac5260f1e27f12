"""Transfers' policies: when something happens to a pupil's history or a packet, what the
hub stores and sends. Each policy is named after its trigger and its reaction.

Domain layer, pure: no I/O, no clock (the time is passed in). The packet itself is built
by `packets.py`; the registry of settings is passed in as a lookup function. Refusals
are named `TransfersError`s, each with the dead-letter reason a receiver is told.

When a pupil with an LA's EHC plan moves to a setting in another local authority, the
plan follows the pupil: both LAs get a notice (the whole packet, the plan and the clocks
that now run for the new LA; SEND Regulations 2014, reg. 15). Those notices are
`la_notice` packets, never the receiving setting's: amendments and re-routes ignore them.

Delivery is a sequence of append-only events per packet (`pending`, `sent`, `received`,
`accepted`, `rejected`, `superseded`, `rerouted`, `undeliverable`); a packet's state is
folded from them. The re-send window is counted in the receiving school's school days
(a `SchoolCalendar`, passed in: by default weekdays less England's bank holidays).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from contracts.packet import LANotice, Setting, TransferPacketV1
from contracts.school_events import PupilMovedV1
from services.shared.access import la_receiver
from services.shared.school_days import BANK_HOLIDAYS_ONLY, SchoolCalendar
from services.shared.sen_record import HistoryEntry
from services.transfers.packet_parts import clocks_for_new_la
from services.transfers.packets import (
    NotAMove,
    amendment_changes,
    build_transfer_packet,
    corrects_what_was_sent,
    fitted,
    is_late_entry,
    la_notice_packet,
)
from services.transfers.post16 import DEFAULT_RULES, Post16Rules
from services.transfers.registry import RegisteredSetting

PacketKind = Literal["first", "amendment", "reroute", "la_notice"]
"""`la_notice`: a notice to a local authority about a move (an EHC plan that moves to
another LA), never mistaken for the receiving setting's packet."""
RegistryLookup = Callable[[Setting], RegisteredSetting | None]
LANames = Callable[[str], str | None]
"""An LA's name by its code, as the settings registry has it (None: not known)."""


class TransfersError(Exception):
    """Base class of the transfers domain's refusals; `reason` is the dead-letter code."""

    reason: ClassVar[Literal["unknown_packet", "wrong_receiver", "not_authorised"]]


class UnknownPacket(TransfersError):
    """Raised when a receipt names a packet this hub never built."""

    reason = "unknown_packet"


class WrongReceiver(TransfersError):
    """Raised when a receipt comes from a setting the packet was not sent to."""

    reason = "wrong_receiver"


class NotAuthorised(TransfersError):
    """Raised when whoever wrote a receipt (its topic says who) may not answer for the
    packet: only the inbox the packet went to may."""

    reason = "not_authorised"


@dataclass(frozen=True)
class Addressee:
    """Whom a packet is for (`receiver`, as in the packet) and the inbox it went to."""

    receiver: str
    inbox: str


@dataclass(frozen=True)
class IssuedPacket:
    """A packet the hub built, with the history version of the move it is about."""

    packet: TransferPacketV1
    move_version: int
    kind: PacketKind


@dataclass(frozen=True)
class DeliveryEvent:
    """One step in a packet's delivery, as stored (append-only)."""

    state: str
    at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class DeliveryStep:
    """A delivery event to append to one packet; a receipt's step carries a key so the
    same receipt twice is stored once."""

    packet_id: UUID
    event: DeliveryEvent
    receipt_key: str | None = None


@dataclass(frozen=True)
class Issue:
    """What issuing a packet stores: the packet, and delivery steps for it and for the
    packet it replaces."""

    issued: IssuedPacket
    steps: tuple[DeliveryStep, ...]
    for_las: TransferPacketV1 | None = None
    """The packet the local authorities' notices are made from, when it is not the
    receiver's: a post-16 provider's minimal packet still lets an EHC plan follow the
    young person (not stored as a packet of its own)."""


@dataclass(frozen=True)
class Receipt:
    """A receiving setting's word on a packet: received, accepted or rejected (why)."""

    packet_id: UUID
    receiver: str
    status: str
    at: datetime
    reason: str | None = None
    # The inboxes of the principal that wrote it (an LA has two); None for the operator's
    # bare topic.
    from_inboxes: tuple[str, ...] | None = None


def with_registry(packet: TransferPacketV1, registry: RegistryLookup,
                  la_names: LANames | None = None) -> TransferPacketV1:
    """The packet with the registry's names and DfE numbers for both settings (and the
    name of the LA maintaining an EHC plan, when `la_names` knows it); a setting the
    registry does not know is marked `in_registry: false`, and still gets its packet."""
    urns = {t.setting_urn for t in packet.timeline} | {packet.from_setting.urn or ""}
    schools = sorted(u for u in urns if u and not u.startswith("la-"))  # an LA has no URN
    names = {urn: known.name for urn in schools
             if (known := registry(Setting(kind="school", urn=urn))) is not None}
    update: dict[str, object] = {"from_setting": _described(packet.from_setting, registry),
                                 "to_setting": _described(packet.to_setting, registry),
                                 "setting_names": names}
    plan = packet.ehc_plan
    if plan is not None and plan.maintaining_la and la_names is not None:
        update["ehc_plan"] = plan.model_copy(
            update={"maintaining_la_name": la_names(plan.maintaining_la)})
    return packet.model_copy(update=update)


def _described(setting: Setting, registry: RegistryLookup) -> Setting:
    if setting.kind == "unknown":
        return setting
    known = registry(setting)
    if known is None:
        return setting.model_copy(update={"in_registry": False})
    return setting.model_copy(update={"name": known.name, "la_code": known.la_code,
                                      "establishment_number": known.establishment_number,
                                      "in_registry": True})


MAX_PACKET_BYTES = 900_000
"""Below Kafka's default largest message (1 MiB), with room for headers and batching."""


def _issue(packet: TransferPacketV1, move_version: int, kind: PacketKind, now: datetime,
           registry: RegistryLookup, replaced: DeliveryStep | None = None,
           max_bytes: int = MAX_PACKET_BYTES, la_names: LANames | None = None) -> Issue:
    """A packet is sent whole if it fits one message, condensed if that makes it fit,
    else kept as `undeliverable` with the reason (and never published)."""
    packet, fits = fitted(with_registry(packet, registry, la_names), max_bytes)
    if fits:
        note = (f"{packet.to_setting.receiver} is not in the settings registry"
                if packet.to_setting.in_registry is False else None)
        first = DeliveryStep(packet.packet_id, DeliveryEvent("pending", now, note))
    else:
        size = len(packet.model_dump_json().encode())
        first = DeliveryStep(packet.packet_id, DeliveryEvent(
            "undeliverable", now, f"the packet is {size:,} bytes even with long texts "
            f"shortened, over the {max_bytes:,}-byte limit of one message"))
    steps = (first,) if replaced is None else (first, replaced)
    return Issue(IssuedPacket(packet, move_version, kind), steps)


def when_pupil_moved_issue_packet(
    history: Sequence[HistoryEntry], move: HistoryEntry, latest: IssuedPacket | None,
    now: datetime, registry: RegistryLookup, max_bytes: int = MAX_PACKET_BYTES,
    la_names: LANames | None = None, post16: Post16Rules = DEFAULT_RULES,
) -> Issue:
    """A move issues the packet built from the history as it stood at the move. When the
    pupil's latest packet went to the lost-pupils inbox, this one re-routes it. A
    minimal post-16 packet comes with the full one for the LAs' notices (`for_las`)."""
    previous = latest.packet if latest else None
    rerouted = previous is not None and previous.to_setting.kind == "unknown"
    upto = [h for h in history if h.version <= move.version]
    packet = build_transfer_packet(
        upto, move.version, generated_at=now,
        supersedes=previous.packet_id if rerouted and previous else None,
        rerouted_from_lost_pupils=rerouted, post16=post16,
    )
    for_las = None
    if packet.minimal_packet is not None:
        for_las = with_registry(build_transfer_packet(
            upto, move.version, generated_at=now, post16=post16, for_local_authority=True),
            registry, la_names)
    replaced = None
    if rerouted and previous is not None:
        replaced = DeliveryStep(previous.packet_id, DeliveryEvent(
            "rerouted", now, f"destination now known: re-sent as {packet.packet_id} "
            f"to {packet.to_setting.receiver}"))
    issue = _issue(packet, move.version, "reroute" if rerouted else "first", now, registry,
                   replaced, max_bytes, la_names)
    return Issue(issue.issued, issue.steps, for_las) if for_las is not None else issue


def when_plan_moves_to_another_la_notify_both_las(
    issue: Issue, now: datetime, registry: RegistryLookup, max_bytes: int = MAX_PACKET_BYTES,
) -> list[Issue]:
    """A move's packet issued for a pupil whose EHC plan an LA maintains (its own events
    say so: `confirmed_by_la`), to a setting whose LA (the settings registry's, a
    post-16 provider's too) is another: the plan follows the pupil (SEND Regulations
    2014, reg. 15). The new LA gets the packet as `ehc_plan_transfer_in` (`la-<new>`),
    the LA that maintained the plan the same as `ehc_plan_transfer_out` (`la-<old>`),
    each with the clocks that now run for the new LA, from the move's effective date.

    The hub knows settings, not home addresses, so the settings' LAs stand for the
    areas: the leaving setting must be in the LA that maintains the plan (a pupil
    already at a school across the border, moving on within that other LA, is not a
    plan moving LA, and is not notified again and again).

    Nothing for a pupil with no plan, a plan only a school reported (no LA to tell),
    a move within the LA, a destination unknown (a lost pupil's packet goes to the
    leaving school's LA already) or not in the registry (its LA is not known)."""
    packet = issue.for_las or issue.issued.packet
    plan = packet.ehc_plan
    if plan is None or not plan.confirmed_by_la or not plan.maintaining_la:
        return []
    if packet.to_setting.kind == "unknown":
        return []
    destination = registry(packet.to_setting)
    new_la = destination.la_code if destination else None
    if new_la is None or new_la == plan.maintaining_la:
        return []
    if packet.from_setting.la_code != plan.maintaining_la:
        return []
    clocks = clocks_for_new_la(plan, packet.move.effective_date, new_la)
    notices: tuple[tuple[LANotice, str], ...] = (
        ("ehc_plan_transfer_in", la_receiver(new_la)),
        ("ehc_plan_transfer_out", la_receiver(plan.maintaining_la)))
    return [_issue(la_notice_packet(packet, receiver=receiver, notice=notice, clocks=clocks),
                   issue.issued.move_version, "la_notice", now, registry, None, max_bytes)
            for notice, receiver in notices]


def is_late_for(entry: HistoryEntry, latest: IssuedPacket | None,
                move: HistoryEntry | None) -> bool:
    """An entry calls for an amendment when it is newer than the latest packet and the
    former school is catching up on a day on or before the move (`is_late_entry`)."""
    if latest is None or entry.version <= latest.packet.history_version:
        return False
    if move is None or not isinstance(move.event, PupilMovedV1):
        raise NotAMove(f"the packet {latest.packet.packet_id} names history version "
                       f"{latest.move_version} as its move, which is not a held pupil_moved")
    return is_late_entry(entry, move.event)


def calls_for_amendment(entry: HistoryEntry, history: Sequence[HistoryEntry],
                        latest: IssuedPacket | None, move: HistoryEntry | None) -> bool:
    """A late entry (`is_late_for`), or a setting's correction of an entry the latest
    packet gave its receiver: a receiver who got wrong content is told it was withdrawn
    or corrected (UK GDPR Article 19: recipients are told of a rectification or
    erasure)."""
    if latest is not None and corrects_what_was_sent(entry, history, latest.packet):
        return True
    return is_late_for(entry, latest, move)


def when_late_entry_recorded_amend_packet(
    history: Sequence[HistoryEntry], latest: IssuedPacket, now: datetime,
    registry: RegistryLookup, max_bytes: int = MAX_PACKET_BYTES,
    la_names: LANames | None = None, post16: Post16Rules = DEFAULT_RULES,
) -> Issue | None:
    """Late entries from the former school, and corrections of what the receiver had,
    issue an amendment that supersedes the latest packet and lists what it adds,
    withdraws or corrects; None when nothing would change."""
    previous = latest.packet
    changes = amendment_changes(previous, history)
    if not changes:
        return None
    packet = build_transfer_packet(
        history, latest.move_version, generated_at=now,
        up_to_version=max(h.version for h in history),
        supersedes=previous.packet_id, changes=changes, post16=post16,
    )
    replaced = DeliveryStep(previous.packet_id, DeliveryEvent(
        "superseded", now, f"amended by {packet.packet_id}: {len(changes)} change(s)"))
    return _issue(packet, latest.move_version, "amendment", now, registry, replaced, max_bytes,
                  la_names)


def when_receipt_arrives_record_delivery(receipt: Receipt, sent_to: Addressee | None
                                         ) -> DeliveryStep:
    """A receipt becomes a delivery step of its packet, keyed so a repeat is stored once.
    Refused when the hub never built the packet, sent it to another setting, or when the
    receipt's writer is not the packet's inbox (authority from the topic, not the body)."""
    if sent_to is None:
        raise UnknownPacket(f"no packet {receipt.packet_id} was sent by this hub")
    if receipt.from_inboxes is not None and sent_to.inbox not in receipt.from_inboxes:
        raise NotAuthorised(f"a receipt for packet {receipt.packet_id} came from the holder "
                            f"of inbox {' and '.join(receipt.from_inboxes)}; only "
                            f"{sent_to.inbox} may send it")
    if sent_to.receiver != receipt.receiver:
        raise WrongReceiver(f"packet {receipt.packet_id} was sent to {sent_to.receiver}, "
                            f"not to {receipt.receiver}")
    key = f"{receipt.packet_id}/{receipt.status}/{receipt.at.isoformat()}"
    return DeliveryStep(receipt.packet_id, DeliveryEvent(receipt.status, receipt.at,
                                                         receipt.reason), receipt_key=key)


def school_days_between(start: date, end: date, calendar: SchoolCalendar = BANK_HOLIDAYS_ONLY,
                        la_code: str | None = None) -> int:
    """School days after `start` up to and including `end` in the LA `la_code`, by
    `calendar`: by default weekdays less England's bank holidays, the stated fallback
    where an LA's term dates are not known (which errs early)."""
    return calendar.school_days_between(start, end, la_code)


@dataclass(frozen=True)
class Delivery:
    """A packet's delivery state, folded from its delivery events.

    Its re-send window (`school_days`) is the hub's local re-send policy
    (`SENDHUB_RESEND_AFTER_SCHOOL_DAYS`), counted in the receiving school's school days.
    It is not the statutory 15 school days of the Education (Pupil Information) (England)
    Regulations 2005, reg. 9, within which the old school must send the common transfer
    file: that one is measured elsewhere."""

    state: str
    attempts: int
    first_sent: datetime | None
    last_sent: datetime | None
    reason: str | None

    def school_days_waiting(self, today: date, calendar: SchoolCalendar = BANK_HOLIDAYS_ONLY,
                            la_code: str | None = None) -> int:
        return 0 if self.first_sent is None else school_days_between(
            self.first_sent.date(), today, calendar, la_code)

    def is_overdue(self, today: date, school_days: int,
                   calendar: SchoolCalendar = BANK_HOLIDAYS_ONLY, la_code: str | None = None
                   ) -> bool:
        """Sent, with no receipt, for at least `school_days` school days since first sent."""
        return (self.state == "sent"
                and self.school_days_waiting(today, calendar, la_code) >= school_days)

    def resend_due(self, today: date, school_days: int,
                   calendar: SchoolCalendar = BANK_HOLIDAYS_ONLY, la_code: str | None = None
                   ) -> bool:
        """Sent, with no receipt, for at least `school_days` school days since last sent."""
        return (self.state == "sent" and self.last_sent is not None
                and school_days_between(self.last_sent.date(), today, calendar,
                                        la_code) >= school_days)


_RANK = {"pending": 0, "sent": 1, "received": 2, "accepted": 3, "rejected": 3}


def delivery_of(events: Sequence[DeliveryEvent]) -> Delivery:
    """Receipts may arrive in any order: a packet is as far along as its furthest
    receipt, and a superseded, re-routed or undeliverable packet is that whatever else
    happened (the first of those three that happened)."""
    state, reason = "pending", None
    sends = [e.at for e in events if e.state == "sent"]
    for event in events:
        if event.state in ("superseded", "rerouted", "undeliverable"):
            state, reason = event.state, event.detail
            break
        if event.state in _RANK and _RANK[event.state] >= _RANK[state]:
            state = event.state
            reason = event.detail if event.state == "rejected" else None
    return Delivery(state=state, attempts=len(sends), first_sent=min(sends, default=None),
                    last_sent=max(sends, default=None), reason=reason)


@dataclass(frozen=True)
class PacketRecord:
    """A stored packet as the delivery views need it: who, where, and its events."""

    packet_id: UUID
    upn: str
    pupil: str
    receiver: str
    receiver_name: str | None
    receiver_la_code: str | None  # whose term dates count its school days
    kind: str
    built_at: datetime
    supersedes: UUID | None
    events: tuple[DeliveryEvent, ...]


@dataclass(frozen=True)
class PacketDelivery(PacketRecord):
    """A row of `sendhub transfers`: one packet and where its delivery stands."""

    delivery: Delivery
    overdue: bool
    school_days_waiting: int


def delivery_status(record: PacketRecord, today: date, school_days: int,
                    calendar: SchoolCalendar = BANK_HOLIDAYS_ONLY) -> PacketDelivery:
    delivery = delivery_of(record.events)
    la_code = record.receiver_la_code
    return PacketDelivery(**vars(record), delivery=delivery,
                          overdue=delivery.is_overdue(today, school_days, calendar, la_code),
                          school_days_waiting=delivery.school_days_waiting(today, calendar,
                                                                           la_code))


def when_packet_overdue_send_again(
    unacknowledged: Sequence[PacketRecord], today: date, school_days: int,
    calendar: SchoolCalendar = BANK_HOLIDAYS_ONLY,
) -> list[UUID]:
    """Packets sent with no receipt for `school_days` school days of their receiver's LA
    since they were last sent are sent again, with the same `packet_id` (README:
    receipts and re-sending). The local re-send policy, not the statutory clock
    (`Delivery`)."""
    return [r.packet_id for r in unacknowledged
            if delivery_of(r.events).resend_due(today, school_days, calendar, r.receiver_la_code)]
