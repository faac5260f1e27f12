"""Transfers' copies of pupils' histories and packets as stored: sealed with the pupil's
data key, with only what routing and listing need left plain beside the seal.

A `transfers_packets` row keeps in `body` the packet's settings, its move without the
admissions reference, its kind of notice and its versions, and in `sealed` the whole
packet; a `transfers_history` row keeps in `event` the event's type, source, id and
dates, and in `sealed` the whole history message. Each seal is bound to its pupil and
its row (`transfers_packets|<packet_id>`, `transfers_history|<version>`), so a sealed
value copied to another row or pupil no longer opens (`services/shared/pupil_keys.py`).

A row stored before sealing existed (migration 0008 cannot seal: the keys are not in
SQL) has its whole packet or message in the plain column and no `sealed`; it reads as
before, and `sendhub db seal-existing` seals it. Reading an erased pupil's row raises
`PupilErased`; `read_packet` gives an `ErasedPacket` instead, for lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.history import PupilHistoryEventV1
from contracts.packet import LANotice, Setting, TransferPacketV1
from services.shared.access import inbox_of
from services.shared.pupil_keys import Erasure, PupilErased, PupilKeys, pupil_ref_for_upn

Json = dict[str, Any]

PACKET_PLAIN = ("packet_id", "schema_version", "generated_at", "from_setting", "to_setting",
                "history_version", "supersedes", "la_notice", "addressed_to",
                "rerouted_from_lost_pupils", "policy")
"""What a packet row keeps plain: where it goes and what kind it is, nothing about the
pupil (SQL routes and lists by these: inboxes, lost pupils' LA, oversight's scope)."""
MOVE_PLAIN = ("kind", "effective_date", "event_id")
"""The move, less `admissions_reference` (the pupil's reference at the new school)."""
HISTORY_PLAIN = ("version", "notification_id", "recorded_at")
EVENT_PLAIN = ("event_id", "event_type", "occurred_at", "source")
"""A history event's type, dates and source (the school's URN or the LA): oversight
selects its pupils by the source."""


def packet_context(packet_id: UUID | str) -> str:
    return f"transfers_packets|{packet_id}"


def history_context(version: int) -> str:
    return f"transfers_history|{version}"


def _plain(document: Json, keep: tuple[str, ...]) -> Json:
    return {k: document[k] for k in keep if k in document}


# -- packets ----------------------------------------------------------------------------

def plain_packet_body(packet: TransferPacketV1) -> Json:
    """What a packet row keeps plain (`PACKET_PLAIN`, the move's `MOVE_PLAIN`)."""
    whole = packet.model_dump(mode="json")
    body = _plain(whole, PACKET_PLAIN)
    body["move"] = _plain(whole["move"], MOVE_PLAIN)
    return body


def seal_packet(keys: PupilKeys, packet: TransferPacketV1) -> tuple[Json, bytes]:
    """The row's plain `body` and its `sealed` packet. Raises `PupilErased`."""
    body = plain_packet_body(packet)
    sealed = keys.seal(pupil_ref_for_upn(packet.pupil.upn), packet.model_dump_json().encode(),
                       packet_context(packet.packet_id))
    return body, sealed


def open_packet(keys: PupilKeys, upn: str, packet_id: UUID | str, body: Json,
                sealed: bytes | None) -> TransferPacketV1:
    """The whole packet of a row (`upn` as the row has it). Raises `PupilErased`."""
    if sealed is None:  # stored before sealing existed: the whole packet is plain
        return TransferPacketV1.model_validate(body)
    plain = keys.open(pupil_ref_for_upn(upn), bytes(sealed), packet_context(packet_id))
    return TransferPacketV1.model_validate_json(plain)


def packet_json(keys: PupilKeys, upn: str, packet_id: UUID | str, body: Json,
                sealed: bytes | None) -> str:
    """The packet as published (JSON text), opened without being parsed again."""
    if sealed is None:
        return json.dumps(body, separators=(",", ":"))
    return keys.open(pupil_ref_for_upn(upn), bytes(sealed), packet_context(packet_id)).decode()


@dataclass(frozen=True)
class ErasedPacket:
    """A packet whose pupil was erased: where it went and when, and the erasure. Nothing
    about the pupil is left to show."""

    packet_id: UUID
    receiver: str
    from_setting: Setting
    to_setting: Setting
    generated_at: datetime
    la_notice: LANotice | None
    supersedes: UUID | None
    rerouted_from_lost_pupils: bool
    erasure: Erasure

    @property
    def inbox(self) -> str:
        return inbox_of(self.receiver, self.from_setting.la_code)

    def describe(self) -> str:
        """"erased on D", what a list shows instead of the pupil's name."""
        return self.erasure.describe_for_receivers()


def erased_packet(receiver: str, body: Json, erasure: Erasure) -> ErasedPacket:
    """What a row's plain `body` still says of a packet whose pupil was erased."""
    supersedes = body.get("supersedes")
    return ErasedPacket(
        packet_id=UUID(str(body["packet_id"])), receiver=receiver,
        from_setting=Setting.model_validate(body["from_setting"]),
        to_setting=Setting.model_validate(body["to_setting"]),
        generated_at=datetime.fromisoformat(str(body["generated_at"])),
        la_notice=body.get("la_notice"),
        supersedes=UUID(str(supersedes)) if supersedes else None,
        rerouted_from_lost_pupils=bool(body.get("rerouted_from_lost_pupils")),
        erasure=erasure)


def read_packet(keys: PupilKeys, upn: str, receiver: str, body: Json, sealed: bytes | None
                ) -> TransferPacketV1 | ErasedPacket:
    """The whole packet, or (its pupil erased) what is left of it."""
    try:
        return open_packet(keys, upn, str(body["packet_id"]), body, sealed)
    except PupilErased as erased:
        return erased_packet(receiver, body, erased.erasure)


def pupil_named(keys: PupilKeys, upn: str, packet_id: UUID | str, body: Json,
                sealed: bytes | None) -> str:
    """The pupil's name as a list shows it, or the erasure's sentence (the packet is
    opened, not validated: a list of many packets needs only the names)."""
    try:
        pupil = json.loads(packet_json(keys, upn, packet_id, body, sealed))["pupil"]
    except PupilErased as erased:
        return erased.erasure.describe_for_receivers()
    return f"{pupil['given_name']} {pupil['family_name']}"


def prepare(keys: PupilKeys, upns: Iterable[str]) -> None:
    """The keys of the rows about to be opened, fetched in one round trip."""
    keys.prepare_for_reading(pupil_ref_for_upn(upn) for upn in upns)


# -- histories --------------------------------------------------------------------------

def plain_history_event(message: PupilHistoryEventV1) -> Json:
    """What a history row keeps plain (`HISTORY_PLAIN`, the event's `EVENT_PLAIN`)."""
    whole = message.model_dump(mode="json")
    event = _plain(whole, HISTORY_PLAIN)
    event["event"] = _plain(whole["event"], EVENT_PLAIN)
    return event


def seal_history(keys: PupilKeys, message: PupilHistoryEventV1) -> tuple[Json, bytes]:
    """The row's plain `event` and its `sealed` message. Raises `PupilErased`."""
    event = plain_history_event(message)
    sealed = keys.seal(pupil_ref_for_upn(message.upn), message.model_dump_json().encode(),
                       history_context(message.version))
    return event, sealed


def open_history(keys: PupilKeys, upn: str, version: int, event: Json, sealed: bytes | None
                 ) -> PupilHistoryEventV1:
    """The whole history message of a row. Raises `PupilErased`."""
    if sealed is None:
        return PupilHistoryEventV1.model_validate(event, extra="ignore",
                                                  context={"trusted": True})
    plain = keys.open(pupil_ref_for_upn(upn), bytes(sealed), history_context(version))
    return PupilHistoryEventV1.model_validate_json(plain, extra="ignore",
                                                   context={"trusted": True})
