"""Ingest's faststream app: the only Kafka code of the service.

Delivery: at-least-once. The offset is committed only after the accepted event or the
dead letter is acknowledged by the broker (`acks=all`); a crash before that re-reads
the message. Downstream, records ignores an `event_id` it has already stored. Failures
follow the hub's one error policy (`services.shared.consuming`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import Position
from services.ingest.application import screen_school_event
from services.shared.consuming import ConsumerPolicy, Record
from services.shared.kafka import (
    consumer_options,
    ensure_topics,
    make_broker,
    records_of,
    rejected_topic_config,
)
from services.shared.settings import HubSettings

SERVICE = "ingest"
log = logging.getLogger("sendhub.ingest")


def build_broker(settings: HubSettings) -> KafkaBroker:
    topics = settings.topics
    broker = make_broker(settings, SERVICE)
    accepted = broker.publisher(topics.accepted)
    policy = ConsumerPolicy(SERVICE, broker.publisher(topics.rejected), log)

    async def admit(record: Record) -> None:
        position = Position(topic=record.topic, partition=record.partition, offset=record.offset)
        event = screen_school_event(record.value, position=position, now=datetime.now(UTC),
                                    max_bytes=settings.max_event_bytes)
        await accepted.publish(event.model_dump_json().encode(),
                               key=event.event.pupil.upn.encode())
        log.info("school_event.accepted", extra={"event_id": str(event.event.event_id),
                                                 "partition": record.partition,
                                                 "offset": record.offset})

    @broker.subscriber(topics.school_events, **consumer_options(settings, SERVICE))
    async def on_school_event(message: KafkaMessage) -> None:
        for record in records_of(message):
            await policy.guard(partial(policy.handle, record, partial(admit, record)))

    return broker


def build_app(settings: HubSettings) -> FastStream:
    topics = settings.topics
    ensure_topics(
        settings,
        [topics.school_events, topics.accepted, topics.rejected],
        rejected_topic_config(settings), service=SERVICE,
    )
    return FastStream(build_broker(settings), logger=log)
