"""Ingest's faststream app: the only Kafka code of the service.

Delivery: at-least-once. The offset is committed only after the accepted event or the
dead letter is acknowledged by the broker (`acks=all`); a crash before that re-reads
the message. Downstream, records ignores an `event_id` it has already stored.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import Position
from contracts.dead_letter import Problem
from services.ingest.handlers import Refused, screen_school_event
from services.shared.kafka import (
    dead_letter_for,
    ensure_topics,
    make_broker,
    rejected_topic_config,
)
from services.shared.settings import HubSettings

SERVICE = "ingest"
log = logging.getLogger("sendhub.ingest")


def build_broker(settings: HubSettings) -> KafkaBroker:
    topics = settings.topics
    broker = make_broker(settings, SERVICE)
    accepted = broker.publisher(topics.accepted)
    rejected = broker.publisher(topics.rejected)

    @broker.subscriber(
        topics.school_events,
        group_id=topics.group(SERVICE),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_school_event(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        position = Position(topic=record.topic, partition=record.partition, offset=record.offset)
        try:
            result = screen_school_event(
                record.value,
                position=position,
                now=datetime.now(UTC),
                max_bytes=settings.max_event_bytes,
            )
        except Exception as exc:  # a bug must not turn one message into an endless retry
            log.exception("school_event.unscreenable", extra={"offset": record.offset})
            result = Refused(
                "schema_invalid",
                [Problem(path="", message=f"could not be checked ({type(exc).__name__})")],
            )
        try:
            if isinstance(result, Refused):
                letter = dead_letter_for(
                    record, reason=result.reason, problems=result.problems, service=SERVICE
                )
                await rejected.publish(letter.model_dump_json().encode(), key=record.key)
                log.info(
                    "school_event.rejected",
                    extra={"reason": result.reason, "partition": record.partition,
                           "offset": record.offset},
                )
                return
            await accepted.publish(
                result.model_dump_json().encode(), key=result.event.pupil.upn.encode()
            )
            log.info(
                "school_event.accepted",
                extra={"event_id": str(result.event.event_id), "partition": record.partition,
                       "offset": record.offset},
            )
        except Exception:
            # Broker trouble: wait, then let faststream seek back and retry this message.
            log.exception("school_event.retry", extra={"offset": record.offset})
            await asyncio.sleep(1.0)
            raise

    return broker


def build_app(settings: HubSettings) -> FastStream:
    topics = settings.topics
    ensure_topics(
        settings,
        [topics.school_events, topics.accepted, topics.rejected],
        rejected_topic_config(settings),
    )
    return FastStream(build_broker(settings), logger=log)
