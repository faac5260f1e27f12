"""Transfers' use cases: project pupils' histories and issue packets and amendments,
record receipts, queue what is due to be sent again, and read it all back.

Application layer: owns the transactions and the clock; the decisions are the domain's
policies, the storage is a `Transfers` repository (PostgreSQL, or in memory for tests).
Exactly-once effects: each partition's consumed position is kept in the same
transaction as what it produced; a (pupil, version), a packet or a receipt already held
changes nothing. Packets are kept before they are published (an outbox), so a crash
never loses one, and a re-send carries the same `packet_id`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from contracts.history import PupilHistoryEventV1
from contracts.packet import TransferPacketV1
from services.shared.pupil_keys import (
    PupilErased,
    PupilKeys,
    pupil_keys_for,
)
from services.shared.school_days import BANK_HOLIDAYS_ONLY, SchoolCalendar
from services.shared.sen_record import HistoryEntry
from services.shared.settings import HubSettings
from services.transfers.domain import (
    MAX_PACKET_BYTES,
    Addressee,
    DeliveryEvent,
    DeliveryStep,
    PacketDelivery,
    Receipt,
    TransfersError,
    calls_for_amendment,
    delivery_of,
    delivery_status,
    when_late_entry_recorded_amend_packet,
    when_packet_overdue_send_again,
    when_plan_moves_to_another_la_notify_both_las,
    when_pupil_moved_issue_packet,
    when_receipt_arrives_record_delivery,
)
from services.transfers.history_batch import HistoryBatch, entry_at
from services.transfers.packets import packet_id_for
from services.transfers.post16 import DEFAULT_RULES, Post16Rules
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import (
    ConsumedPosition,
    PendingPacket,
    StateSequence,
    Transfers,
    TransfersRepository,
)

log = logging.getLogger("sendhub.transfers")


def _complete_prefix(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """Versions 1..n with none missing (history in version order)."""
    complete = []
    for expected, h in enumerate(history, start=1):
        if h.version != expected:
            break
        complete.append(h)
    return complete
T = TypeVar("T")


@dataclass(frozen=True)
class RefusedReceipt:
    """A receipt the hub cannot use, at its position, with the reason."""

    position: ConsumedPosition
    error: TransfersError


KeepRefused = Callable[[list[RefusedReceipt]], None]


def _fresh(repo: TransfersRepository, batch: Sequence[tuple[T, ConsumedPosition]]
           ) -> list[tuple[T, ConsumedPosition]]:
    """The part of a batch not yet consumed, partition by partition (a redelivery skips
    what was kept before). Positions are read (and locked) in a fixed order, so two
    instances overlapping in a rebalance cannot deadlock on them."""
    next_offsets = {place: repo.next_offset(*place)
                    for place in sorted({(p.topic, p.partition) for _, p in batch})}
    return [(item, p) for item, p in batch if p.offset >= next_offsets[(p.topic, p.partition)]]


def _consumed(repo: TransfersRepository, fresh: Sequence[tuple[object, ConsumedPosition]]) -> None:
    """Each partition's next position, after the last of its messages in the batch."""
    last: dict[tuple[str, int], int] = {}
    for _, p in fresh:
        last[(p.topic, p.partition)] = max(p.offset, last.get((p.topic, p.partition), -1))
    for (topic, partition), offset in sorted(last.items()):
        repo.save_next_offset(topic, partition, offset + 1)


@dataclass(frozen=True)
class PacketCounts:
    """Packets by delivery state, and how many wait to be published."""

    by_state: dict[str, int]
    unpublished: int


def _by_state(sequences: Sequence[StateSequence]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sequence in sequences:
        state = delivery_of([DeliveryEvent(s, _EPOCH) for s in sequence.states]).state
        counts[state] = counts.get(state, 0) + sequence.packets
    return counts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


CalendarSource = SchoolCalendar | Callable[[], SchoolCalendar]
"""A school calendar, or something that gives the current one (`StoredCalendar`)."""


class TransfersApplication:
    """`resend_after_school_days` is counted by `calendar` in each packet's receiving
    school's LA: by default weekdays less England's bank holidays. `post16` is the local
    policy post-16 packets are built by (SENDHUB_POST16_CONCERNS_ITEMISED_MONTHS)."""

    def __init__(self, transfers: Transfers, *, clock: Callable[[], datetime] | None = None,
                 resend_after_school_days: int = 15,
                 max_packet_bytes: int = MAX_PACKET_BYTES,
                 calendar: CalendarSource = BANK_HOLIDAYS_ONLY,
                 post16: Post16Rules = DEFAULT_RULES) -> None:
        self.transfers = transfers
        self.post16 = post16
        self.clock = clock or (lambda: datetime.now(UTC))
        self.resend_after_school_days = resend_after_school_days
        self.max_packet_bytes = max_packet_bytes
        self.calendar_source = calendar

    @property
    def calendar(self) -> SchoolCalendar:
        source = self.calendar_source
        return source if isinstance(source, SchoolCalendar) else source()

    @classmethod
    def on_postgres(cls, conninfo: str, *, keys: PupilKeys,
                    clock: Callable[[], datetime] | None = None,
                    resend_after_school_days: int = 15,
                    max_packet_bytes: int = MAX_PACKET_BYTES,
                    calendar: CalendarSource = BANK_HOLIDAYS_ONLY,
                    post16: Post16Rules = DEFAULT_RULES) -> TransfersApplication:
        from services.transfers.postgres import PostgresTransfers

        return cls(PostgresTransfers(conninfo, keys), clock=clock,
                   resend_after_school_days=resend_after_school_days,
                   max_packet_bytes=max_packet_bytes, calendar=calendar, post16=post16)

    @classmethod
    def for_settings(cls, settings: HubSettings, **options: Any) -> TransfersApplication:
        """On the settings' database, with the pupils' keys their master key opens
        (`pupil_keys_for`), closed with the application."""
        return cls.on_postgres(settings.database_conninfo, keys=pupil_keys_for(settings),
                               **options)

    def close(self) -> None:
        self.transfers.close()

    # -- histories, packets and amendments -------------------------------------------

    def record_history(
        self, batch: Sequence[tuple[PupilHistoryEventV1, ConsumedPosition]]
    ) -> list[UUID]:
        """Keep a batch's history events with their positions, in one transaction (one or
        several partitions: a pupil's events are all on one); issue a packet for each
        move, then one amendment per pupil whose former school recorded late.

        A packet is only built from a complete history (versions 1..n all held): when one
        is missing (transfers set a message aside), the move waits, and the packet goes
        out when the missing event is delivered again.

        An event for a pupil whose data was erased is not kept and builds nothing (records
        refuses such events already: this is a guard).

        The batch is read and kept in a bounded number of round trips, whatever its size
        (`HistoryBatch`); each event is still judged in its order, against the history as it
        stood once the events before it were kept."""
        if not batch:
            return []
        with self.transfers.transaction() as repo:
            fresh = _fresh(repo, batch)
            if not fresh:
                return []
            seen = HistoryBatch.kept(repo, [message for message, _ in fresh])
            issued: list[tuple[str, UUID]] = []
            for upn in sorted(seen.due - seen.erased):
                try:
                    issued += ((upn, p) for p in self._when_pupil_moved(repo, seen, upn))
                except PupilErased:  # erased while this batch was being stored
                    log.warning("packet.pupil_erased", extra={"move": True})
                    seen.late.discard(upn)
                    continue
                # Entries behind the move in this same batch were checked before its packet
                # existed: a late one (the LA's plan decided before arrival) amends it now.
                if upn in seen.behind_a_move and self._late_behind_packet(seen, upn):
                    seen.late.add(upn)
            for upn in sorted(seen.late - seen.erased):
                try:
                    amendment = self._when_late_entry(repo, seen, upn)
                except PupilErased:
                    log.warning("packet.pupil_erased", extra={"late": True})
                    continue
                if amendment:
                    issued.append((upn, amendment))
            erased = seen.keep_all(repo)
            _consumed(repo, fresh)
        return [packet_id for upn, packet_id in issued if upn not in erased]

    def _when_pupil_moved(self, repo: TransfersRepository, seen: HistoryBatch, upn: str
                          ) -> list[UUID]:
        """Issue the packet of every move in the complete part of the history that has
        none yet, and with it the notices to both LAs when an EHC plan moves to another
        LA (stored in the same transaction, published by the same outbox); a move after
        a gap waits."""
        history = seen.histories[upn]
        complete = _complete_prefix(history)
        issued = []
        for move in (h for h in complete if h.event.event_type == "pupil_moved"):
            if packet_id_for(upn, move.event.event_id) in seen.held:
                continue
            now = self.clock()
            issue = when_pupil_moved_issue_packet(
                [h for h in complete if h.version <= move.version], move,
                seen.latest.get(upn), now, repo.registered, self.max_packet_bytes,
                repo.la_name, self.post16)
            seen.keep(repo, issue)
            issued.append(issue.issued.packet.packet_id)
            for notice in when_plan_moves_to_another_la_notify_both_las(
                    issue, now, repo.registered, self.max_packet_bytes):
                seen.keep(repo, notice)
                issued.append(notice.issued.packet.packet_id)
        if len(complete) < len(history):
            log.warning("packet.held_back", extra={
                "missing_version": len(complete) + 1, "held_versions": len(history)})
        return issued

    @staticmethod
    def _late_behind_packet(seen: HistoryBatch, upn: str) -> bool:
        latest = seen.latest.get(upn)
        if latest is None:
            return False
        complete = _complete_prefix(seen.histories[upn])
        after = [h for h in complete if h.version > latest.packet.history_version]
        if not after:
            return False
        move = entry_at(seen.histories[upn], latest.move_version)
        return any(calls_for_amendment(h, complete, latest, move) for h in after)

    def _when_late_entry(self, repo: TransfersRepository, seen: HistoryBatch, upn: str
                         ) -> UUID | None:
        latest = seen.latest.get(upn)
        if latest is None:
            return None
        issue = when_late_entry_recorded_amend_packet(
            _complete_prefix(seen.histories[upn]), latest, self.clock(), repo.registered,
            self.max_packet_bytes, repo.la_name, self.post16)
        if issue is None:
            return None
        seen.keep(repo, issue)
        return issue.issued.packet.packet_id

    # -- receipts ---------------------------------------------------------------------

    def record_receipts(self, batch: Sequence[tuple[Receipt | None, ConsumedPosition]],
                        keep_refused: KeepRefused) -> int:
        """Append a batch's usable receipts as delivery events, with the positions.

        Refused receipts (unknown packet, wrong receiver) are handed to `keep_refused`
        before the position is stored, so a crash re-reads them rather than losing them.
        None marks a message already dead-lettered upstream: only its position counts.
        """
        if not batch:
            return 0
        recorded = 0
        refused: list[RefusedReceipt] = []
        with self.transfers.transaction() as repo:
            fresh = _fresh(repo, batch)
            for receipt, position in fresh:
                if receipt is None:
                    continue
                try:
                    step = when_receipt_arrives_record_delivery(
                        receipt, repo.addressee_of(receipt.packet_id))
                except TransfersError as error:
                    refused.append(RefusedReceipt(position, error))
                    continue
                recorded += repo.append_delivery(step)
            if refused:
                keep_refused(refused)
            if fresh:
                _consumed(repo, fresh)
        return recorded

    # -- sending ----------------------------------------------------------------------

    def pending_packets(self, limit: int = 100) -> list[PendingPacket]:
        """Packets to publish; one whose pupil was erased before it went out is kept as
        undeliverable, with the erasure, and never published."""
        now = self.clock()
        with self.transfers.transaction() as repo:
            pending = repo.unpublished(limit)
            for p in pending:
                if p.erased is not None:
                    repo.append_delivery(DeliveryStep(p.packet_id, DeliveryEvent(
                        "undeliverable", now, f"the pupil's data was {p.erased}")))
        return [p for p in pending if p.erased is None]

    def mark_published(self, packets: Sequence[PendingPacket]) -> None:
        """After the broker acknowledged: published now, one `sent` step per attempt."""
        now = self.clock()
        with self.transfers.transaction() as repo:
            repo.mark_published([p.packet_id for p in packets], now)
            for p in packets:
                repo.append_delivery(DeliveryStep(p.packet_id, DeliveryEvent(
                    "sent", now, f"attempt {p.attempt}")))

    def mark_undeliverable(self, refused: Sequence[tuple[PendingPacket, str]]) -> None:
        """The broker refused these packets for good (too large, topic refused): they
        are kept with the reason, reported, and not published again."""
        now = self.clock()
        with self.transfers.transaction() as repo:
            for p, reason in refused:
                repo.append_delivery(DeliveryStep(p.packet_id, DeliveryEvent(
                    "undeliverable", now, reason)))

    def resend_overdue(self) -> list[UUID]:
        """Queue for sending again every packet with no receipt for the re-send period."""
        calendar = self.calendar
        with self.transfers.transaction() as repo:
            due = when_packet_overdue_send_again(
                repo.packet_records(unacknowledged_only=True), self.clock().date(),
                self.resend_after_school_days, calendar)
            if due:
                repo.requeue(due)
        if due:
            log.info("packet.resend_due", extra={"count": len(due)})
        return due

    # -- reading ------------------------------------------------------------------------

    def deliveries(self, *, receiver: str | None = None, overdue_only: bool = False,
                   upn: str | None = None, unacknowledged_only: bool = False
                   ) -> list[PacketDelivery]:
        """Packets with their delivery state, for admissions and the local authority."""
        today = self.clock().date()
        with self.transfers.transaction() as repo:
            records = repo.packet_records(receiver=receiver, upn=upn,
                                          unacknowledged_only=unacknowledged_only or overdue_only)
        calendar = self.calendar
        found = [delivery_status(r, today, self.resend_after_school_days, calendar)
                 for r in records]
        return [d for d in found if d.overdue or not overdue_only]

    def packet_counts(self) -> PacketCounts:
        """Packets by delivery state (the same fold as `deliveries`, over the sequences of
        states only) and how many wait to be published; for the metrics."""
        with self.transfers.transaction() as repo:
            sequences, waiting = repo.state_sequences(), repo.unpublished_count()
        return PacketCounts(_by_state(sequences), waiting)

    def delivery_events(self, packet_id: UUID) -> list[DeliveryEvent]:
        with self.transfers.transaction() as repo:
            return repo.delivery_events(packet_id)

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None:
        with self.transfers.transaction() as repo:
            return repo.packet(packet_id)

    def addressee_of(self, packet_id: UUID) -> Addressee | None:
        """Whom a packet went to, from its plain columns (also for an erased pupil's)."""
        with self.transfers.transaction() as repo:
            return repo.addressee_of(packet_id)

    def packets_for(self, receiver: str) -> list[TransferPacketV1]:
        with self.transfers.transaction() as repo:
            return repo.packets_for(receiver)

    def history_of(self, upn: str) -> list[HistoryEntry]:
        with self.transfers.transaction() as repo:
            return repo.history(upn)

    # -- the settings registry ----------------------------------------------------------

    def import_settings(self, settings: Sequence[RegisteredSetting]) -> int:
        with self.transfers.transaction() as repo:
            return repo.import_settings(settings, self.clock())

    def registered_settings(self) -> list[RegisteredSetting]:
        with self.transfers.transaction() as repo:
            return repo.registered_settings()
