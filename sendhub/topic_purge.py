"""Removing erased pupils' messages from the hub's own Kafka topics.

Kafka cannot delete one record; it can move a partition's start (DeleteRecords). So a
partition that holds an erased pupil's message is rewritten: every other record from
the partition's start to its end is copied to the end of the same partition (key,
headers and timestamp kept, so retention still counts from the original time), then
the partition's start is moved past the originals (only once every copy was
acknowledged; a purge that stopped half-way is finished by the next, which does not copy
twice what it finds already copied). Nothing of anyone else is lost:
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

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from contracts.dead_letter import DeadLetterV1
from services.shared import locks
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

    def add(self, other: PurgeReport) -> None:
        """Count another pass (an erasure's second) into this one."""
        for topic, n in other.removed.items():
            self.removed[topic] = self.removed.get(topic, 0) + n
        for topic, n in other.copied.items():
            self.copied[topic] = self.copied.get(topic, 0) + n
        self.scanned += other.scanned


def _mentions(record: Any, needles: Sequence[bytes], dead_letters: bool) -> bool:
    """Whether a record names one of the pupils: in its key, value or headers, or, for a
    dead letter, in the original message it keeps (base64 in the value)."""
    key = record.key or b""
    value = record.value or b""
    blobs = [key, value, *(v or b"" for _, v in record.headers or [])]
    if dead_letters:
        try:
            blobs.append(DeadLetterV1.model_validate_json(value).original)
        except ValueError:
            pass  # not a dead letter the hub wrote: its raw bytes were searched
    return any(n in b for n in needles for b in blobs)


def _pipeline_order(settings: HubSettings, topic: str) -> tuple[int, str]:
    """Upstream first, so a message moving downstream while the purge runs is caught
    by a later topic (and, for what is still in flight, by the second pass)."""
    t = settings.topics
    stages = [t.school_events, t.accepted, t.pupil_history, t.inbox(""), t.packet_receipts,
              t.rejected]
    return next((i for i, s in enumerate(stages) if topic.startswith(s)), len(stages)), topic


def hub_topics(settings: HubSettings, admin: KafkaAdminClient) -> list[str]:
    """This deployment's topics that may hold pupils' data (all but the anchors), in
    pipeline order."""
    prefix = f"{settings.topic_namespace}sen."
    return sorted((t for t in admin.list_topics()
                   if t.startswith(prefix) and t != settings.topics.audit_anchors),
                  key=lambda t: _pipeline_order(settings, t))


class PurgeFailed(RuntimeError):
    """A copy was not acknowledged, or a partition could not be read whole: nothing was
    deleted from it, and running the erasure again finishes the work."""


def purge(settings: HubSettings, upns: Sequence[str],
          on_topic: Callable[[str], None] | None = None) -> PurgeReport:
    """Remove every message naming one of `upns` from the hub's topics (one pass for
    many pupils: a retention run erases them together). One purge at a time (a
    PostgreSQL advisory lock), since two rewriting one partition would copy twice."""
    needles = [u.encode() for u in upns if u]
    report = PurgeReport()
    if not needles:
        return report
    options = client_options(settings)
    with psycopg.connect(settings.database_conninfo) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (locks.TOPIC_PURGE,))
        admin = KafkaAdminClient(**options, client_id="sendhub-erase")
        consumer = KafkaConsumer(**options, enable_auto_commit=False, group_id=None,
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000,
                                 fetch_max_bytes=16 * 1024 * 1024,
                                 max_partition_fetch_bytes=16 * 1024 * 1024)
        producer = KafkaProducer(**options, acks="all", max_request_size=16 * 1024 * 1024,
                                 retries=5)
        try:
            for topic in hub_topics(settings, admin):
                if on_topic:
                    on_topic(topic)
                for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                    _purge_partition(consumer, producer, admin,
                                     TopicPartition(topic, partition), needles, report,
                                     dead_letters=topic == settings.topics.rejected)
        finally:
            producer.close()
            consumer.close()
            admin.close()
            lock.execute("SELECT pg_advisory_unlock(%s)", (locks.TOPIC_PURGE,))
    return report


def _read_whole(consumer: KafkaConsumer, tp: TopicPartition, start: int, end: int
                ) -> list[Any]:
    consumer.assign([tp])
    consumer.seek(tp, start)
    records: list[Any] = []
    while consumer.position(tp) < end:
        records.extend(r for r in consumer.poll(timeout_ms=1000).get(tp, []) if r.offset < end)
    offsets = [r.offset for r in records]
    if offsets != sorted(set(offsets)):
        raise PurgeFailed(f"{tp.topic}[{tp.partition}] was read out of order: nothing was "
                          "deleted from it")
    if offsets and offsets[0] != start:
        raise PurgeFailed(f"{tp.topic}[{tp.partition}] lost its first records to retention "
                          "while it was read: nothing was deleted from it")
    return records


def _copied_from(record: Any, partition: int) -> int | None:
    for k, v in record.headers or []:
        if k == COPIED_FROM_HEADER and v:
            where, _, offset = v.decode().partition(":")
            if where == str(partition) and offset.isdigit():
                return int(offset)
    return None


def _purge_partition(consumer: KafkaConsumer, producer: KafkaProducer,
                     admin: KafkaAdminClient, tp: TopicPartition, needles: Sequence[bytes],
                     report: PurgeReport, *, dead_letters: bool) -> None:
    """Copy forward every record but the pupils', then delete up to the copies. A purge
    that stopped after copying left copies whose originals are still there: those are
    not copied again, and the deletion goes up to the first of them."""
    start = consumer.beginning_offsets([tp])[tp]
    end = consumer.end_offsets([tp])[tp]
    if end <= start:
        return
    records = _read_whole(consumer, tp, start, end)
    report.scanned += len(records)
    present = {r.offset for r in records}
    earlier_copies = {o: r.offset for r in records
                      if (o := _copied_from(r, tp.partition)) is not None and o in present}
    cut = min(earlier_copies.values(), default=end)  # a stopped purge's first copy
    originals = [r for r in records if r.offset < cut]
    matching = [r for r in originals if _mentions(r, needles, dead_letters)]
    if not matching and cut == end:
        return
    survivors = [r for r in originals
                 if not _mentions(r, needles, dead_letters) and r.offset not in earlier_copies]
    sends = []
    for r in survivors:
        headers = [(k, v) for k, v in (r.headers or []) if k != COPIED_FROM_HEADER]
        sends.append(producer.send(
            tp.topic, value=r.value, key=r.key, partition=tp.partition,
            timestamp_ms=r.timestamp,
            headers=[*headers, (COPIED_FROM_HEADER, f"{tp.partition}:{r.offset}".encode())]))
    producer.flush()
    for sent in sends:
        try:
            sent.get(timeout=30)
        except Exception as exc:
            raise PurgeFailed(f"a copy to {tp.topic}[{tp.partition}] was not acknowledged "
                              f"({type(exc).__name__}): nothing was deleted from it") from exc
    admin.delete_records({tp: cut})
    report.removed[tp.topic] = report.removed.get(tp.topic, 0) + len(matching)
    report.copied[tp.topic] = report.copied.get(tp.topic, 0) + len(survivors)
    if cut < end:  # the stopped purge's copies, and what came after them: a pass of their own
        _purge_partition(consumer, producer, admin, tp, needles, report,
                         dead_letters=dead_letters)
