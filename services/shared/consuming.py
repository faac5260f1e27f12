"""Every consumer's error handling, in one place (the policy is in `errors.py`).

`ConsumerPolicy` wraps a handler: messages that cannot be used are dead-lettered with
the original bytes, the reason and their position, and acknowledged by moving on; a
bug on one message dead-letters that message as `internal_error`; infrastructure
trouble backs off (1 s doubling to `MAX_BACKOFF_SECONDS`) and re-raises, so faststream
seeks back and the same messages are retried. Each outage is logged once when it
starts and once when it ends, not on every attempt.

Dead letters are published, and acknowledged by the broker, before the consumer stores
its position, so a crash in between re-reads the message rather than losing it. When
a batch is split to find the message at fault, each item is stored with its position,
and a failure is dead-lettered as soon as it is known to be the message's (a refusal,
another message stored, or failures not alike), before the next item is tried; only
leading failures that are alike wait, for the first success (one store) or, when every
message fails alike, are not set aside at all and the batch is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias, TypeVar

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from contracts.dead_letter import DeadLetterV1, ReasonCode, problems_from
from services.shared.errors import MessageRefused, internal_error, is_infrastructure, refusal_of
from services.shared.metrics import DEAD_LETTERS

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
T = TypeVar("T")
MAX_BACKOFF_SECONDS = 10.0


class Publisher(Protocol):
    def publish(self, message: Any, /, *args: Any, **kwargs: Any) -> Awaitable[Any]: ...


def dead_letter_for(record: Record, refusal: MessageRefused, service: str) -> DeadLetterV1:
    """Wrap a consumed message that cannot be used, keeping its bytes and position.

    One exception: a new event about an erased pupil (`pupil_erased`) keeps neither its
    bytes nor its key (the UPN), only its size and position: the hub must hold nothing
    more about that pupil (UK GDPR Article 17), and the sender still has what it sent."""
    original = record.value if record.value is not None else b""
    erased = refusal.reason == "pupil_erased"
    letter = DeadLetterV1.of(
        b"" if erased else original,
        reason=refusal.reason, problems=refusal.problems, service=service,
        source_topic=record.topic, partition=record.partition, offset=record.offset,
        key=None if erased else record.key, failed_at=datetime.now(UTC))
    return letter.model_copy(update={"original_size": len(original)}) if erased else letter


class ConsumerPolicy:
    """One service's consumers' error policy: dead letters, bugs, and retries."""

    def __init__(self, service: str, rejected: Publisher, log: logging.Logger,
                 refusals: Mapping[type[Exception], ReasonCode] | None = None) -> None:
        self.service = service
        self.rejected = rejected
        self.log = log
        self.refusals = dict(refusals or {})
        self.failures = 0

    async def reject(self, record: Record, refusal: MessageRefused) -> None:
        letter = dead_letter_for(record, refusal, self.service)
        await self.rejected.publish(letter.model_dump_json().encode(), key=record.key)
        DEAD_LETTERS.labels(self.service, refusal.reason).inc()
        self.log.warning("message.dead_lettered", extra={
            "reason": refusal.reason, "topic": record.topic, "partition": record.partition,
            "offset": record.offset})

    def refusal(self, error: Exception, record: Record) -> MessageRefused:
        """What to tell about a message that failed: its refusal, or our bug."""
        found = refusal_of(error, self.refusals)
        if found is not None:
            return found
        self.log.error("message.internal_error", exc_info=error, extra={
            "topic": record.topic, "partition": record.partition, "offset": record.offset})
        return internal_error(error, self.service)

    async def parse_by_partition(self, records: Sequence[Record], parse: Callable[[Record], T]
                                 ) -> dict[tuple[str, int], list[tuple[T, Record]]]:
        """Parse a batch; dead-letter what cannot be used; keep the rest grouped by topic
        and partition (a pattern subscription reads several topics), in offset order,
        each with the record it came from."""
        by_partition: dict[tuple[str, int], list[tuple[T, Record]]] = defaultdict(list)
        for record in records:
            try:
                item = parse(record)
            except ValidationError as error:
                await self.reject(record, MessageRefused("schema_invalid", problems_from(error)))
                continue
            except Exception as error:
                if is_infrastructure(error):
                    raise
                await self.reject(record, self.refusal(error, record))
                continue
            by_partition[(record.topic, record.partition)].append((item, record))
        return by_partition

    async def store(self, items: list[tuple[T, Record]],
                    store: Callable[[list[tuple[T, Record]]], Awaitable[object]]) -> None:
        """Store one partition's items together; when that fails for a reason other than
        the infrastructure, store them one by one, so only the message at fault is
        dead-lettered and the others are kept. When every one of several fails alike,
        the fault is not in the messages: nothing is set aside, the batch is retried."""
        try:
            await store(items)
        except Exception as error:
            if is_infrastructure(error):
                raise
            if len(items) == 1:
                await self.reject(items[0][1], self.refusal(error, items[0][1]))
                return
            self.log.warning("batch.split", extra={"error": type(error).__name__,
                                                   "messages": len(items)})
            held: list[tuple[Record, Exception]] = []  # alike so far: maybe not their fault
            systemic = True  # every one so far failed, with the same bug
            for item in items:
                try:
                    await store([item])
                    systemic = False
                except Exception as one:
                    if is_infrastructure(one):
                        raise
                    held.append((item[1], one))
                    if refusal_of(one, self.refusals) is not None or type(one) is not type(
                            held[0][1]):
                        systemic = False
                if not systemic:  # theirs after all: set aside now, before later positions
                    for record, failure in held:
                        await self.reject(record, self.refusal(failure, record))
                    held.clear()
            if held:
                raise RuntimeError(f"every message of the batch failed with "
                                   f"{type(held[0][1]).__name__}") from held[0][1]

    async def store_together(self, parts: Mapping[tuple[str, int], list[tuple[T, Record]]],
                             store: Callable[[list[tuple[T, Record]]], Awaitable[object]]
                             ) -> None:
        """Store a poll's partitions in one call (one transaction, its fixed cost paid
        once); when that fails for a reason other than the infrastructure, fall back to
        `store` partition by partition, so a message at fault is found and dead-lettered
        exactly as if its partition had come alone."""
        together = [item for items in parts.values() for item in items]
        if not together:
            return
        try:
            await store(together)
            return
        except Exception as error:
            if is_infrastructure(error):
                raise
            self.log.warning("batch.by_partition", extra={"error": type(error).__name__,
                                                          "partitions": len(parts)})
        for items in parts.values():  # each tried whole again, then one by one
            await self.store(items, store)

    async def handle(self, record: Record, work: Callable[[], Awaitable[object]]) -> None:
        """One message: its refusal or our bug is dead-lettered; the infrastructure's
        trouble is raised, for `guard` to retry."""
        try:
            await work()
        except Exception as error:
            if is_infrastructure(error):
                raise
            await self.reject(record, self.refusal(error, record))

    async def guard(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run a handler's work; on failure wait (backing off) and re-raise, so faststream
        seeks back and the messages are read again."""
        try:
            await work()
        except Exception as error:
            self.failures += 1
            if self.failures == 1:
                self.log.error("consumer.retrying", exc_info=error,
                               extra={"error": type(error).__name__})
            await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 2.0 ** (self.failures - 1)))
            raise
        if self.failures:
            self.log.info("consumer.recovered", extra={"attempts": self.failures})
            self.failures = 0
