"""What transfers keeps, as an interface: the history projection, Kafka positions, the
packets it built, their delivery events, and the settings registry.

Two implementations keep the same promises: `postgres.PostgresTransfers` for the
service, and `memory.InMemoryTransfers` for tests with no I/O. A `transaction()` is the
unit of work: everything done through the repository it yields is kept together, or
not at all (an exception rolls it back). The application owns the transactions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from contracts.history import PupilHistoryEventV1
from contracts.packet import Setting, TransferPacketV1
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import (
    Addressee,
    DeliveryEvent,
    DeliveryStep,
    IssuedPacket,
    PacketRecord,
)
from services.transfers.registry import RegisteredSetting


@dataclass(frozen=True)
class ConsumedPosition:
    """Where a consumed message sits in Kafka; stored with its effects."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class PendingPacket:
    """A stored packet waiting to be published, as the bytes to publish."""

    packet_id: UUID
    receiver: str
    body: str
    attempt: int
    inbox: str = ""  # the topic's receiver name: see services.shared.access.inbox_of
    erased: str | None = None
    """Set (the erasure's sentence, `body` empty) when the pupil was erased before the
    packet was published: it can no longer be, and is kept as undeliverable."""


@dataclass(frozen=True)
class StateSequence:
    """How many packets went through one sequence of delivery states, in the order they
    were appended: few distinct sequences, however many packets (for the metrics)."""

    states: tuple[str, ...]
    packets: int


@dataclass(frozen=True)
class KeptHistories:
    """What `add_histories` did with a batch: the (UPN, version)s it newly holds, and
    the pupils whose data was erased, of whom it kept nothing."""

    added: frozenset[tuple[str, int]]
    erased: frozenset[str]


@dataclass(frozen=True)
class KeptPackets:
    """What `add_packets` did: the packets it newly holds, and the pupils whose data was
    erased, of whom it kept no packet."""

    added: frozenset[UUID]
    erased: frozenset[str]


class TransfersRepository(Protocol):
    """Typed reads and writes inside one transaction."""

    def next_offset(self, topic: str, partition: int) -> int:
        """The next offset to consume on a partition (0 when none), locked until commit."""
        ...

    def save_next_offset(self, topic: str, partition: int, next_offset: int) -> None: ...

    def add_histories(self, messages: Sequence[PupilHistoryEventV1]) -> KeptHistories:
        """Keep a batch's history events, in a bounded number of round trips whatever its
        size: a (pupil, version) already held, or twice in the batch, is kept once (the
        first); nothing is kept of a pupil whose data was erased."""
        ...

    def history(self, upn: str, up_to_version: int | None = None) -> list[HistoryEntry]:
        """The pupil's projected history in version order."""
        ...

    def histories(self, upns: Collection[str],
                  known: Mapping[tuple[str, int], HistoryEntry] | None = None,
                  ) -> dict[str, list[HistoryEntry]]:
        """Each pupil's history in version order (empty when none is held), in one
        round trip; `known` are entries the caller just kept, by (UPN, version), taken as
        they are rather than opened again. Raises `PupilErased` when one of them was
        erased."""
        ...

    def history_extents(self, upns: Collection[str]) -> dict[str, tuple[int, int]]:
        """Each pupil's (highest version held, number of versions held), equal when none
        is missing, in one round trip; a pupil with none held is left out."""
        ...

    def latest_packets(self, upns: Collection[str]) -> dict[str, IssuedPacket]:
        """Each pupil's newest packet to a receiving setting (or the lost-pupils inbox):
        latest move, then latest amendment, in one round trip. A local authority's notice
        (kind `la_notice`) is never it; a pupil with none is left out. Raises
        `PupilErased` when one of them was erased."""
        ...

    def packets_of(self, upns: Collection[str]) -> set[UUID]:
        """The ids of every packet held for these pupils (none opened), in one round
        trip."""
        ...

    def add_packets(self, issued: Sequence[IssuedPacket]) -> KeptPackets:
        """Keep packets (unpublished), in a bounded number of round trips however many:
        one whose `packet_id` is already held is left as it is; nothing is kept of a
        pupil whose data was erased."""
        ...

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None: ...

    def addressee_of(self, packet_id: UUID) -> Addressee | None: ...

    def packets_for(self, receiver: str) -> list[TransferPacketV1]:
        """The packets stored for a receiver (`urn-...`, `lost-pupils`, `la-803`...)."""
        ...

    def append_delivery(self, step: DeliveryStep) -> bool:
        """Append a delivery event; False when its receipt key is already held."""
        ...

    def append_deliveries(self, steps: Sequence[DeliveryStep]) -> None:
        """Append delivery events in their order, in one round trip; one whose receipt
        key is already held is left out."""
        ...

    def delivery_events(self, packet_id: UUID) -> list[DeliveryEvent]: ...

    def unpublished(self, limit: int) -> list[PendingPacket]:
        """Packets waiting to be published, oldest first, with their attempt number."""
        ...

    def mark_published(self, packet_ids: Sequence[UUID], at: datetime) -> None: ...

    def requeue(self, packet_ids: Sequence[UUID]) -> None:
        """Make published packets wait to be published again (a re-send)."""
        ...

    def packet_records(self, *, receiver: str | None = None, upn: str | None = None,
                       unacknowledged_only: bool = False) -> list[PacketRecord]:
        """Packets with their delivery events, in the order they were built.
        `unacknowledged_only`: published, with no receipt and no successor."""
        ...

    def registered(self, setting: Setting) -> RegisteredSetting | None: ...

    def read_registry(self, urns: Collection[str]) -> None:
        """Read the registry's schools of these URNs in one round trip, for the lookups
        (`registered`) this transaction makes next: a hint, others are still looked up."""
        ...

    def la_name(self, la_code: str) -> str | None:
        """The name of the LA with this code, as the registry's settings in it name it."""
        ...

    def import_settings(self, settings: Sequence[RegisteredSetting], at: datetime) -> int: ...

    def registered_settings(self) -> list[RegisteredSetting]: ...

    def state_sequences(self) -> list[StateSequence]:
        """Every packet counted by the sequence of its delivery states (none: pending)."""
        ...

    def unpublished_count(self) -> int:
        """How many packets wait to be published (first sends and re-sends)."""
        ...


class Transfers(Protocol):
    """The store behind the repository: opens transactions, and is closed at the end."""

    def transaction(self) -> AbstractContextManager[TransfersRepository]: ...

    def close(self) -> None: ...
