"""The one error policy: whose fault a failure is decides what happens to the message."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg
import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.dead_letter import DeadLetterV1
from services.ingest import entrypoint as ingest_entrypoint
from services.shared import consuming
from services.shared.consuming import DEAD_LETTERS, ConsumerPolicy
from services.shared.settings import HubSettings
from tests.factories import school_event


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[DeadLetterV1] = []

    async def publish(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        self.published.append(DeadLetterV1.model_validate_json(message))


class Refused(Exception):
    """A domain's refusal, mapped to a reason."""


def record(offset: int, value: bytes = b"{}") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic="t", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=b"k", value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value), headers=())


def policy() -> tuple[ConsumerPolicy, FakePublisher]:
    rejected = FakePublisher()
    return ConsumerPolicy("records", rejected, logging.getLogger("test"),
                          refusals={Refused: "history_rejected"}), rejected


async def test_a_bug_on_one_message_dead_letters_only_that_one_as_internal_error() -> None:
    subject, rejected = policy()
    stored: list[int] = []
    before = DEAD_LETTERS.labels("records", "internal_error")._value.get()

    async def store(items: list[tuple[int, Any]]) -> None:
        if any(n == 2 for n, _ in items):
            raise KeyError("a bug of ours")
        stored.extend(n for n, _ in items)

    await subject.store([(n, record(n)) for n in range(1, 5)], store)
    assert stored == [1, 3, 4]
    assert [(d.reason, d.offset) for d in rejected.published] == [("internal_error", 2)]
    assert "KeyError" in rejected.published[0].problems[0].message
    assert DEAD_LETTERS.labels("records", "internal_error")._value.get() == before + 1


async def test_a_message_at_fault_is_dead_lettered_before_a_later_position_is_stored() -> None:
    subject, rejected = policy()
    timeline: list[str] = []

    class Timed(FakePublisher):
        async def publish(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
            await super().publish(message)
            timeline.append(f"dead letter {self.published[-1].offset}")

    subject.rejected = Timed()

    async def store(items: list[tuple[int, Any]]) -> None:
        if len(items) == 1 and items[0][0] == 4:
            raise Refused("not a known event")
        if len(items) > 1 or items[0][0] in (1, 2, 5):
            raise KeyError("a bug of ours")
        timeline.append(f"stored {items[0][0]}")

    await subject.store([(n, record(n)) for n in range(1, 7)], store)
    # 1 and 2 fail alike (a bug, perhaps not theirs) until 3 is stored; 4 is refused and
    # set aside at once; 5 fails like 1 and 2, after a success: its own fault. Each is
    # set aside before 6's position is stored.
    assert timeline == ["stored 3", "dead letter 1", "dead letter 2", "dead letter 4",
                        "dead letter 5", "stored 6"]
    assert rejected.published == []  # the policy's publisher was replaced


async def test_a_poll_of_several_partitions_is_stored_together_or_partition_by_partition(
) -> None:
    subject, rejected = policy()
    calls: list[list[int]] = []

    async def store(items: list[tuple[int, Any]]) -> None:
        calls.append([n for n, _ in items])
        if any(n == 12 for n, _ in items):
            raise KeyError("a bug of ours")

    def on(partition: int, n: int) -> tuple[int, ConsumerRecord[bytes, bytes]]:
        r = record(n)
        return n, ConsumerRecord(**{**r.__dict__, "partition": partition})

    parts = {("t", 0): [on(0, 1), on(0, 2)], ("t", 1): [on(1, 11), on(1, 12), on(1, 13)]}
    await subject.store_together({("t", 0): parts[("t", 0)]}, store)
    assert calls == [[1, 2]]  # one call, all well
    calls.clear()
    await subject.store_together(parts, store)
    # Together first; then partition 0 whole, partition 1 whole and then one by one, its
    # positions (and so its dead letter) never mixed with another partition's.
    assert calls == [[1, 2, 11, 12, 13], [1, 2], [11, 12, 13], [11], [12], [13]]
    assert [(d.reason, d.offset) for d in rejected.published] == [("internal_error", 12)]


async def test_a_refusal_is_dead_lettered_with_its_own_reason() -> None:
    subject, rejected = policy()

    async def store(items: list[tuple[int, Any]]) -> None:
        raise Refused("no such event type")

    await subject.store([(1, record(7))], store)
    assert [(d.reason, d.offset) for d in rejected.published] == [("history_rejected", 7)]


async def test_infrastructure_trouble_is_retried_with_backoff_never_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject, rejected = policy()
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(consuming.asyncio, "sleep", no_wait)

    async def database_down() -> None:
        async def store(items: list[tuple[int, Any]]) -> None:
            raise psycopg.OperationalError("connection refused")

        await subject.store([(1, record(1)), (2, record(2))], store)

    for _ in range(6):
        with pytest.raises(psycopg.OperationalError):
            await subject.guard(database_down)
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert rejected.published == []

    async def fine() -> None:
        await asyncio.sleep(0)

    await subject.guard(fine)
    assert subject.failures == 0


async def test_ingest_blames_itself_not_the_sender_for_its_own_bug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in screening")

    monkeypatch.setattr(ingest_entrypoint, "admit_school_event", broken)
    settings = HubSettings(topic_namespace="unit.", kafka_security_protocol="PLAINTEXT")
    broker = ingest_entrypoint.build_broker(settings)
    rejected: list[bytes] = []

    @broker.subscriber(settings.topics.rejected)
    async def on_rejected(message: KafkaMessage) -> None:
        rejected.append(message.body)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(json.dumps(school_event()).encode(),
                                  topic=settings.topics.school_events, key=b"k")
    (letter,) = [DeadLetterV1.model_validate_json(r) for r in rejected]
    assert (letter.reason, letter.service) == ("internal_error", "ingest")
