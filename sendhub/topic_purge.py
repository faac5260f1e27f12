"""Removing erased pupils' messages from the hub's own Kafka topics.

Kafka cannot delete one record; it can move a partition's start (DeleteRecords). So a
partition that holds an erased pupil's message is rewritten: every other record from
the partition's start to its end is copied to the end of the same partition (key,
headers and timestamp kept, so retention still counts from the original time), then
the partition's start is moved past the originals. Nothing of anyone else is lost:
consumers see the copies again, which every consumer of the hub already treats as
redeliveries (at-least-once delivery, idempotent effects); a receiver that reads its
inbox from Kafka sees those packets again under the same packet id. Partitions without
the pupil are left alone.

A message is the pupil's when its key, value or a header contains the pupil's UPN:
every message the hub carries about a pupil names the UPN (events, history, packets,
dead letters of events). The anchors topic holds only stream ids and hashes and is
never rewritten, so the anchors keep proving what existed without revealing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from services.shared.kafka import client_options
from services.shared.settings import HubSettings

COPIED_FROM_HEADER = "sendhub-copied-from"
"""On a copy: `<partition>:<offset>` of the record it replaces (an erasure's rewrite)."""


@dataclass
class PurgeReport:
    """What one purge removed and copied, per topic."""

    removed: dict[str, int] = field(default_factory=dict)
    copied: dict[str, int] = field(default_factory=dict)
    scanned: int = 0

    @property
    def total_removed(self) -> int:
        return sum(self.removed.values())


def _mentions(record: object, needles: Sequence[bytes]) -> bool:
    key = getattr(record, "key", None) or b""
    value = getattr(record, "value", None) or b""
    headers = getattr(record, "headers", None) or []
    return any(n in key or n in value or any(n in (v or b"") for _, v in headers)
               for n in needles)


def hub_topics(settings: HubSettings, admin: KafkaAdminClient) -> list[str]:
    """This deployment's topics that may hold pupils' data (all but the anchors)."""
    prefix = f"{settings.topic_namespace}sen."
    return sorted(t for t in admin.list_topics()
                  if t.startswith(prefix) and t != settings.topics.audit_anchors)


def purge(settings: HubSettings, upns: Sequence[str],
          on_topic: Callable[[str], None] | None = None) -> PurgeReport:
    """Remove every message naming one of `upns` from the hub's topics (one pass for
    many pupils: a retention run erases them together)."""
    needles = [u.encode() for u in upns if u]
    report = PurgeReport()
    if not needles:
        return report
    options = client_options(settings)
    admin = KafkaAdminClient(**options, client_id="sendhub-erase")
    consumer = KafkaConsumer(**options, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=1000, fetch_max_bytes=16 * 1024 * 1024,
                             max_partition_fetch_bytes=16 * 1024 * 1024)
    producer = KafkaProducer(**options, acks="all", max_request_size=16 * 1024 * 1024)
    try:
        for topic in hub_topics(settings, admin):
            if on_topic:
                on_topic(topic)
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                _purge_partition(consumer, producer, admin, TopicPartition(topic, partition),
                                 needles, report)
    finally:
        producer.close()
        consumer.close()
        admin.close()
    return report


def _purge_partition(consumer: KafkaConsumer, producer: KafkaProducer,
                     admin: KafkaAdminClient, tp: TopicPartition, needles: Sequence[bytes],
                     report: PurgeReport) -> None:
    consumer.assign([tp])
    start = consumer.beginning_offsets([tp])[tp]
    end = consumer.end_offsets([tp])[tp]
    if end <= start:
        return
    consumer.seek(tp, start)
    records: list[Any] = []
    while consumer.position(tp) < end:
        batch = consumer.poll(timeout_ms=1000).get(tp, [])
        if not batch and consumer.position(tp) < end:
            continue
        records.extend(r for r in batch if r.offset < end)
    report.scanned += len(records)
    matching = [r for r in records if _mentions(r, needles)]
    if not matching:
        return
    survivors = [r for r in records if not _mentions(r, needles)]
    for r in survivors:
        headers = [(k, v) for k, v in (r.headers or []) if k != COPIED_FROM_HEADER]
        producer.send(tp.topic, value=r.value, key=r.key, partition=tp.partition,
                      timestamp_ms=r.timestamp,
                      headers=[*headers, (COPIED_FROM_HEADER,
                                          f"{tp.partition}:{r.offset}".encode())])
    producer.flush()
    admin.delete_records({tp: end})
    report.removed[tp.topic] = report.removed.get(tp.topic, 0) + len(matching)
    report.copied[tp.topic] = report.copied.get(tp.topic, 0) + len(survivors)
