"""Transfers' repository in memory: the same promises as PostgreSQL, with no I/O.

For unit tests of every transfers use case (one test body runs on both, see
tests/transfers_cases.py). A transaction works on a copy of the state and keeps it only
when the block ends without an exception, as PostgreSQL's would. Rows are kept as
PostgreSQL keeps them: plain routing columns beside the pupil's data sealed with the
pupil's key (`sealed_rows`, with `InMemoryPupilKeys` unless given other keys).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from contracts.history import PupilHistoryEventV1
from contracts.packet import Setting, TransferPacketV1
from services.shared.access import inbox_of
from services.shared.pupil_keys import (
    InMemoryPupilKeys,
    PupilErased,
    PupilKeys,
    pupil_ref_for_upn,
)
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import (
    Addressee,
    DeliveryEvent,
    DeliveryStep,
    IssuedPacket,
    PacketKind,
    PacketRecord,
)
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import (
    KeptHistories,
    KeptPackets,
    PendingPacket,
    StateSequence,
    TransfersRepository,
)
from services.transfers.sealed_rows import (
    Json,
    open_history,
    open_packet,
    packet_json,
    prepare,
    pupil_named,
    seal_history,
    seal_packet,
)

_ACKNOWLEDGED = {"received", "accepted", "rejected", "superseded", "rerouted"}


@dataclass
class _Stored:
    """A `transfers_packets` row."""

    packet_id: UUID
    upn: str
    receiver: str
    kind: PacketKind
    move_version: int
    built_at: datetime
    supersedes: UUID | None
    body: Json
    sealed: bytes
    published_at: datetime | None = None


@dataclass(frozen=True)
class _HistoryRow:
    upn: str
    version: int
    event: Json
    sealed: bytes


@dataclass
class _State:
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    history: dict[tuple[str, int], _HistoryRow] = field(default_factory=dict)
    packets: dict[UUID, _Stored] = field(default_factory=dict)
    delivery: list[DeliveryStep] = field(default_factory=list)
    registry: dict[str, RegisteredSetting] = field(default_factory=dict)


class InMemoryRepository(TransfersRepository):
    def __init__(self, state: _State, keys: PupilKeys) -> None:
        self.state = state
        self.keys = keys

    def next_offset(self, topic: str, partition: int) -> int:
        return self.state.positions.get((topic, partition), 0)

    def save_next_offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.state.positions[(topic, partition)] = next_offset

    def add_histories(self, messages: Sequence[PupilHistoryEventV1]) -> KeptHistories:
        # As PostgreSQL's: the batch's keys first, every row sealed before any is kept.
        refs = {pupil_ref_for_upn(m.upn): m.upn for m in messages}
        erased = {refs[ref] for ref in self.keys.prepare_for_writing(refs)}
        rows: dict[tuple[str, int], _HistoryRow] = {}
        for m in messages:
            if m.upn in erased or (m.upn, m.version) in rows:
                continue
            try:
                event, sealed = seal_history(self.keys, m)
            except PupilErased:
                erased.add(m.upn)
                continue
            rows[(m.upn, m.version)] = _HistoryRow(m.upn, m.version, event, sealed)
        added = set()
        for key, row in rows.items():
            if row.upn not in erased and key not in self.state.history:
                self.state.history[key] = row
                added.add(key)
        return KeptHistories(frozenset(added), frozenset(erased))

    def _entry(self, row: _HistoryRow) -> HistoryEntry:
        return HistoryEntry.from_contract(
            open_history(self.keys, row.upn, row.version, row.event, row.sealed))

    def history(self, upn: str, up_to_version: int | None = None) -> list[HistoryEntry]:
        return [self._entry(row) for (u, v), row in sorted(self.state.history.items())
                if u == upn and (up_to_version is None or v <= up_to_version)]

    def histories(self, upns: Collection[str],
                  known: Mapping[tuple[str, int], HistoryEntry] | None = None,
                  ) -> dict[str, list[HistoryEntry]]:
        found: dict[str, list[HistoryEntry]] = {upn: [] for upn in upns}
        known = known or {}
        for key, row in sorted(self.state.history.items()):
            if key[0] in found:
                entry = known.get(key)
                found[key[0]].append(self._entry(row) if entry is None else entry)
        return found

    def history_extents(self, upns: Collection[str]) -> dict[str, tuple[int, int]]:
        versions: dict[str, list[int]] = {}
        for upn, version in self.state.history:
            if upn in upns:
                versions.setdefault(upn, []).append(version)
        return {upn: (max(held), len(held)) for upn, held in versions.items()}

    def _packet(self, s: _Stored) -> TransferPacketV1:
        return open_packet(self.keys, s.upn, s.packet_id, s.body, s.sealed)

    def latest_packets(self, upns: Collection[str]) -> dict[str, IssuedPacket]:
        latest: dict[str, _Stored] = {}
        for s in self.state.packets.values():
            if s.upn not in upns or s.kind == "la_notice":
                continue
            held = latest.get(s.upn)
            if held is None or _rank(s) > _rank(held):
                latest[s.upn] = s
        return {upn: IssuedPacket(self._packet(s), s.move_version, s.kind)
                for upn, s in latest.items()}

    def packets_of(self, upns: Collection[str]) -> set[UUID]:
        return {s.packet_id for s in self.state.packets.values() if s.upn in upns}

    def add_packets(self, issued: Sequence[IssuedPacket]) -> KeptPackets:
        # As PostgreSQL's: the pupils' keys first, every packet sealed before any is kept.
        refs = {pupil_ref_for_upn(i.packet.pupil.upn): i.packet.pupil.upn for i in issued}
        erased = {refs[ref] for ref in self.keys.prepare_for_writing(refs)}
        rows = []
        for i in issued:
            if i.packet.pupil.upn in erased:
                continue
            try:
                rows.append((i, *seal_packet(self.keys, i.packet)))
            except PupilErased:
                erased.add(i.packet.pupil.upn)
        added = set()
        for i, body, sealed in rows:
            packet = i.packet
            if packet.pupil.upn in erased or packet.packet_id in self.state.packets:
                continue
            self.state.packets[packet.packet_id] = _Stored(
                packet.packet_id, packet.pupil.upn, packet.receiver, i.kind,
                i.move_version, packet.generated_at, packet.supersedes, body, sealed)
            added.add(packet.packet_id)
        return KeptPackets(frozenset(added), frozenset(erased))

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None:
        stored = self.state.packets.get(packet_id)
        return None if stored is None else self._packet(stored)

    def addressee_of(self, packet_id: UUID) -> Addressee | None:
        stored = self.state.packets.get(packet_id)
        if stored is None:
            return None
        return Addressee(stored.receiver, inbox_of(stored.receiver, _la_of(stored)))

    def _in_order(self) -> list[_Stored]:
        # As PostgreSQL orders them: by build time, then packet id.
        return sorted(self.state.packets.values(), key=lambda s: (s.built_at, s.packet_id))

    def packets_for(self, receiver: str) -> list[TransferPacketV1]:
        mine = [s for s in self._in_order() if s.receiver == receiver]
        prepare(self.keys, (s.upn for s in mine))
        return [self._packet(s) for s in mine]

    def append_delivery(self, step: DeliveryStep) -> bool:
        if step.receipt_key and any(s.receipt_key == step.receipt_key
                                    for s in self.state.delivery):
            return False
        self.state.delivery.append(step)
        return True

    def append_deliveries(self, steps: Sequence[DeliveryStep]) -> None:
        for step in steps:
            self.append_delivery(step)

    def delivery_events(self, packet_id: UUID) -> list[DeliveryEvent]:
        return [s.event for s in self.state.delivery if s.packet_id == packet_id]

    def unpublished(self, limit: int) -> list[PendingPacket]:
        waiting = [s for s in self._in_order() if s.published_at is None and not any(
            e.state == "undeliverable" for e in self.delivery_events(s.packet_id))
        ][:limit]
        pending = []
        for s in waiting:
            try:
                body, erased = packet_json(self.keys, s.upn, s.packet_id, s.body, s.sealed), None
            except PupilErased as gone:
                body, erased = "", gone.erasure.describe_for_receivers()
            pending.append(PendingPacket(
                s.packet_id, s.receiver, body,
                1 + sum(1 for e in self.delivery_events(s.packet_id) if e.state == "sent"),
                inbox_of(s.receiver, _la_of(s)), erased))
        return pending

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
        listed = [s for s in self._in_order() if (not receiver or s.receiver == receiver)
                  and (not upn or s.upn == upn)]
        prepare(self.keys, (s.upn for s in listed))  # as PostgreSQL's: one round trip
        for s in listed:
            events = tuple(self.delivery_events(s.packet_id))
            if unacknowledged_only and (s.published_at is None
                                        or any(e.state in _ACKNOWLEDGED for e in events)):
                continue
            to = s.body["to_setting"]
            found.append(PacketRecord(
                packet_id=s.packet_id, upn=s.upn,
                pupil=pupil_named(self.keys, s.upn, s.packet_id, s.body, s.sealed),
                receiver=s.receiver,
                receiver_name=None if s.kind == "la_notice" else to.get("name"),
                receiver_la_code=(s.receiver[3:] if s.receiver.startswith("la-")
                                  else to.get("la_code")),
                kind=s.kind, built_at=s.built_at, supersedes=s.supersedes,
                events=events))
        return found

    def registered(self, setting: Setting) -> RegisteredSetting | None:
        if setting.kind == "school":
            return self.state.registry.get(setting.urn or "")
        return next((s for s in self.state.registry.values()
                     if s.ukprn and s.ukprn == setting.ukprn), None)

    def read_registry(self, urns: Collection[str]) -> None:
        pass  # in memory, every lookup is as quick

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


def _rank(s: _Stored) -> tuple[int, int]:
    """As PostgreSQL orders a pupil's packets for the latest: move, then history version."""
    return s.move_version, int(s.body["history_version"])


def _la_of(s: _Stored) -> str | None:
    la: str | None = s.body["from_setting"].get("la_code")
    return la


class InMemoryTransfers:
    def __init__(self, keys: PupilKeys | None = None) -> None:
        self.state = _State()
        self.keys = keys or InMemoryPupilKeys()

    @contextmanager
    def transaction(self) -> Iterator[TransfersRepository]:
        working = copy.deepcopy(self.state)
        yield InMemoryRepository(working, self.keys)
        self.state = working

    def close(self) -> None:
        pass
