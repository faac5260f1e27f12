"""Transfers' faststream app: the only Kafka code of the service.

Consumes `sen.pupil-history.v1` in batches; stores a poll's messages, whatever their
partitions, with each partition's position in one transaction (see application.py;
partition by partition when a message is at fault), then publishes every stored packet not
yet published to the receiver's inbox (an LA's notices included), keyed by `packet_id`,
and marks it published only after the broker acknowledged it. Receivers may see a packet
twice after a crash (same `packet_id`), never not at all. Consumes `sen.packet-
receipts.v1` the same way: a receipt for an unknown packet or from the wrong receiver is
dead-lettered (before its position is stored) with the reason. Failures follow the hub's
one error policy (`services.shared.consuming`). A periodic task re-queues packets nobody
acknowledged within the re-send period (the receiving school's school days: its LA's
term dates as imported, read again every few minutes) and publishes whatever is waiting.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from uuid import UUID

from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    TopicAuthorizationFailedError,
)
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from kafka import errors as kafka_errors

from contracts.history import PupilHistoryEventV1
from contracts.topics import Topics
from services.shared import locks
from services.shared.binding import bind
from services.shared.consuming import ConsumerPolicy, Record
from services.shared.database import require_current
from services.shared.kafka import (
    batch_consumer_options,
    ensure_topics,
    make_broker,
    records_of,
    rejected_topic_config,
    renew_producer,
)
from services.shared.lease import OutboxLease
from services.shared.observing import StoreGauges, run_beside
from services.shared.pupil_keys import pupil_keys_for
from services.shared.school_terms_store import StoredCalendar
from services.shared.settings import HubSettings
from services.shared.tasks import PeriodicTask
from services.transfers import handlers
from services.transfers.application import RefusedReceipt, TransfersApplication
from services.transfers.domain import Receipt
from services.transfers.gauges import TransfersGauges
from services.transfers.post16 import Post16Rules
from services.transfers.repository import ConsumedPosition, PendingPacket

SERVICE = "transfers"
PENDING_BATCH = 100  # packets read from the outbox at a time
RECEIPTS = "transfers-receipts"  # the receipts consumer group; dead letters name "transfers"
log = logging.getLogger("sendhub.transfers")


# The broker refuses these for good: publishing again would fail again.
UNDELIVERABLE = (MessageSizeTooLargeError, InvalidTopicError, TopicAuthorizationFailedError,
                 kafka_errors.InvalidTopicError, kafka_errors.PolicyViolationError,
                 kafka_errors.TopicAuthorizationFailedError)


class NotSentYet(RuntimeError):
    """A packet held back this round: the first packet to its inbox failed."""


_NOT_YET = NotSentYet("held back until a first packet reaches its inbox")


class PacketPublisher(PeriodicTask):
    """Publishes stored packets to inbox topics (creating a receiver's topic on first use);
    every few seconds re-queues overdue packets and sends whatever waits.

    Only the instance holding the outbox lease publishes. Each packet is marked sent as
    soon as the broker acknowledged it, so one refused packet neither holds back nor
    re-sends the others; a packet the broker refuses for good is marked undeliverable.
    The lease is asked again after each read of the outbox, as the history relay does."""

    def __init__(self, settings: HubSettings, transfers: TransfersApplication,
                 broker: KafkaBroker, lease: OutboxLease):
        super().__init__(settings.delivery_interval_seconds, log, "packet.delivery")
        self.settings = settings
        self.transfers = transfers
        self.broker = broker
        self.lease = lease
        self.known_topics: set[str] = set()
        self.sent_to: set[str] = set()  # inboxes this process's producer has sent to
        self.lock = asyncio.Lock()

    async def deliver_pending(self) -> int:
        async with self.lock:
            if not await asyncio.to_thread(self.lease.held):
                return 0  # another instance publishes
            delivered = 0
            while pending := await asyncio.to_thread(self.transfers.pending_packets,
                                                     PENDING_BATCH):
                if not await asyncio.to_thread(self.lease.held):
                    break  # lost while reading (a database restart): the new holder sends
                ready, refused = await self._with_topics(pending)
                results = await self._publish_all(ready)
                sent = [p for p, r in zip(ready, results, strict=True)
                        if not isinstance(r, BaseException)]
                refused += [(p, f"the broker refused it: {type(r).__name__}: {r}")
                            for p, r in zip(ready, results, strict=True)
                            if isinstance(r, UNDELIVERABLE)]
                if sent:
                    await asyncio.to_thread(self.transfers.mark_published, sent)
                if refused:
                    await asyncio.to_thread(self.transfers.mark_undeliverable, refused)
                for failure in results:
                    if isinstance(failure, Exception) and not isinstance(
                            failure, UNDELIVERABLE | NotSentYet):
                        if any(isinstance(r, OutOfOrderSequenceNumber) for r in results):
                            await renew_producer(self.broker)  # else wedged for good
                            self.sent_to.clear()  # the new producer knows no partitions
                        raise failure  # the broker's trouble: retried later
                delivered += len(sent)
                if len(pending) < PENDING_BATCH:
                    break  # that was all (saves a query per delivery)
            return delivered

    async def _publish_all(self, ready: list[PendingPacket]) -> list[BaseException | None]:
        """Publish, each packet's outcome in order: to an inbox this process has not sent
        to yet, one packet first and alone, then the rest together. aiokafka learns a
        topic's partitions on its first send; many first sends at once race its metadata
        refresh, which can forget a partition long enough for a batch to expire and wedge
        the producer (`renew_producer`)."""
        outcome: dict[UUID, BaseException | None] = {}
        held: set[str] = set()  # a first send failed: its topic's others wait
        for p in ready:
            topic = self.settings.topics.inbox(p.inbox)
            if topic not in self.sent_to and topic not in held:
                try:
                    await self._publish(p)
                    outcome[p.packet_id] = None
                    self.sent_to.add(topic)
                except Exception as error:  # its topic's others wait for the next round
                    outcome[p.packet_id] = error
                    held.add(topic)
        others = [p for p in ready if p.packet_id not in outcome
                  and self.settings.topics.inbox(p.inbox) in self.sent_to]
        results = await asyncio.gather(*(self._publish(p) for p in others),
                                       return_exceptions=True)
        outcome.update(zip((p.packet_id for p in others), results, strict=True))
        return [outcome.get(p.packet_id, _NOT_YET) for p in ready]

    async def _with_topics(self, pending: list[PendingPacket]
                           ) -> tuple[list[PendingPacket], list[tuple[PendingPacket, str]]]:
        """Create missing inbox topics one by one; a topic the broker refuses makes its
        packets undeliverable, not the others."""
        refused_topics: dict[str, str] = {}
        for topic in sorted({self.settings.topics.inbox(p.inbox) for p in pending}
                            - self.known_topics):
            try:
                await asyncio.to_thread(ensure_topics, self.settings, [topic])
                self.known_topics.add(topic)
            except UNDELIVERABLE as error:
                refused_topics[topic] = f"its inbox topic was refused: {error}"
        ready = [p for p in pending if self.settings.topics.inbox(p.inbox) not in refused_topics]
        return ready, [(p, refused_topics[self.settings.topics.inbox(p.inbox)])
                       for p in pending if p not in ready]

    async def _publish(self, p: PendingPacket) -> None:
        confirmation = await self.broker.publish(
            p.body.encode(), topic=self.settings.topics.inbox(p.inbox),
            key=str(p.packet_id).encode(),
            headers={"content-type": "application/json", "sendhub-packet-version": "1",
                     "sendhub-attempt": str(p.attempt)},
            no_confirm=True)
        await confirmation
        log.info("packet.delivered", extra={"packet_id": str(p.packet_id),
                                            "receiver": p.inbox, "attempt": p.attempt})

    async def once(self) -> bool:
        if await asyncio.to_thread(self.lease.held):
            await asyncio.to_thread(self.transfers.resend_overdue)
            await self.deliver_pending()
        return False


def build_broker(settings: HubSettings, transfers: TransfersApplication
                 ) -> tuple[KafkaBroker, PacketPublisher]:
    topics = settings.topics
    # New receivers' receipt topics are found within seconds (pattern subscription).
    broker = make_broker(settings, SERVICE, metadata_max_age_ms=5_000)
    history_policy = ConsumerPolicy(SERVICE, broker.publisher(topics.rejected), log)
    receipts_policy = ConsumerPolicy(SERVICE, broker.publisher(topics.rejected), log)
    delivery = PacketPublisher(settings, transfers, broker, OutboxLease(
        settings.database_conninfo, locks.TRANSFERS_OUTBOX, "packets", log))

    @broker.subscriber(topics.pupil_history, **batch_consumer_options(settings, SERVICE))
    async def on_pupil_history(message: KafkaMessage) -> None:
        async def project() -> None:
            parsed = await history_policy.parse_by_partition(
                records_of(message), lambda r: handlers.history_message(r.value or b""))
            await history_policy.store_together(parsed, record_history)
            await delivery.deliver_pending()  # this process's packets, and other instances'

        async def record_history(items: list[tuple[PupilHistoryEventV1, Record]]) -> None:
            batch = [(h, position_of(r)) for h, r in items]
            packets = await asyncio.to_thread(transfers.record_history, batch)
            log.info("history.projected", extra={
                "partitions": sorted({r.partition for _, r in items}),
                "consumed": len(batch), "packets": len(packets)})

        await history_policy.guard(project)

    @broker.subscriber(pattern=receipt_topics(topics),
                       **batch_consumer_options(settings, RECEIPTS))
    async def on_packet_receipts(message: KafkaMessage) -> None:
        await receipts_policy.guard(
            partial(record_receipts, transfers, receipts_policy, records_of(message), topics))

    return broker, delivery


def position_of(record: Record) -> ConsumedPosition:
    return ConsumedPosition(record.topic, record.partition, record.offset)


def receipt_topics(topics: Topics) -> str:
    """The operator's bare receipts topic and every receiver's own (`<topic>.<sender>`)."""
    return re.escape(topics.packet_receipts) + r"(\.[A-Za-z0-9._-]+)?$"


async def record_receipts(transfers: TransfersApplication, policy: ConsumerPolicy,
                          records: Sequence[Record], transfers_topics: Topics) -> None:
    """Receipts, partition by partition; every position counts, so a receipt that could
    not be read (already dead-lettered) is kept as None."""
    parsed = await policy.parse_by_partition(
        records, lambda r: handlers.receipt(r.value or b"", r.topic, list(r.headers or ()),
                                            transfers_topics))
    for place in sorted({(r.topic, r.partition) for r in records}):
        usable = {r.offset: receipt for receipt, r in parsed.get(place, [])}
        items = [(usable.get(r.offset), r) for r in records if (r.topic, r.partition) == place]
        await policy.store(items, partial(_store_receipts, transfers, policy,
                                          asyncio.get_running_loop()))


async def _store_receipts(transfers: TransfersApplication, policy: ConsumerPolicy,
                          loop: asyncio.AbstractEventLoop,
                          items: list[tuple[Receipt | None, Record]]) -> None:
    by_offset = {r.offset: r for _, r in items}

    async def dead_letter_all(refused: list[RefusedReceipt]) -> None:
        for r in refused:
            await policy.reject(by_offset[r.position.offset], handlers.refusal(r.error))

    def keep_refused(refused: list[RefusedReceipt]) -> None:
        # Called inside the transaction: published and acknowledged before the position
        # is stored, so a crash re-reads a refused receipt rather than losing it.
        asyncio.run_coroutine_threadsafe(dead_letter_all(refused), loop).result(60)

    batch = [(receipt, position_of(r)) for receipt, r in items]
    recorded = await asyncio.to_thread(transfers.record_receipts, batch, keep_refused)
    log.info("receipts.recorded", extra={"partition": items[0][1].partition,
                                         "consumed": len(batch), "recorded": recorded})


def build_app(settings: HubSettings, clock: Callable[[], datetime] | None = None) -> FastStream:
    topics = settings.topics
    require_current(settings)  # refuse a database whose schema is not this hub's
    bind(settings, SERVICE)  # refuse a database that belongs to another cluster or namespace
    ensure_topics(settings, [topics.pupil_history, topics.rejected, topics.packet_receipts],
                  rejected_topic_config(settings), service=SERVICE)
    transfers = TransfersApplication.on_postgres(
        settings.database_conninfo, keys=pupil_keys_for(settings), clock=clock,
        resend_after_school_days=settings.resend_after_school_days,
        max_packet_bytes=settings.max_packet_bytes,
        calendar=StoredCalendar(settings.database_conninfo),  # term dates, reloaded
        post16=Post16Rules(settings.post16_concerns_itemised_months))
    broker, delivery = build_broker(settings, transfers)
    stream = FastStream(broker, logger=log)
    run_beside(stream, StoreGauges(TransfersGauges(transfers), settings.metrics_interval_seconds))

    async def stop_delivery() -> None:
        await delivery.stop()
        await asyncio.to_thread(transfers.close)

    stream.after_startup(delivery.start)
    stream.on_shutdown(stop_delivery)
    return stream
