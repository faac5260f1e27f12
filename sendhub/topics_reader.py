"""Reading a whole topic from the start, for the operator tools (kafka-python, no group)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from services.shared.kafka import client_options
from services.shared.settings import HubSettings


@dataclass(frozen=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: dict[str, bytes] = field(default_factory=dict)


def read_topic(settings: HubSettings, topic: str, timeout_s: float = 10.0, *,
               service: str | None = None) -> Iterator[TopicRecord]:
    """Every record now in `topic`, all partitions, then stop (empty if no such topic).
    As the tools' operator, or as `service` (the gateway reads the anchors as itself)."""
    consumer = KafkaConsumer(
        **client_options(settings, service),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        starts = consumer.beginning_offsets(assigned)  # past 0 once records were deleted
        remaining = {tp for tp in assigned if ends[tp] > starts[tp]}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500)
            for tp, records in batches.items():
                for r in records:
                    yield TopicRecord(r.topic, r.partition, r.offset, r.key, r.value or b"",
                                      r.timestamp, dict(r.headers or []))
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()
