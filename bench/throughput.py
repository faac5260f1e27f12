"""Throughput of the hub's path school event -> stored history -> sen.pupil-history.v1.

Run: `make bench` (or `.venv/bin/python bench/throughput.py --events 1000 --runs 3`).
Needs Kafka and PostgreSQL (deploy/local/up). Each run uses a fresh topic namespace and
database, starts ingest and records as processes, publishes N valid events (10 per
pupil) and times until all N are on sen.pupil-history.v1. The bare baseline, measured
in the same run, publishes the same bytes to a plain topic and consumes them back with
no service in between. Prints medians and the ratio hub / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.topics import Topics  # noqa: E402
from sendhub.principals_admin import forget_namespace, sync  # noqa: E402
from services.shared.database import drop_database, upgrade  # noqa: E402
from services.shared.kafka import client_options  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def events(n: int) -> list[tuple[bytes, bytes]]:
    upns = [random_upn() for _ in range(max(1, n // 10))]
    out = []
    for i in range(n):
        upn = upns[i % len(upns)]
        e = school_event(pupil={"upn": upn, "given_name": "P", "family_name": "Q",
                                "date_of_birth": "2015-01-01"})
        out.append((upn.encode(), json.dumps(e).encode()))
    return out


def publish(settings: HubSettings, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def consume_count(settings: HubSettings, topic: str, n: int, timeout: float = 300) -> None:
    consumer = KafkaConsumer(topic, **client_options(settings), auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False)
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {n} on {topic}")
        for records in consumer.poll(timeout_ms=200).values():
            seen += len(records)
    consumer.close()


def baseline(base: HubSettings, messages: list[tuple[bytes, bytes]]) -> float:
    topic = f"bench-bare-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    publish(base, topic, messages)
    consume_count(base, topic, len(messages))
    return time.perf_counter() - start


def hub(base: HubSettings, messages: list[tuple[bytes, bytes]]) -> float:
    run = uuid.uuid4().hex[:8]
    db = f"sendhub_bench_{run}"
    admin = base.database_conninfo
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = str(base.database_url).rsplit("/", 1)[0] + f"/{db}"
    upgrade(HubSettings(database_url=url))
    namespaced = base.model_copy(update={"topic_namespace": f"bench-{run}."})
    sync(namespaced)  # the services' own Kafka users and grants in this namespace
    env = {**os.environ, "SENDHUB_TOPIC_NAMESPACE": f"bench-{run}.",
           "SENDHUB_DATABASE_URL": url,
           "SENDHUB_LOG_LEVEL": "WARNING", "SENDHUB_RELAY_INTERVAL_SECONDS": "0.05"}
    procs = []
    logs = ROOT / ".cache" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for name in ("ingest", "records"):
            log = (logs / f"{name}-{run}.log").open("wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "sendhub.cli", "serve", name],
                                          stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT))
        time.sleep(6)  # let both join their groups before the clock starts
        topics = Topics(f"bench-{run}.")
        start = time.perf_counter()
        publish(base, topics.school_events, messages)
        consume_count(base, topics.pupil_history, len(messages))
        return time.perf_counter() - start
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
        drop_database(admin, db)
        forget_namespace(namespaced, [])
        for leftover in base.credentials_dir.glob(f"bench-{run}.*.password"):
            leftover.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = HubSettings()
    bare_times, hub_times = [], []
    for i in range(args.runs):
        messages = events(args.events)
        bare_times.append(baseline(base, messages))
        hub_times.append(hub(base, messages))
        print(f"run {i + 1}: bare {bare_times[-1]:.2f} s, hub {hub_times[-1]:.2f} s")
    bare, through = statistics.median(bare_times), statistics.median(hub_times)
    print(f"events per run: {args.events} ({args.events // 10} pupils x 10)")
    print(f"bare Kafka produce+consume: median {bare:.2f} s = {args.events / bare:,.0f} events/s")
    print(f"hub ingest->records->history: median {through:.2f} s = "
          f"{args.events / through:,.0f} events/s")
    print(f"ratio hub / bare: {through / bare:.1f}x")


if __name__ == "__main__":
    main()
