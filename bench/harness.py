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
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import CoordinatorNotAvailableError
from pydantic import PostgresDsn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.topics import Topics  # noqa: E402
from sendhub.principals_admin import forget_namespace, sync  # noqa: E402
from services.shared.database import drop_database, upgrade  # noqa: E402
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


def described_groups(admin: KafkaAdminClient, groups: list[str]) -> dict[str, Any]:
    """Each group's state and members; before a fresh broker has made __consumer_offsets
    (at the first group's request) every group reads as not yet stable, not an error."""
    try:
        return dict(admin.describe_groups(groups))
    except CoordinatorNotAvailableError:
        return {g: {"group_state": "no coordinator yet", "members": []} for g in groups}


def wait_for_groups(settings: HubSettings, members: dict[str, int], timeout: float = 180,
                    every: float = 0.05) -> float:
    """Wait until each consumer group is Stable with at least its number of members (all
    its partitions assigned, so it can consume); returns that moment as time.time(), to
    the polling interval. How a benchmark starts its clock without counting start-up."""
    admin = KafkaAdminClient(**client_options(settings), client_id="bench-groups")
    deadline = time.monotonic() + timeout
    try:
        while True:
            described = described_groups(admin, list(members))
            if all(described[g]["group_state"] == "Stable"
                   and len(described[g]["members"]) >= n for g, n in members.items()):
                return time.time()
            if time.monotonic() > deadline:
                states = {g: (d["group_state"], len(d["members"])) for g, d in described.items()}
                raise TimeoutError(f"consumer groups not stable after {timeout:.0f} s: {states}")
            time.sleep(every)
    finally:
        admin.close()


def group_assignments(settings: HubSettings, group: str) -> dict[str, list[str]]:
    """Each member of a group (by its static instance id, else client id) and the
    partitions it holds now, as `topic[partition]`."""
    admin = KafkaAdminClient(**client_options(settings), client_id="bench-groups")
    try:
        members = admin.describe_groups([group])[group]["members"]
    finally:
        admin.close()
    out: dict[str, list[str]] = {}
    for m in members:
        name = m.get("group_instance_id") or m.get("client_id") or m.get("member_id")
        assignment = m.get("member_assignment") or {}
        parts = [f"{held['topic']}[{p}]" for held in assignment.get("assigned_partitions", [])
                 for p in held["partitions"]]
        out[str(name)] = sorted(parts)
    return out


class TopicReader(threading.Thread):
    """Reads topics (or every topic matching a pattern) from the earliest offset in the
    background, keeping the first record of each distinct key (`key_of`) and counting
    the repeats, so a benchmark can wait for N distinct records and then see what was
    doubled. `seen_at` is when this reader had them all (an upper bound on when they were
    on the topic: its own lag included); a record's broker timestamp (CreateTime: when
    its producer sent it, before the broker acknowledged) is a lower bound."""

    def __init__(self, settings: HubSettings, key_of: Callable[[Any], Hashable], expected: int,
                 topics: Sequence[str] = (), pattern: str | None = None,
                 metadata_max_age_ms: int = 250) -> None:
        super().__init__(daemon=True)
        self.key_of = key_of
        self.first: dict[Hashable, Any] = {}
        self.repeats = 0
        self.total = 0
        self.expected = expected
        self.seen_at: float | None = None  # time.time() when it had `expected` distinct
        self.error: BaseException | None = None
        self._stop_reading = threading.Event()
        self._lock = threading.Lock()
        self._consumer = KafkaConsumer(**client_options(settings), auto_offset_reset="earliest",
                                       group_id=None, enable_auto_commit=False,
                                       metadata_max_age_ms=metadata_max_age_ms)
        if pattern:  # new matching topics are found within metadata_max_age_ms
            self._consumer.subscribe(pattern=pattern)
        else:
            self._consumer.subscribe(list(topics))

    def run(self) -> None:
        try:
            while not self._stop_reading.is_set():
                for records in self._consumer.poll(timeout_ms=100).values():
                    for record in records:
                        key = self.key_of(record)
                        with self._lock:
                            self.total += 1
                            if key in self.first:
                                self.repeats += 1
                            else:
                                self.first[key] = record
                            if self.seen_at is None and len(self.first) >= self.expected:
                                self.seen_at = time.time()
        except BaseException as error:  # reported by wait(), not lost in the thread
            self.error = error
        finally:
            self._consumer.close()

    @property
    def distinct(self) -> int:
        with self._lock:
            return len(self.first)

    def wait(self, timeout: float, label: str, progress_every: float = 10,
             alive: Callable[[], None] | None = None) -> float:
        """Block until `expected` distinct records have been read, printing progress;
        returns `seen_at`. `alive()` is called meanwhile, to raise if what writes them
        has died rather than wait for the timeout."""
        n = self.expected
        started = time.monotonic()
        shown = started
        while self.distinct < n:
            if self.error is not None:
                raise RuntimeError(f"reading {label} failed") from self.error
            if alive is not None:
                alive()
            now = time.monotonic()
            if now - started > timeout:
                raise TimeoutError(f"only {self.distinct:,} of {n:,} {label} after {timeout:.0f} s")
            if now - shown >= progress_every:
                print(f"    {label}: {self.distinct:,} of {n:,} after {now - started:.0f} s",
                      flush=True)
                shown = now
            time.sleep(0.05)
        assert self.seen_at is not None
        return self.seen_at

    def last_published(self) -> float:
        """time.time() of the latest first copy's broker timestamp: when the last of
        the distinct records was published."""
        with self._lock:
            return float(max(r.timestamp for r in self.first.values())) / 1000

    def stop(self) -> None:
        self._stop_reading.set()
        self.join(timeout=10)


def service_log(path: Path) -> list[dict[str, Any]]:
    """A service's JSON log lines (`services/shared/logs.py`); other lines skipped."""
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def drop_topics(settings: HubSettings, prefix: str) -> None:
    """Delete every topic whose name starts with `prefix` (a bench run's own namespace),
    so repeated runs do not fill the broker's disk. Best effort."""
    if not prefix:
        raise ValueError("refusing to drop topics with an empty prefix")
    admin = KafkaAdminClient(**client_options(settings), client_id="bench-cleanup")
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        if names:
            admin.delete_topics(names, raise_errors=False)
    except Exception as error:  # a leftover topic must not fail the benchmark
        print(f"  (could not delete the topics under {prefix}: {error})", flush=True)
    finally:
        admin.close()


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
        # HTTP on any free port: two instances of a service, or two benchmarks, on one box.
        "SENDHUB_LOG_LEVEL": "WARNING", "SENDHUB_HTTP_PORT": "0", **env})
    try:
        yield hub
    finally:
        hub.stop()
        drop_database(admin, db)
        forget_namespace(namespaced, [])
        drop_topics(base, namespace)
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
        drop_database(base.database_conninfo, db)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest rank: a value that was measured."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * q / 100))) - 1]
