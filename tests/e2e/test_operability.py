"""Each running service answers /healthz, /readyz and /metrics over HTTP, on the real
broker and database: alive, ready for stated reasons, and counting what flows through."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sendhub.publishing import publish_lines
from services.shared.settings import HubSettings
from tests.e2e.conftest import ROOT, RunningServices, eventually, http_port_in
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(services: RunningServices, name: str, path: str) -> tuple[int, bytes]:
    return get_port(services.http_port(name), path)


def get_port(port: int, path: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(services: RunningServices, name: str) -> Samples:
    status, body = get(services, name, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


CONSUMERS = {"ingest": ["sendhub-ingest"], "records": ["sendhub-records"],
             "transfers": ["sendhub-transfers", "sendhub-transfers-receipts"]}


def test_each_service_is_alive_and_ready_and_says_why(services: RunningServices) -> None:
    for name, groups in CONSUMERS.items():
        assert get(services, name, "/healthz") == (
            200, json.dumps({"service": name, "alive": True}).encode())

        def ready(name: str = name) -> dict[str, Any]:
            status, body = get(services, name, "/readyz")
            report: dict[str, Any] = json.loads(body)
            assert status == 200, report
            return report

        report = eventually(ready, 30)
        checks = {c["name"]: c for c in report["checks"]}
        expected = ["broker"] + ([] if name == "ingest" else ["database"]) + [
            f"consumer {g}" for g in groups]
        assert sorted(checks) == sorted(expected)
        assert checks["broker"]["detail"] == "reachable"
        for group in groups:  # one instance per group: it holds all three partitions of
            # each topic it reads (ingest and transfers' receipts read one per sender)
            held = checks[f"consumer {group}"]["detail"].split(" partition(s): ")[0]
            assert int(held) >= 3 and int(held) % 3 == 0, checks[f"consumer {group}"]


def test_metrics_count_events_in_and_out_and_a_dead_letter(
    services: RunningServices, settings: HubSettings,
) -> None:
    before = {name: scrape(services, name) for name in CONSUMERS}
    upn = random_upn()
    move = {"destination": {"kind": "school", "urn": "131004"}, "move_kind": "in_year",
            "effective_date": "2025-11-03"}
    events = [school_event(pupil=pupil(upn, "Ola")),
              school_event("pupil_moved", pupil=pupil(upn, "Ola"), payload=move)]
    publish_lines(settings, [json.dumps(e).encode() for e in events] + [b"{not json"])

    def grew(name: str, metric: str, by: float, **labels: str) -> None:
        now = scrape(services, name)
        assert value(now, metric, service=name, **labels) >= value(
            before[name], metric, service=name, **labels) + by, (name, metric, labels)

    def counted() -> None:
        consumed, published = "sendhub_events_consumed_total", "sendhub_events_published_total"
        grew("ingest", consumed, 3, topic="sen.school-events.v1")
        grew("ingest", published, 2, topic="sen.accepted.v1")
        grew("ingest", published, 1, topic="sen.rejected.v1")
        grew("ingest", "sendhub_dead_letters_total", 1, reason="not_json")
        grew("ingest", "sendhub_batch_duration_seconds_count", 1, topic="sen.school-events.v1")
        grew("records", consumed, 2, topic="sen.accepted.v1")
        grew("records", published, 2, topic="sen.pupil-history.v1")
        grew("transfers", consumed, 2, topic="sen.pupil-history.v1")
        grew("transfers", published, 1, topic="sen.inbox.*")

    eventually(counted)

    def measured() -> None:
        records, transfers = scrape(services, "records"), scrape(services, "transfers")
        lag = {labels for name, labels in records if name == "sendhub_consumer_lag"}
        assert {dict(labels)["partition"] for labels in lag} == {"0", "1", "2"}
        assert value(records, "sendhub_consumer_partitions", service="records",
                     group="sendhub-records") == 3
        assert ("sendhub_outbox_backlog", frozenset(
            {"service": "records", "outbox": "pupil_history"}.items())) in records
        assert value(records, "sendhub_last_anchor_timestamp_seconds") > 0
        assert value(transfers, "sendhub_packets", state="sent") >= 1
        assert value(transfers, "sendhub_outbox_backlog", service="transfers",
                     outbox="packets") == 0

    eventually(measured)


def start_another(services: RunningServices, name: str, n: int
                  ) -> tuple[subprocess.Popen[bytes], Path]:
    """One more instance of a service, beside the session's (any free HTTP port)."""
    log = services.log_dir / f"{name}-extra-{n}.log"
    process = subprocess.Popen([sys.executable, "-m", "sendhub.cli", "serve", name],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
                               env=services.env)
    deadline = time.monotonic() + 60
    while b"started successfully" not in log.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    return process, log


def test_an_instance_the_group_gives_no_partition_is_ready_and_says_it_is_idle(
    services: RunningServices,
) -> None:
    # Four records instances on the three partitions of the accepted topic: one stands by.
    # (Ingest and transfers' receipts read one topic per sender, so more partitions.)
    extra = [start_another(services, "records", n) for n in range(3)]
    try:
        ports = [services.http_port("records")] + [http_port_in(log) for _, log in extra]

        def one_idle() -> None:
            details = []
            for port in ports:
                status, body = get_port(port, "/readyz")
                report = json.loads(body)
                assert status == 200, report
                details.append(report["checks"][-1]["detail"])
            assert sum(d.startswith("idle: joined group sendhub-records") for d in details) == 1
            assert sorted(d.split(" ")[0] for d in details if not d.startswith("idle")) == [
                "1", "1", "1"], details

        eventually(one_idle, 60)
    finally:
        for process, _ in extra:
            process.terminate()
        for process, _ in extra:
            process.wait(timeout=30)
