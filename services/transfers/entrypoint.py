"""Transfers' faststream app: the only Kafka code of the service.

Consumes `sen.pupil-history.v1` in batches; stores each partition's share with its
position in one transaction (see application.py), then publishes every stored packet
not yet published to the receiver's inbox, keyed by `packet_id`, and marks it published
only after the broker acknowledged it. Receivers may see a packet twice after a crash
(same `packet_id`), never not at all. Consumes `sen.packet-receipts.v1` the same way: a
receipt for an unknown packet or from the wrong receiver is dead-lettered (before its
position is stored) with the reason. A periodic task re-queues packets nobody
acknowledged within the re-send period and publishes whatever is waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.dead_letter import Problem
from contracts.history import PupilHistoryEventV1
from contracts.receipts import PacketReceiptV1
from services.shared.binding import bind
from services.shared.kafka import (
    batch_consumer_options,
    dead_letters_to,
    ensure_topics,
    make_broker,
    parse_by_partition,
    records_of,
    rejected_topic_config,
)
from services.shared.settings import HubSettings
from services.shared.tasks import PeriodicTask
from services.transfers.application import ConsumedPosition, TransfersStore

SERVICE = "transfers"
RECEIPTS = "transfers-receipts"
log = logging.getLogger("sendhub.transfers")


class PacketDelivery(PeriodicTask):
    """Publishes stored packets to inbox topics (creating a receiver's topic on first use);
    every few seconds re-queues overdue packets and sends whatever waits."""

    def __init__(self, settings: HubSettings, store: TransfersStore, broker: KafkaBroker):
        super().__init__(settings.delivery_interval_seconds, log, "packet.delivery")
        self.settings = settings
        self.store = store
        self.broker = broker
        self.known_topics: set[str] = set()
        self.lock = asyncio.Lock()

    async def deliver_pending(self) -> int:
        async with self.lock:
            delivered = 0
            while pending := await asyncio.to_thread(self.store.pending_packets):
                topics = {self.settings.topics.inbox(p.receiver) for p in pending}
                missing = sorted(topics - self.known_topics)
                if missing:
                    await asyncio.to_thread(ensure_topics, self.settings, missing)
                    self.known_topics |= set(missing)
                sends = [
                    await self.broker.publish(
                        p.body.encode(),
                        topic=self.settings.topics.inbox(p.receiver),
                        key=str(p.packet_id).encode(),
                        headers={"content-type": "application/json",
                                 "sendhub-packet-version": "1",
                                 "sendhub-attempt": str(p.attempt)},
                        no_confirm=True,
                    )
                    for p in pending
                ]
                await asyncio.gather(*sends)
                await asyncio.to_thread(self.store.mark_published, pending)
                for p in pending:
                    log.info("packet.delivered", extra={"packet_id": str(p.packet_id),
                                                        "receiver": p.receiver,
                                                        "attempt": p.attempt})
                delivered += len(pending)
            return delivered

    async def once(self) -> bool:
        await asyncio.to_thread(self.store.resend_overdue)
        await self.deliver_pending()
        return False


def _history_event(value: bytes) -> PupilHistoryEventV1:
    return PupilHistoryEventV1.model_validate_json(value, extra="ignore",
                                                   context={"trusted": True})


def build_broker(settings: HubSettings, store: TransfersStore) -> tuple[KafkaBroker, PacketDelivery]:
    topics = settings.topics
    broker = make_broker(settings, SERVICE)
    reject = dead_letters_to(broker.publisher(topics.rejected), SERVICE, log)
    delivery = PacketDelivery(settings, store, broker)

    @broker.subscriber(topics.pupil_history, **batch_consumer_options(settings, SERVICE))
    async def on_pupil_history(message: KafkaMessage) -> None:
        try:
            parsed = await parse_by_partition(records_of(message), _history_event, reject)
            for partition, items in parsed.items():
                batch = [(h, ConsumedPosition(r.topic, r.partition, r.offset)) for h, r in items]
                built = await asyncio.to_thread(store.record_history, batch)
                log.info("history.projected", extra={"partition": partition,
                                                     "consumed": len(batch), "packets": len(built)})
            await delivery.deliver_pending()
        except Exception:
            log.exception("history.retry")
            await asyncio.sleep(1.0)
            raise

    @broker.subscriber(topics.packet_receipts, **batch_consumer_options(settings, RECEIPTS))
    async def on_packet_receipts(message: KafkaMessage) -> None:
        try:
            parsed = await parse_by_partition(records_of(message),
                                              PacketReceiptV1.model_validate_json, reject)
            for partition, items in parsed.items():
                batch: list[tuple[PacketReceiptV1 | None, ConsumedPosition]] = []
                for receipt, r in items:
                    problem = await asyncio.to_thread(store.check_receipt, receipt)
                    if problem is not None:
                        # Kept before the position is stored: a crash re-sends it, never loses it.
                        await reject(r, problem[0], [Problem(path="", message=problem[1])])
                    batch.append((receipt if problem is None else None,
                                  ConsumedPosition(r.topic, r.partition, r.offset)))
                recorded = await asyncio.to_thread(store.record_receipts, batch)
                log.info("receipts.recorded", extra={"partition": partition,
                                                     "consumed": len(batch), "recorded": recorded})
        except Exception:
            log.exception("receipts.retry")
            await asyncio.sleep(1.0)
            raise

    return broker, delivery


def build_app(settings: HubSettings, clock: Callable[[], datetime] | None = None) -> FastStream:
    topics = settings.topics
    bind(settings)  # refuse a database that belongs to another cluster or namespace
    ensure_topics(settings, [topics.pupil_history, topics.rejected, topics.packet_receipts],
                  rejected_topic_config(settings))
    store = TransfersStore(settings.database_conninfo, clock=clock,
                           resend_after_school_days=settings.resend_after_school_days)
    broker, delivery = build_broker(settings, store)
    stream = FastStream(broker, logger=log)

    async def stop_delivery() -> None:
        await delivery.stop()
        await asyncio.to_thread(store.close)

    stream.after_startup(delivery.start)
    stream.on_shutdown(stop_delivery)
    return stream
