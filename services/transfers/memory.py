"""Transfers' repository in memory: the same promises as PostgreSQL, with no I/O.

For unit tests of every transfers use case (one test body runs on both, see
tests/transfers_cases.py). A transaction works on a copy of the state and keeps it only
when the block ends without an exception, as PostgreSQL's would.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from contracts.history import PupilHistoryEventV1
from contracts.packet import Setting, TransferPacketV1
from services.shared.access import packet_inbox
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import (
    Addressee,
    DeliveryEvent,
    DeliveryStep,
    IssuedPacket,
    PacketRecord,
)
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import PendingPacket, StateSequence, TransfersRepository

_ACKNOWLEDGED = {"received", "accepted", "rejected", "superseded", "rerouted"}


@dataclass
class _Stored:
    issued: IssuedPacket
    published_at: datetime | None = None


@dataclass
class _State:
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    history: dict[tuple[str, int], PupilHistoryEventV1] = field(default_factory=dict)
    packets: dict[UUID, _Stored] = field(default_factory=dict)
    delivery: list[DeliveryStep] = field(default_factory=list)
    registry: dict[str, RegisteredSetting] = field(default_factory=dict)


class InMemoryRepository(TransfersRepository):
    def __init__(self, state: _State) -> None:
        self.state = state

    def next_offset(self, topic: str, partition: int) -> int:
        return self.state.positions.get((topic, partition), 0)

    def save_next_offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.state.positions[(topic, partition)] = next_offset

    def add_history(self, message: PupilHistoryEventV1) -> bool:
        key = (message.upn, message.version)
        if key in self.state.history:
            return False
        self.state.history[key] = message
        return True

    def history(self, upn: str, up_to_version: int | None = None) -> list[HistoryEntry]:
        return [HistoryEntry.from_contract(m) for (u, v), m in sorted(self.state.history.items())
                if u == upn and (up_to_version is None or v <= up_to_version)]

    def entry(self, upn: str, version: int) -> HistoryEntry | None:
        message = self.state.history.get((upn, version))
        return None if message is None else HistoryEntry.from_contract(message)

    def history_extent(self, upn: str) -> tuple[int, int]:
        versions = [v for u, v in self.state.history if u == upn]
        return max(versions, default=0), len(versions)

    def latest_packet(self, upn: str) -> IssuedPacket | None:
        mine = [s.issued for s in self.state.packets.values()
                if s.issued.packet.pupil.upn == upn and s.issued.kind != "la_notice"]
        return max(mine, key=lambda i: (i.move_version, i.packet.history_version), default=None)

    def add_packet(self, issued: IssuedPacket) -> bool:
        if issued.packet.packet_id in self.state.packets:
            return False
        self.state.packets[issued.packet.packet_id] = _Stored(issued)
        return True

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None:
        stored = self.state.packets.get(packet_id)
        return None if stored is None else stored.issued.packet

    def addressee_of(self, packet_id: UUID) -> Addressee | None:
        packet = self.packet(packet_id)
        if packet is None:
            return None
        return Addressee(packet.receiver, packet_inbox(packet))

    def _in_order(self) -> list[_Stored]:
        # As PostgreSQL orders them: by build time, then packet id.
        return sorted(self.state.packets.values(),
                      key=lambda s: (s.issued.packet.generated_at, s.issued.packet.packet_id))

    def packets_for(self, receiver: str) -> list[TransferPacketV1]:
        return [s.issued.packet for s in self._in_order() if s.issued.packet.receiver == receiver]

    def append_delivery(self, step: DeliveryStep) -> bool:
        if step.receipt_key and any(s.receipt_key == step.receipt_key
                                    for s in self.state.delivery):
            return False
        self.state.delivery.append(step)
        return True

    def delivery_events(self, packet_id: UUID) -> list[DeliveryEvent]:
        return [s.event for s in self.state.delivery if s.packet_id == packet_id]

    def unpublished(self, limit: int) -> list[PendingPacket]:
        waiting = [s for s in self._in_order() if s.published_at is None and not any(
            e.state == "undeliverable" for e in self.delivery_events(s.issued.packet.packet_id))
        ][:limit]
        return [PendingPacket(
            s.issued.packet.packet_id, s.issued.packet.receiver,
            s.issued.packet.model_dump_json(),
            1 + sum(1 for e in self.delivery_events(s.issued.packet.packet_id)
                    if e.state == "sent"),
            packet_inbox(s.issued.packet))
            for s in waiting]

    def mark_published(self, packet_ids: Sequence[UUID], at: datetime) -> None:
        for packet_id in packet_ids:
            if packet_id in self.state.packets:  # as an UPDATE of no row does nothing
                self.state.packets[packet_id].published_at = at

    def requeue(self, packet_ids: Sequence[UUID]) -> None:
        for packet_id in packet_ids:
            if packet_id in self.state.packets:
                self.state.packets[packet_id].published_at = None

    def packet_records(self, *, receiver: str | None = None, upn: str | None = None,
                       unacknowledged_only: bool = False) -> list[PacketRecord]:
        found = []
        for s in self._in_order():
            p = s.issued.packet
            events = tuple(self.delivery_events(p.packet_id))
            if (receiver and p.receiver != receiver) or (upn and p.pupil.upn != upn):
                continue
            if unacknowledged_only and (s.published_at is None
                                        or any(e.state in _ACKNOWLEDGED for e in events)):
                continue
            found.append(PacketRecord(
                packet_id=p.packet_id, upn=p.pupil.upn,
                pupil=f"{p.pupil.given_name} {p.pupil.family_name}",
                receiver=p.receiver,
                receiver_name=None if s.issued.kind == "la_notice" else p.to_setting.name,
                receiver_la_code=(p.receiver[3:] if p.receiver.startswith("la-")
                                  else p.to_setting.la_code),
                kind=s.issued.kind, built_at=p.generated_at, supersedes=p.supersedes,
                events=events))
        return found

    def registered(self, setting: Setting) -> RegisteredSetting | None:
        if setting.kind == "school":
            return self.state.registry.get(setting.urn or "")
        return next((s for s in self.state.registry.values()
                     if s.ukprn and s.ukprn == setting.ukprn), None)

    def la_name(self, la_code: str) -> str | None:
        return next((s.la_name for _, s in sorted(self.state.registry.items())
                     if s.la_code == la_code and s.la_name), None)

    def import_settings(self, settings: Sequence[RegisteredSetting], at: datetime) -> int:
        for s in settings:
            self.state.registry[s.urn] = s
        return len(settings)

    def registered_settings(self) -> list[RegisteredSetting]:
        return sorted(self.state.registry.values(), key=lambda s: (s.la_code or "", s.urn))

    def state_sequences(self) -> list[StateSequence]:
        counted = Counter(tuple(e.state for e in self.delivery_events(packet_id))
                          for packet_id in self.state.packets)
        return [StateSequence(states, packets) for states, packets in counted.items()]

    def unpublished_count(self) -> int:
        return sum(1 for s in self.state.packets.values() if s.published_at is None)


class InMemoryTransfers:
    def __init__(self) -> None:
        self.state = _State()

    @contextmanager
    def transaction(self) -> Iterator[TransfersRepository]:
        working = copy.deepcopy(self.state)
        yield InMemoryRepository(working)
        self.state = working

    def close(self) -> None:
        pass
