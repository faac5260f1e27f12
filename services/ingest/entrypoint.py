"""Ingest's faststream app: the only Kafka code of the service.

Delivery: at-least-once, in batches. A batch's events are screened one by one, the
accepted ones published together (the idempotent producer keeps each partition's order),
and the batch's offsets are committed only after every accepted event and dead letter
is acknowledged by the broker (`acks=all`); a crash before that re-reads the batch.
Downstream, records ignores an `event_id` it has already stored. Failures follow the
hub's one error policy (`services.shared.consuming`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import Position
from contracts.topics import Topics
from services.ingest.application import Principals, RememberedPrincipals, admit_school_event
from services.shared.consuming import ConsumerPolicy, Record
from services.shared.kafka import (
    batch_consumer_options,
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

    async def admit(record: Record, sends: list[Awaitable[Any]]) -> None:
        """Screen one record; an accepted event is handed to the producer, its
        acknowledgement added to `sends` (a refusal raises, for the policy)."""
        position = Position(topic=record.topic, partition=record.partition, offset=record.offset)
        event = admit_school_event(record.value, position=position, now=datetime.now(UTC),
                                   max_bytes=settings.max_event_bytes,
                                   headers=list(record.headers or ()), topics=topics,
                                   principals=known)
        sent = await accepted.publish(event.model_dump_json().encode(),
                                      key=event.event.pupil.upn.encode(), no_confirm=True)
        # aiokafka hands back the acknowledgement to await; the in-memory test broker
        # has delivered already and hands back none.
        sends.append(sent if inspect.isawaitable(sent) else asyncio.sleep(0))

    async def admit_batch(records: tuple[Record, ...]) -> None:
        sends: list[Awaitable[Any]] = []
        for record in records:
            await policy.handle(record, partial(admit, record, sends))
        await asyncio.gather(*sends)  # every acknowledgement before the offsets commit
        log.info("school_events.accepted", extra={
            "consumed": len(records), "accepted": len(sends),
            "partition": records[-1].partition, "last_offset": records[-1].offset})

    @broker.subscriber(pattern=inbound_topics(topics),
                       **batch_consumer_options(settings, SERVICE))
    async def on_school_events(message: KafkaMessage) -> None:
        await policy.guard(partial(admit_batch, records_of(message)))

    return broker


def build_app(settings: HubSettings) -> FastStream:
    topics = settings.topics
    ensure_topics(
        settings,
        [topics.school_events, topics.accepted, topics.rejected],
        rejected_topic_config(settings), service=SERVICE,
    )
    return FastStream(build_broker(settings), logger=log)
