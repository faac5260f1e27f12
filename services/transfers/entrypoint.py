"""Transfers' faststream app: the only Kafka code of the service.

Consumes `sen.pupil-history.v1` in batches; stores each partition's share with its
position in one transaction (see application.py), then publishes every stored packet
not yet published to the receiver's inbox, keyed by `packet_id`, and marks it published
only after the broker acknowledged it. Receivers may see a packet twice after a crash
(same `packet_id`), never not at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from contracts.dead_letter import problems_from
from contracts.history import PupilHistoryEventV1
from services.shared.kafka import (
    batch_consumer_options,
    dead_letter_for,
    ensure_topics,
    make_broker,
    records_of,
    rejected_topic_config,
)
from services.shared.settings import HubSettings
from services.transfers.application import ConsumedPosition, TransfersStore

SERVICE = "transfers"
log = logging.getLogger("sendhub.transfers")


class PacketDelivery:
    """Publishes stored packets to inbox topics (creating a receiver's topic on first use)."""

    def __init__(self, settings: HubSettings, store: TransfersStore, broker: KafkaBroker):
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
                                 "sendhub-packet-version": "1"},
                        no_confirm=True,
                    )
                    for p in pending
                ]
                await asyncio.gather(*sends)
                await asyncio.to_thread(self.store.mark_published, [p.packet_id for p in pending])
                for p in pending:
                    log.info("packet.delivered",
                             extra={"packet_id": str(p.packet_id), "receiver": p.receiver})
                delivered += len(pending)
            return delivered


def build_broker(settings: HubSettings, store: TransfersStore) -> tuple[KafkaBroker, PacketDelivery]:
    topics = settings.topics
    broker = make_broker(settings, SERVICE)
    rejected = broker.publisher(topics.rejected)
    delivery = PacketDelivery(settings, store, broker)

    @broker.subscriber(topics.pupil_history, **batch_consumer_options(settings, SERVICE))
    async def on_pupil_history(message: KafkaMessage) -> None:
        records = records_of(message)
        by_partition: dict[int, list[tuple[PupilHistoryEventV1, ConsumedPosition]]] = (
            defaultdict(list)
        )
        try:
            for record in records:
                try:
                    history_event = PupilHistoryEventV1.model_validate_json(
                        record.value or b"", extra="ignore", context={"trusted": True}
                    )
                except ValidationError as exc:
                    letter = dead_letter_for(record, reason="schema_invalid",
                                             problems=problems_from(exc), service=SERVICE)
                    await rejected.publish(letter.model_dump_json().encode(), key=record.key)
                    continue
                by_partition[record.partition].append(
                    (history_event, ConsumedPosition(record.topic, record.partition, record.offset))
                )
            for partition, batch in by_partition.items():
                built = await asyncio.to_thread(store.record_history, batch)
                log.info("history.projected", extra={"partition": partition,
                                                     "consumed": len(batch), "packets": len(built)})
            await delivery.deliver_pending()
        except Exception:
            log.exception("history.retry")
            await asyncio.sleep(1.0)
            raise

    return broker, delivery


def build_app(settings: HubSettings) -> FastStream:
    topics = settings.topics
    ensure_topics(settings, [topics.pupil_history, topics.rejected], rejected_topic_config(settings))
    store = TransfersStore(settings.database_conninfo)
    broker, delivery = build_broker(settings, store)
    stream = FastStream(broker, logger=log)

    async def deliver_left_over() -> None:
        count = await delivery.deliver_pending()
        if count:
            log.info("packet.delivered_after_restart", extra={"count": count})

    stream.after_startup(deliver_left_over)

    async def close_store() -> None:
        await asyncio.to_thread(store.close)

    stream.on_shutdown(close_store)
    return stream
