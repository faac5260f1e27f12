"""What every hub benchmark needs: a fresh hub (database, topic namespace, the services'
Kafka users) with its services running as processes, and the bare Kafka clients the
baselines are built from. Not a benchmark itself.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer
from pydantic import PostgresDsn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.topics import Topics  # noqa: E402
from sendhub.principals_admin import forget_namespace, sync  # noqa: E402
from services.shared.database import upgrade  # noqa: E402
from services.shared.kafka import client_options  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402

LOGS = ROOT / ".cache" / "bench"
HISTORY = ("concern_raised", "assessment_completed", "plan_reviewed", "plan_reviewed")


def pupil_histories(events: int, per_pupil: int = 10, receivers: int = 20
                    ) -> list[tuple[bytes, bytes]]:
    """`events` valid school events, `per_pupil` to a pupil, each pupil's history ending
    in a move to one of `receivers` schools (so every pupil's packet is built), the
    pupils' events interleaved as a trust's systems would send them."""
    pupils = max(1, events // per_pupil)
    streams: list[list[tuple[bytes, bytes]]] = []
    for n in range(pupils):
        upn = random_upn()
        who = {"upn": upn, "given_name": "Pupil", "family_name": f"Bench{n}",
               "date_of_birth": "2015-01-01"}
        count = per_pupil if n < pupils - 1 else events - per_pupil * (pupils - 1)
        stream = []
        for i in range(count):
            if i == count - 1:
                e = school_event("pupil_moved", pupil=who, payload={
                    "destination": {"kind": "school", "urn": f"{200001 + n % receivers}"},
                    "move_kind": "in_year", "effective_date": "2025-11-10"})
            else:
                e = school_event(HISTORY[i % len(HISTORY)], pupil=who)
            stream.append((upn.encode(), json.dumps(e).encode()))
        streams.append(stream)
    out: list[tuple[bytes, bytes]] = []
    for i in range(per_pupil):
        out.extend(s[i] for s in streams if i < len(s))
    return out


def receiver_urns(receivers: int = 20) -> list[str]:
    return [f"{200001 + n}" for n in range(receivers)]


def producer(settings: HubSettings, **options: Any) -> KafkaProducer:
    return KafkaProducer(**client_options(settings), acks="all", linger_ms=5, **options)


def publish(settings: HubSettings, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    out = producer(settings)
    for key, value in messages:
        out.send(topic, key=key, value=value)
    out.flush()
    out.close()


def consume_count(settings: HubSettings, topics: Sequence[str] | str, n: int,
                  timeout: float = 600, pattern: str | None = None) -> list[Any]:
    """Read from the earliest offset until `n` records have arrived; returns them."""
    consumer = KafkaConsumer(**client_options(settings), auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False,
                             metadata_max_age_ms=1_000)
    if pattern:
        consumer.subscribe(pattern=pattern)
    else:
        consumer.subscribe([topics] if isinstance(topics, str) else list(topics))
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(seen) < n:
        if time.monotonic() > deadline:
            consumer.close()
            raise TimeoutError(f"only {len(seen)} of {n} on {topics or pattern}")
        for records in consumer.poll(timeout_ms=200).values():
            seen.extend(records)
    consumer.close()
    return seen


@dataclass
class Hub:
    """A running hub of its own: fresh database, topic namespace and Kafka users."""

    base: HubSettings
    run: str
    settings: HubSettings
    topics: Topics
    env: dict[str, str]
    procs: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)

    def start(self, service: str, instances: int = 1, **env: str) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        for i in range(instances):
            log = (LOGS / f"{service}-{self.run}-{i}.log").open("wb")
            self.procs.setdefault(service, []).append(subprocess.Popen(
                [sys.executable, "-m", "sendhub.cli", "serve", service],
                stdout=log, stderr=subprocess.STDOUT,
                env={**self.env, "SENDHUB_INSTANCE_ID": f"{self.run}-{i}", **env}, cwd=ROOT))

    def stop(self) -> None:
        for procs in self.procs.values():
            for p in procs:
                p.terminate()
        for procs in self.procs.values():
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs.clear()


@contextmanager
def fresh_hub(base: HubSettings | None = None, **env: str) -> Iterator[Hub]:
    """A hub with nothing in it; torn down (database dropped, users removed) after."""
    base = base or HubSettings()
    run = uuid.uuid4().hex[:8]
    db = f"sendhub_bench_{run}"
    admin = base.database_conninfo
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = str(base.database_url).rsplit("/", 1)[0] + f"/{db}"
    upgrade(HubSettings(database_url=url))
    namespace = f"bench-{run}."
    namespaced = base.model_copy(update={"topic_namespace": namespace, "database_url": url})
    sync(namespaced)  # the services' own Kafka users and grants in this namespace
    hub = Hub(base, run, namespaced, Topics(namespace), {
        **os.environ, "SENDHUB_TOPIC_NAMESPACE": namespace, "SENDHUB_DATABASE_URL": url,
        "SENDHUB_LOG_LEVEL": "WARNING", **env})
    try:
        yield hub
    finally:
        hub.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        forget_namespace(namespaced, [])
        for leftover in base.credentials_dir.glob(f"{namespace}*.password"):
            leftover.unlink()


def median_line(label: str, values: Sequence[float], unit: str) -> str:
    return f"{label}: median {statistics.median(values):,.1f} {unit} " \
           f"(runs: {', '.join(f'{v:,.1f}' for v in values)})"


@contextmanager
def fresh_database(base: HubSettings | None = None) -> Iterator[HubSettings]:
    """A database of its own, upgraded, for a benchmark with no services; dropped after."""
    base = base or HubSettings()
    db = f"sendhub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base.database_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    fresh = base.model_copy(update={
        "database_url": PostgresDsn(str(base.database_url).rsplit("/", 1)[0] + f"/{db}")})
    try:
        upgrade(fresh)
        yield fresh
    finally:
        with psycopg.connect(base.database_conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest rank: a value that was measured."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * q / 100))) - 1]
