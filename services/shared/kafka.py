"""Kafka plumbing shared by the services: safe producer settings, topics, dead letters.

Producers use `acks="all"` with idempotence (aiokafka's defaults are `acks=1` without
it). Consumers commit only after the message's effect is stored (faststream's default
is at-most-once `ACK_FIRST`, which we never use). What consumers do with failures is
`consuming.py`.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Literal, TypedDict, cast

import aiokafka
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream._internal.parser import DefaultCodec  # faststream internals: renew_producer
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic, OffsetSpec
from kafka.errors import (
    NotLeaderForPartitionError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from services.shared.settings import HubSettings

log = logging.getLogger("sendhub.kafka")

# A dead letter carries the original bytes (base64) plus its reasons.
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


_warned_plaintext = False


def _plaintext_warning(settings: HubSettings) -> None:
    global _warned_plaintext
    if not _warned_plaintext:
        _warned_plaintext = True
        log.warning("kafka.plaintext", extra={
            "bootstrap": settings.kafka_bootstrap,
            "detail": "SENDHUB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT: no authentication, no "
                      "encryption; anyone who reaches the broker may read and write as anyone"})


def _tls(settings: HubSettings) -> ssl.SSLContext:
    ca = settings.kafka_ca()
    return ssl.create_default_context(cafile=str(ca) if ca else None)


def client_options(settings: HubSettings, service: str | None = None) -> dict[str, Any]:
    """kafka-python's connection arguments: this process's own credentials over TLS (a
    service's own principal, or the tools' operator), or plaintext when configured so."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        _plaintext_warning(settings)
        return {"bootstrap_servers": settings.kafka_bootstrap}
    user = settings.kafka_user(service)
    ca = settings.kafka_ca()
    return {"bootstrap_servers": settings.kafka_bootstrap, "security_protocol": "SASL_SSL",
            "sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": user,
            "sasl_plain_password": settings.kafka_password(user),
            "ssl_cafile": str(ca) if ca else None, "ssl_check_hostname": True}


def broker_security(settings: HubSettings, service: str | None = None) -> BaseSecurity | None:
    """The same for faststream (aiokafka)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        _plaintext_warning(settings)
        return None
    user = settings.kafka_user(service)
    kind = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256,
            "PLAIN": SASLPlaintext}[settings.kafka_sasl_mechanism]
    return kind(user, settings.kafka_password(user), ssl_context=_tls(settings))


def make_broker(settings: HubSettings, client_id: str, **kwargs: Any) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        security=broker_security(settings, client_id),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_request_size=DEAD_LETTER_MAX_BYTES,
        logger=logging.getLogger(f"sendhub.{client_id}.faststream"),
        **kwargs,
    )


async def renew_producer(broker: KafkaBroker) -> None:
    """Replace the broker's producer by a new one (a new producer id, sequences from 0).

    aiokafka's idempotent producer can wedge a partition for good: a batch it fails
    locally after its sequence number was given (it waited `request_timeout_ms` for a
    leader it did not know) leaves a gap, and the broker then answers every later send
    to that partition with OutOfOrderSequenceNumber for as long as that producer lives.
    faststream has no public way to do this, hence its internals, kept to this one place.
    Whatever was unacknowledged is sent again by its caller (at-least-once)."""
    config: Any = broker.config
    await config.producer.disconnect()
    await config.producer.connect(
        aiokafka.AIOKafkaProducer(**cast(Any, broker)._connection_kwargs),
        serializer=config.fd_config._serializer, codec=config.broker_codec or DefaultCodec())
    log.warning("kafka.producer_renewed", extra={"client_id": broker.config.client_id})


def ensure_topics(
    settings: HubSettings, names: list[str], configs: dict[str, dict[str, str]] | None = None,
    *, service: str | None = None,
) -> None:
    """Create the topics a service needs if they are missing (idempotent, synchronous)."""
    admin = KafkaAdminClient(**client_options(settings, service), client_id="sendhub-admin")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs={**retention_configs(settings, name),
                               **(configs or {}).get(name, {})},
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
            _await_leaders(admin, [t.name for t in missing])
    finally:
        admin.close()


def _await_leaders(admin: KafkaAdminClient, names: list[str], timeout: float = 10.0) -> None:
    """Return once every partition of these new topics is served by its leader (or after
    `timeout`). Until the broker has applied a topic's creation, a first produce request
    fails (NotLeaderOrFollower) while a later one may succeed; aiokafka's idempotent
    producer then retries the first with a sequence the broker no longer expects
    (OutOfOrderSequenceNumber) for as long as it lives (KAFKA-15591). A partition whose
    offsets its leader answers has been applied."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = admin.describe_topics(names)
        partitions = [TopicPartition(t["name"], p["partition_index"])
                      for t in described if t["error_code"] == 0 for p in t["partitions"]]
        if len(described) == len(names) and all(t["partitions"] for t in described):
            try:
                admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions},
                                             timeout_ms=int(timeout * 1000))
                return
            except (NotLeaderForPartitionError, UnknownTopicOrPartitionError):
                pass
        time.sleep(0.05)


DAY_MS = 24 * 3600 * 1000


def retention_ms(settings: HubSettings, topic: str) -> str:
    """How long Kafka keeps a hub topic (`retention.ms`): the anchors for ever (they hold
    hashes, never content), inboxes and dead letters and the transit topics as the
    retention settings say (local policy), so no plain copy of a pupil's data is kept
    on Kafka for longer."""
    t = settings.topics
    if topic == t.audit_anchors:
        return "-1"
    if topic.startswith(t.inbox("")):
        return str(int(settings.retention_inbox_days * DAY_MS))
    if topic == t.rejected:
        return str(int(settings.retention_dead_letter_days * DAY_MS))
    return str(int(settings.retention_transit_days * DAY_MS))


ERASED_BYTES_GONE_MS = DAY_MS
"""`segment.ms` of the topics that carry pupils' data: DeleteRecords (an erasure) makes
records unreadable at once, but their bytes leave the disk only with their segment; a
segment rolled daily is deleted within a day or so of the erasure."""


def retention_configs(settings: HubSettings, topic: str) -> dict[str, str]:
    """The retention configs the hub gives a topic it creates (and `sendhub retention
    run` gives one made before)."""
    configs = {"retention.ms": retention_ms(settings, topic)}
    if topic != settings.topics.audit_anchors:
        configs["segment.ms"] = str(ERASED_BYTES_GONE_MS)
    return configs


def rejected_topic_config(settings: HubSettings) -> dict[str, dict[str, str]]:
    return {settings.topics.rejected: {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)}}


# Recovery: a consumer that dies is noticed after SESSION_TIMEOUT_MS (the broker's
# smallest allowed, group.min.session.timeout.ms); with a stable instance id
# (SENDHUB_INSTANCE_ID, static membership) a restarted one takes its partitions back
# at once, with no rebalance at all.
SESSION_TIMEOUT_MS = 6_000
HEARTBEAT_INTERVAL_MS = 1_000


Original = Callable[[Any], Awaitable[Any]]
Customised = Callable[[Any, Original], Awaitable[Any]]


class ConsumerOptions(TypedDict):
    group_id: str
    group_instance_id: str | None
    auto_offset_reset: Literal["earliest"]
    session_timeout_ms: int
    heartbeat_interval_ms: int
    ack_policy: AckPolicy
    parser: Customised
    decoder: Customised


class BatchConsumerOptions(ConsumerOptions):
    batch: Literal[True]
    max_records: int
    batch_timeout_ms: int
    fetch_min_bytes: int
    fetch_max_wait_ms: int


async def _readable_headers(message: Any, original: Original) -> Any:
    """faststream decodes every header as UTF-8 before the handler runs; one header that
    is not would fail the message for ever. Such bytes are replaced, the body kept."""
    try:
        return await original(message)
    except UnicodeDecodeError:
        records = message if isinstance(message, tuple) else (message,)
        readable = tuple(replace(r, headers=tuple(
            (k, v.decode("utf-8", "replace").encode()) for k, v in r.headers)) for r in records)
        return await original(readable if isinstance(message, tuple) else readable[0])


async def _raw_body(message: Any, original: Original) -> Any:
    """No decoding before the handler: faststream would `json.loads` the body (and fail
    on a body that is not JSON, outside our error policy). Handlers read the raw bytes."""
    return message.body


def consumer_options(settings: HubSettings, consumer: str) -> ConsumerOptions:
    """How every consumer reads: from the start, committing only after the effect is
    stored (retrying from the first message on error), with the raw bytes handed to the
    hub's error policy."""
    return {
        "group_id": settings.topics.group(consumer),
        "group_instance_id": f"{consumer}-{settings.instance_id}" if settings.instance_id
        else None,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "parser": _readable_headers,
        "decoder": _raw_body,
    }


BATCH_RECORDS = 500
"""Most records in one consumed batch: each is screened or stored together (records: one
transaction per partition's share), so a backfill pays its round trips per batch."""


LINGER_MIN_BYTES = 256 * 1024
"""With `SENDHUB_CONSUMER_LINGER_MS` set, the broker answers a fetch once it holds this
much (a full batch, about) or the linger is up, whichever comes first."""


def batch_consumer_options(settings: HubSettings, consumer: str) -> BatchConsumerOptions:
    """The stateful services consume in batches (each stored in one transaction)."""
    linger = settings.consumer_linger_ms
    return {**consumer_options(settings, consumer), "batch": True, "max_records": BATCH_RECORDS,
            "batch_timeout_ms": 50,
            # aiokafka's defaults (answer at once, with whatever is there) when not lingering
            "fetch_min_bytes": LINGER_MIN_BYTES if linger else 1,
            "fetch_max_wait_ms": linger or 500}


def records_of(message: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The consumer records behind a (batch) message."""
    raw = message.raw_message  # a tuple from aiokafka, a list from TestKafkaBroker
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)
