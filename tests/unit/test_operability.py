"""Metrics, readiness and the HTTP endpoints, in memory: faststream's TestKafkaBroker,
fake consumers and probes, the ASGI app called directly. No network."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.ingest.entrypoint import build_broker
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.gauges import RecordsGauges
from services.records.handlers import to_school_event_record
from services.shared.health import (
    Check,
    ConsumerState,
    Readiness,
    consumer_check,
    dependency_check,
    http_app,
)
from services.shared.metrics import CONSUMER_LAG, REGISTRY, topic_label
from services.shared.observing import (
    AssignmentListener,
    LagMonitor,
    QuietRetries,
    count_messages,
    partition_lags,
    watch_consumers,
)
from services.shared.serving import HttpPortUnavailable, bind
from services.shared.settings import HubSettings
from tests.conftest import ROOT
from tests.factories import school_event


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_topic_labels_drop_the_namespace_and_gather_every_inbox() -> None:
    assert topic_label("test-1.sen.accepted.v1", "test-1.") == "sen.accepted.v1"
    assert topic_label("sen.accepted.v1") == "sen.accepted.v1"
    assert topic_label("test-1.sen.inbox.urn-100002", "test-1.") == "sen.inbox.*"


async def test_every_message_in_and_out_of_ingest_is_counted_by_topic() -> None:
    settings = HubSettings(topic_namespace="unit-metrics.", kafka_security_protocol="PLAINTEXT")
    broker = build_broker(settings)
    count_messages(broker, "ingest", settings.topics.namespace)  # after the subscribers
    labels = {"service": "ingest"}
    consumed = sample("sendhub_events_consumed_total", topic="sen.school-events.v1", **labels)
    accepted = sample("sendhub_events_published_total", topic="sen.accepted.v1", **labels)
    rejected = sample("sendhub_events_published_total", topic="sen.rejected.v1", **labels)
    not_json = sample("sendhub_dead_letters_total", reason="not_json", **labels)
    timed = sample("sendhub_batch_duration_seconds_count", topic="sen.school-events.v1", **labels)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(json.dumps(school_event()).encode(),
                                  topic=settings.topics.school_events, key=b"H801200001001")
        await test_broker.publish(b"not json", topic=settings.topics.school_events, key=b"k")

    assert sample("sendhub_events_consumed_total", topic="sen.school-events.v1",
                  **labels) == consumed + 2
    assert sample("sendhub_events_published_total", topic="sen.accepted.v1",
                  **labels) == accepted + 1
    assert sample("sendhub_events_published_total", topic="sen.rejected.v1",
                  **labels) == rejected + 1
    assert sample("sendhub_dead_letters_total", reason="not_json", **labels) == not_json + 1
    assert sample("sendhub_batch_duration_seconds_count", topic="sen.school-events.v1",
                  **labels) == timed + 2


async def test_a_batch_counts_each_of_its_messages_and_is_timed_once() -> None:
    broker = KafkaBroker()
    seen: list[int] = []

    @broker.subscriber("unit.batches", batch=True)
    async def on_batch(message: KafkaMessage) -> None:
        seen.append(len(message.raw_message))

    count_messages(broker, "unit-batch", "unit.")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(b"1", b"2", b"3", topic="unit.batches")

    assert seen == [3]
    labels = {"service": "unit-batch", "topic": "batches"}
    assert sample("sendhub_events_consumed_total", **labels) == 3
    assert sample("sendhub_batch_duration_seconds_count", **labels) == 1


def state(**changes: Any) -> ConsumerState:
    base: dict[str, Any] = {"group": "sendhub-records", "topics": ("sen.accepted.v1",),
                            "started": True, "joined": True, "rebalancing": False,
                            "partitions": (("sen.accepted.v1", 0), ("sen.accepted.v1", 2))}
    return ConsumerState(**{**base, **changes})


def test_a_consumer_is_ready_once_it_joined_its_group_with_or_without_partitions() -> None:
    holding = consumer_check(state())
    assert holding.ok and holding.detail == "2 partition(s): sen.accepted.v1#0, sen.accepted.v1#2"
    idle = consumer_check(state(partitions=()))
    assert idle.ok and idle.detail.startswith("idle: joined group sendhub-records")
    assert "more members than partitions" in idle.detail
    assert consumer_check(state(rebalancing=True, partitions=())).ok


def test_a_consumer_not_started_or_not_yet_answered_by_its_group_is_not_ready() -> None:
    assert consumer_check(state(started=False, joined=False, partitions=())) == Check(
        "consumer sendhub-records", False, "not started (reads sen.accepted.v1)")
    waiting = consumer_check(state(joined=False, partitions=()))
    assert not waiting.ok and waiting.detail.startswith("waiting for group sendhub-records")


async def yes() -> bool:
    return True


async def no() -> bool:
    return False


async def refused() -> None:
    raise ConnectionRefusedError("database down")


async def test_ready_when_broker_database_and_every_consumer_are() -> None:
    readiness = Readiness("records", yes, yes, lambda: [state()])
    ready, body = await readiness.report()
    assert ready and body["service"] == "records"
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [
        ("broker", True), ("database", True), ("consumer sendhub-records", True)]


async def test_not_ready_when_the_broker_or_the_database_does_not_answer() -> None:
    ready, body = await Readiness("records", no, refused, lambda: [state()]).report()
    assert not ready
    assert body["checks"][:2] == [
        {"name": "broker", "ok": False, "detail": "unreachable"},
        {"name": "database", "ok": False, "detail": "unreachable (ConnectionRefusedError)"}]


async def test_a_dependency_that_hangs_is_unreachable_after_the_timeout() -> None:
    async def hangs() -> None:
        await asyncio.sleep(10)

    assert await dependency_check("database", hangs, timeout=0.05) == Check(
        "database", False, "unreachable (TimeoutError)")


async def test_a_service_without_a_database_is_not_asked_for_one() -> None:
    ready, body = await Readiness("ingest", yes, None, lambda: [state()]).report()
    assert ready and [c["name"] for c in body["checks"]] == ["broker", "consumer sendhub-records"]
    not_ready, body = await Readiness("ingest", yes, None, lambda: []).report()
    assert not not_ready and body["checks"][-1]["name"] == "consumers"


async def get(app: Any, path: str, method: str = "GET") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "query_string": b"",
               "headers": []}, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_the_endpoints_say_alive_ready_and_what_is_measured() -> None:
    good = http_app(Readiness("transfers", yes, yes, lambda: [state()]), REGISTRY)
    assert await get(good, "/healthz") == (200, b'{"service": "transfers", "alive": true}')
    status, body = await get(good, "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    status, body = await get(good, "/metrics")
    assert status == 200 and b"# HELP sendhub_dead_letters_total" in body
    assert (await get(good, "/nowhere"))[0] == 404
    assert (await get(good, "/healthz", method="POST"))[0] == 405
    waiting = http_app(Readiness("transfers", yes, yes, lambda: [state(joined=False)]), REGISTRY)
    status, body = await get(waiting, "/readyz")
    assert status == 503 and json.loads(body)["checks"][-1]["ok"] is False


class FakeConsumer:
    def __init__(self, ends: dict[int, int], committed: dict[int, int | None]) -> None:
        self.ends, self.done = ends, committed

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in partitions}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.done[tp.partition]

    async def beginning_offsets(self, partitions: list[TopicPartition]
                                ) -> dict[TopicPartition, int]:
        return {tp: 5 for tp in partitions}


async def test_lag_is_the_end_offset_minus_the_committed_one_or_the_log_start() -> None:
    tps = [TopicPartition("t", 0), TopicPartition("t", 1)]
    lags = await partition_lags(FakeConsumer({0: 120, 1: 30}, {0: 100, 1: None}), tps)
    assert lags == {tps[0]: 20, tps[1]: 25}


def test_lag_series_of_partitions_no_longer_held_are_dropped() -> None:
    monitor = LagMonitor("unit-lag", [], "", interval=1.0)
    monitor.report("g", {("t", "0"): 4, ("t", "1"): 7})
    monitor.report("g", {("t", "1"): 2})  # partition 0 went to another member
    labels = {"service": "unit-lag", "group": "g", "topic": "t"}
    assert REGISTRY.get_sample_value("sendhub_consumer_lag", {**labels, "partition": "0"}) is None
    assert sample("sendhub_consumer_lag", partition="1", **labels) == 2
    CONSUMER_LAG.clear()


async def test_a_failing_measurement_is_logged_once_per_outage(
        caplog: pytest.LogCaptureFixture) -> None:
    outcomes = [ConnectionError(), ConnectionError(), None, ConnectionError()]

    class Flaky(QuietRetries):
        async def measure(self) -> None:
            if (error := outcomes.pop(0)) is not None:
                raise error

    flaky = Flaky(0.01, "metrics.unit")
    with caplog.at_level(logging.INFO, logger="sendhub.observing"):
        for _ in range(4):
            await flaky.once()
    assert [r.getMessage() for r in caplog.records] == [
        "metrics.unit.unavailable", "metrics.unit.recovered", "metrics.unit.unavailable"]


async def test_the_listener_notes_joining_and_passes_every_call_on() -> None:
    calls: list[str] = []

    class Declared:
        async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
            calls.append("revoked")

        def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            calls.append("assigned")

    listener = AssignmentListener(Declared())
    assert not listener.joined
    await listener.on_partitions_revoked(set())
    assert listener.rebalancing
    await listener.on_partitions_assigned(set())  # joined, and given nothing
    assert listener.joined and not listener.rebalancing
    assert calls == ["revoked", "assigned"]


def test_each_consumer_of_a_service_is_watched_from_before_it_starts() -> None:
    settings = HubSettings(topic_namespace="unit-watch.", kafka_security_protocol="PLAINTEXT")
    [watched] = watch_consumers(build_broker(settings), settings.topics.namespace)
    assert watched.subscriber._listener is watched.listener
    assert watched.state() == ConsumerState(
        group="sendhub-ingest", topics=("sen.school-events.v1(.*)",), started=False,
        joined=False, rebalancing=False, partitions=())


def test_records_reports_what_its_outboxes_still_have_to_publish() -> None:
    app = RecordsApplication()
    events = [school_event(), school_event("assessment_completed")]
    app.record_school_events([(to_school_event_record(AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=n),
        event=SCHOOL_EVENT.validate_python(e))), ConsumedPosition("t", 0, n))
        for n, e in enumerate(events)])
    gauges = RecordsGauges(app, anchor_interval_seconds=60)
    gauges()
    backlog = {"service": "records"}
    assert sample("sendhub_outbox_backlog", outbox="pupil_history", **backlog) == 2
    assert sample("sendhub_anchor_interval_seconds") == 60
    app.mark_relayed(2)
    app.mark_anchored(1)
    gauges()
    assert sample("sendhub_outbox_backlog", outbox="pupil_history", **backlog) == 0
    assert sample("sendhub_outbox_backlog", outbox="audit_anchors", **backlog) == 1


def test_each_service_has_its_own_port_unless_one_is_set() -> None:
    assert [HubSettings().http_port_for(s) for s in ("ingest", "records", "transfers")] == [
        9101, 9102, 9103]
    assert HubSettings(http_port=0).http_port_for("records") == 0


def test_port_zero_binds_a_free_port_and_a_taken_one_is_refused_clearly() -> None:
    first = bind("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        assert port > 0
        with pytest.raises(HttpPortUnavailable, match=f"127.0.0.1:{port}.*SENDHUB_HTTP_PORT"):
            bind("127.0.0.1", port)
    finally:
        first.close()
    assert isinstance(first, socket.socket)


def test_serve_stops_with_exit_3_when_its_port_is_taken_before_connecting_anywhere() -> None:
    held = bind("127.0.0.1", 0)
    try:
        port = held.getsockname()[1]
        # The broker's address is unreachable: the port is refused before it is tried.
        result = subprocess.run(
            [sys.executable, "-m", "sendhub.cli", "serve", "ingest"], capture_output=True,
            text=True, timeout=60, cwd=ROOT, env={**os.environ, "SENDHUB_HTTP_PORT": str(port),
                                                  "SENDHUB_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    finally:
        held.close()
    assert result.returncode == 3
    assert f"cannot serve HTTP on 127.0.0.1:{port}" in " ".join(result.stderr.split())
