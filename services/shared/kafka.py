"""Kafka plumbing shared by the services: safe producer settings, topics, dead letters.

Producers use `acks="all"` with idempotence (aiokafka's defaults are `acks=1` without
it). Consumers commit only after the message's effect is stored (faststream's default
is at-most-once `ACK_FIRST`, which we never use).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeAlias, TypedDict, TypeVar

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from contracts.dead_letter import DeadLetterV1, Problem, ReasonCode, problems_from
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


def dead_letter_for(
    record: ConsumerRecord[bytes, bytes],
    *,
    reason: ReasonCode,
    problems: list[Problem],
    service: str,
) -> DeadLetterV1:
    """Wrap a consumed message that cannot be used, keeping its bytes and position."""
    return DeadLetterV1.of(
        record.value if record.value is not None else b"",
        reason=reason,
        problems=problems,
        service=service,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        failed_at=datetime.now(UTC),
    )


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


Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
Reject = Callable[[Record, ReasonCode, list[Problem]], Awaitable[None]]
T = TypeVar("T")


class Publisher(Protocol):
    def publish(self, message: Any, /, *args: Any, **kwargs: Any) -> Awaitable[Any]: ...


def dead_letters_to(rejected: Publisher, service: str, logger: logging.Logger) -> Reject:
    """How a consumer keeps what it cannot use: a dead letter on the rejected topic, with
    the original bytes, the reason and where it came from, acknowledged before moving on."""

    async def reject(record: Record, reason: ReasonCode, problems: list[Problem]) -> None:
        letter = dead_letter_for(record, reason=reason, problems=problems, service=service)
        await rejected.publish(letter.model_dump_json().encode(), key=record.key)
        logger.warning("message.dead_lettered", extra={
            "reason": reason, "topic": record.topic, "partition": record.partition,
            "offset": record.offset})

    return reject


async def parse_by_partition(
    records: Sequence[Record], parse: Callable[[bytes], T], reject: Reject
) -> dict[int, list[tuple[T, Record]]]:
    """Parse a batch; dead-letter what fails validation (`schema_invalid`); keep the rest
    grouped by partition, in offset order, each with the record it came from."""
    by_partition: dict[int, list[tuple[T, Record]]] = defaultdict(list)
    for record in records:
        try:
            item = parse(record.value or b"")
        except ValidationError as exc:
            await reject(record, "schema_invalid", problems_from(exc))
            continue
        by_partition[record.partition].append((item, record))
    return by_partition
