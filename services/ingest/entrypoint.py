"""Ingest's faststream app: the only Kafka code of the service.

Delivery: at-least-once. The offset is committed only after the accepted event or the
dead letter is acknowledged by the broker (`acks=all`); a crash before that re-reads
the message. Downstream, records ignores an `event_id` it has already stored. Failures
follow the hub's one error policy (`services.shared.consuming`).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from functools import partial

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import Position
from contracts.topics import Topics
from services.ingest.application import Principals, RememberedPrincipals, admit_school_event
from services.shared.consuming import ConsumerPolicy, Record
from services.shared.kafka import (
    consumer_options,
    ensure_topics,
    make_broker,
    records_of,
    rejected_topic_config,
)
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings

SERVICE = "ingest"
METADATA_REFRESH_MS = 5_000
log = logging.getLogger("sendhub.ingest")


def inbound_topics(topics: Topics) -> str:
    """The operator's bare inbound topic and every sender's own (`<topic>.<sender>`)."""
    return re.escape(topics.school_events) + r"(\.[A-Za-z0-9._-]+)?$"


def build_broker(settings: HubSettings, principals: Principals | None = None) -> KafkaBroker:
    topics = settings.topics
    # New senders' topics are found within METADATA_REFRESH_MS (pattern subscription).
    broker = make_broker(settings, SERVICE, metadata_max_age_ms=METADATA_REFRESH_MS)
    accepted = broker.publisher(topics.accepted)
    policy = ConsumerPolicy(SERVICE, broker.publisher(topics.rejected), log)
    known = RememberedPrincipals(principals or PrincipalStore(settings.database_conninfo,
                                                              with_members=False))

    async def admit(record: Record) -> None:
        position = Position(topic=record.topic, partition=record.partition, offset=record.offset)
        event = admit_school_event(record.value, position=position, now=datetime.now(UTC),
                                   max_bytes=settings.max_event_bytes,
                                   headers=list(record.headers or ()), topics=topics,
                                   principals=known)
        await accepted.publish(event.model_dump_json().encode(),
                               key=event.event.pupil.upn.encode())
        log.info("school_event.accepted", extra={"event_id": str(event.event.event_id),
                                                 "partition": record.partition,
                                                 "offset": record.offset})

    @broker.subscriber(pattern=inbound_topics(topics), **consumer_options(settings, SERVICE))
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
