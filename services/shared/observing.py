"""Measuring a running service: messages in and out, batch time, consumer lag, the stores.

- `MetricsMiddleware`, a faststream broker middleware: every batch (or message) a
  consumer is handed is counted by topic and timed; every publish through the broker or
  a publisher object is counted by topic once the producer took it.
- `WatchedConsumer`: a subscriber's aiokafka consumer as health and lag see it, and
  whether it has joined its group (an `AssignmentListener` notes the group's answer).
- `LagMonitor`: every `SENDHUB_METRICS_INTERVAL_SECONDS`, end offset minus committed
  offset for each partition this process holds.
- `StoreGauges`: a service's own gauges read from its store (outbox backlog, packets by
  state), off the event loop, at the same pace.

Failures to measure (broker or database away) are logged once when they start and once
when they end: an outage must not fill the logs. Metric definitions: `metrics.py`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import FastStream
from faststream._internal.middlewares import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import LogicSubscriber
from faststream.message import StreamMessage
from faststream.response import PublishCommand

from services.shared.health import ConsumerState
from services.shared.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    CONSUMER_PARTITIONS,
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    topic_label,
    unprefixed,
)
from services.shared.tasks import PeriodicTask

log = logging.getLogger("sendhub.observing")


class MetricsMiddleware(BaseMiddleware[PublishCommand, Any]):
    """Counts and times what one service consumes, counts what it publishes."""

    def __init__(self, msg: Any, /, *, context: Any, service: str, namespace: str) -> None:
        super().__init__(msg, context=context)
        self.service = service
        self.namespace = namespace

    async def consume_scope(self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]],
                            msg: StreamMessage[Any]) -> Any:
        raw = msg.raw_message
        records = raw if isinstance(raw, tuple | list) else (raw,)  # a batch, or one
        topic = topic_label(getattr(records[0], "topic", "unknown"), self.namespace) \
            if records else "none"
        EVENTS_CONSUMED.labels(self.service, topic).inc(len(records))
        started = time.perf_counter()
        try:
            return await call_next(msg)
        finally:
            BATCH_SECONDS.labels(self.service, topic).observe(time.perf_counter() - started)

    async def publish_scope(self, call_next: Callable[[PublishCommand], Awaitable[Any]],
                            cmd: PublishCommand) -> Any:
        result = await call_next(cmd)
        EVENTS_PUBLISHED.labels(self.service, topic_label(cmd.destination, self.namespace)).inc(
            len(cmd.batch_bodies))
        return result


def count_messages(broker: KafkaBroker, service: str, namespace: str) -> None:
    """Measure every consumer and publisher of the broker (outermost, so a batch's time
    includes decoding and the error policy)."""
    broker.insert_middleware(partial(MetricsMiddleware, service=service, namespace=namespace))


class AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes the group coordinator's answers: `joined` once partitions were assigned (even
    none), `rebalancing` between a revocation and the next assignment. Passes every call
    on to the listener the subscriber was declared with, if any."""

    def __init__(self, inner: ConsumerRebalanceListener | None) -> None:
        self.inner = inner
        self.joined = False
        self.rebalancing = False

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.rebalancing = True
        if self.inner is not None:
            await _maybe_await(self.inner.on_partitions_revoked(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.joined, self.rebalancing = True, False
        if self.inner is not None:
            await _maybe_await(self.inner.on_partitions_assigned(assigned))


async def _maybe_await(result: object) -> None:
    if asyncio.iscoroutine(result):
        await result


def _pattern_label(subscriber: LogicSubscriber[Any], namespace: str) -> str:
    """`sen.school-events.v1(.*)` for a subscriber to a topic and every `<topic>.<sender>`."""
    pattern = str(getattr(subscriber, "_pattern", "") or "")
    return topic_label(re.sub(r"\\(.)", r"\1", pattern.split("(", 1)[0]), namespace) + "(.*)"


class WatchedConsumer:
    """One faststream subscriber's consumer, as health and lag see it."""

    def __init__(self, subscriber: LogicSubscriber[Any], namespace: str) -> None:
        # faststream takes a rebalance listener only where a subscriber is declared;
        # ours goes in before the broker starts and wraps the declared one.
        self.listener = AssignmentListener(subscriber._listener)
        subscriber._listener = self.listener
        self.subscriber = subscriber
        self.group = unprefixed(subscriber.group_id or "", namespace) or "(no group)"
        self.topics = tuple(topic_label(t, namespace)
                            for t in subscriber.topic_names_for_subscribe) or (
            _pattern_label(subscriber, namespace),)

    def partitions(self) -> list[TopicPartition]:
        consumer = self.subscriber.consumer
        return sorted(consumer.assignment()) if consumer is not None else []

    def state(self) -> ConsumerState:
        return ConsumerState(
            group=self.group, topics=self.topics,
            started=self.subscriber.consumer is not None, joined=self.listener.joined,
            rebalancing=self.listener.rebalancing,
            partitions=tuple((tp.topic, tp.partition) for tp in self.partitions()))


def watch_consumers(broker: KafkaBroker, namespace: str) -> list[WatchedConsumer]:
    """Watch every Kafka subscriber of the broker; call before the broker starts."""
    return [WatchedConsumer(s, namespace) for s in broker.subscribers
            if isinstance(s, LogicSubscriber)]


class QuietRetries(PeriodicTask):
    """A periodic measurement whose failures are logged once per outage, not per round."""

    def __init__(self, interval: float, name: str) -> None:
        super().__init__(interval, log, name)
        self.failing = False

    async def measure(self) -> None:
        raise NotImplementedError

    async def once(self) -> bool:
        try:
            await asyncio.wait_for(self.measure(), timeout=max(self.interval, 10.0))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not self.failing:
                log.warning(f"{self.name}.unavailable", extra={"error": type(error).__name__})
            self.failing = True
            return False
        if self.failing:
            log.info(f"{self.name}.recovered")
            self.failing = False
        return False


class LagMonitor(QuietRetries):
    """Consumer lag of every partition this process holds, and how many it holds."""

    def __init__(self, service: str, consumers: list[WatchedConsumer], namespace: str,
                 interval: float) -> None:
        super().__init__(interval, "metrics.lag")
        self.service = service
        self.consumers = consumers
        self.namespace = namespace
        self.reported: dict[str, set[tuple[str, str]]] = {}

    async def measure(self) -> None:
        for watched in self.consumers:
            consumer = watched.subscriber.consumer
            held = watched.partitions()
            lags = await partition_lags(consumer, held) if consumer is not None and held else {}
            self.report(watched.group, {(topic_label(tp.topic, self.namespace),
                                         str(tp.partition)): lag for tp, lag in lags.items()})
            CONSUMER_PARTITIONS.labels(self.service, watched.group).set(len(held))

    def report(self, group: str, lags: dict[tuple[str, str], int]) -> None:
        """Set this group's lag series; drop those of partitions no longer held here."""
        for topic, partition in self.reported.get(group, set()) - set(lags):
            CONSUMER_LAG.remove(self.service, group, topic, partition)
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(self.service, group, topic, partition).set(lag)
        self.reported[group] = set(lags)


async def partition_lags(consumer: Any, partitions: list[TopicPartition]
                         ) -> dict[TopicPartition, int]:
    """End offset minus the group's committed offset (the log's start when the group has
    committed nothing there yet), asked of the broker, not the fetcher's cache."""
    ends = await consumer.end_offsets(partitions)
    lags = {}
    for tp in partitions:
        committed = await consumer.committed(tp)
        if committed is None:
            committed = (await consumer.beginning_offsets([tp]))[tp]
        lags[tp] = max(0, int(ends[tp]) - int(committed))
    return lags


class StoreGauges(QuietRetries):
    """A service's gauges read from its store, by a synchronous function run in a thread."""

    def __init__(self, update: Callable[[], None], interval: float) -> None:
        super().__init__(interval, "metrics.store")
        self.update = update

    async def measure(self) -> None:
        await asyncio.to_thread(self.update)


def run_beside(stream: FastStream, task: PeriodicTask) -> None:
    """Run a periodic task while the app runs: started after the broker, stopped first."""
    stream.after_startup(task.start)
    stream.on_shutdown(task.stop)
