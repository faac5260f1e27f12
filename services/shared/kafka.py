"""Kafka plumbing shared by the services: safe producer settings, topics, dead letters.

Producers use `acks="all"` with idempotence (aiokafka's defaults are `acks=1` without
it). Consumers commit only after the message's effect is stored (faststream's default
is at-most-once `ACK_FIRST`, which we never use). What consumers do with failures is
`consuming.py`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypedDict

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from services.shared.settings import HubSettings

log = logging.getLogger("sendhub.kafka")

# A dead letter carries the original bytes (base64) plus its reasons.
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


def make_broker(settings: HubSettings, client_id: str, **kwargs: Any) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_request_size=DEAD_LETTER_MAX_BYTES,
        logger=logging.getLogger(f"sendhub.{client_id}.faststream"),
        **kwargs,
    )


def ensure_topics(
    settings: HubSettings, names: list[str], configs: dict[str, dict[str, str]] | None = None
) -> None:
    """Create the topics a service needs if they are missing (idempotent, synchronous)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="sendhub-admin"
    )
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs=(configs or {}).get(name, {}),
            )
            for name in names
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
                log.info("topics.created", extra={"topics": [t.name for t in missing]})
            except TopicAlreadyExistsError:
                pass  # another service created it first
    finally:
        admin.close()


def rejected_topic_config(settings: HubSettings) -> dict[str, dict[str, str]]:
    return {settings.topics.rejected: {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)}}


class BatchConsumerOptions(TypedDict):
    group_id: str
    auto_offset_reset: Literal["earliest"]
    batch: Literal[True]
    max_records: int
    batch_timeout_ms: int
    ack_policy: AckPolicy


def batch_consumer_options(settings: HubSettings, service: str) -> BatchConsumerOptions:
    """How the stateful services consume: in batches, from the start, committing after
    the batch's effects are stored, retrying the batch from its first message on error."""
    return {
        "group_id": settings.topics.group(service),
        "auto_offset_reset": "earliest",
        "batch": True,
        "max_records": 200,
        "batch_timeout_ms": 50,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
    }


def records_of(message: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The consumer records behind a (batch) message."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)
