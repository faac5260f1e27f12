"""One phase of the suite: its own namespace and database, the services with N
instances each, the stream, the hostile groups and the faults; then drain, stop,
observe, check, and clean up whatever happens."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from rich.console import Console

from faults import infra
from faults.checker import Expected, check, expected_from
from faults.driver import Injector, Publisher
from faults.fleet import Fleet
from faults.observe import observe
from faults.plan import Plan
from faults.recovery import recoveries
from faults.report import PhaseReport
from faults.workload import RECEIVERS
from services.shared.settings import HubSettings

STABLE_SECONDS = 5.0  # counts unchanged this long: the hub has finished what it can


@dataclass
class Options:
    fail_on_duplicates: bool
    log_dir: Path
    keep: bool = False  # leave the namespace's topics and the database, to look at them


def hub_env(sandbox: infra.Sandbox) -> dict[str, str]:
    return {"SENDHUB_KAFKA_BOOTSTRAP": sandbox.base.kafka_bootstrap,
            "SENDHUB_DATABASE_URL": sandbox.url,
            "SENDHUB_TOPIC_NAMESPACE": sandbox.namespace,
            "SENDHUB_RELAY_INTERVAL_SECONDS": "0.1",
            "SENDHUB_DELIVERY_INTERVAL_SECONDS": "1",
            "SENDHUB_ANCHOR_INTERVAL_SECONDS": "10"}


def progress_counts(settings: HubSettings) -> tuple[int, int] | None:
    """(stored history events, packets published), or None while the database is away."""
    try:
        with psycopg.connect(settings.database_conninfo, connect_timeout=3) as conn:
            stored = conn.execute("SELECT count(*) FROM records_events").fetchone()
            sent = conn.execute("SELECT count(*) FROM transfers_packets "
                                "WHERE published_at IS NOT NULL").fetchone()
    except psycopg.Error:
        return None
    return (int(stored[0]) if stored else 0, int(sent[0]) if sent else 0)


def drain(settings: HubSettings, expected: Expected, timeout_s: float) -> float:
    """Wait until every valid event is stored and every packet sent, and nothing more
    moves for a few seconds; or until the timeout. Returns the seconds waited."""
    began = time.monotonic()
    wanted = (sum(len(e) for e in expected.pupils.values()), len(expected.moves))
    last, since = None, time.monotonic()
    while time.monotonic() - began < timeout_s:
        counts = progress_counts(settings)
        if counts != last:
            last, since = counts, time.monotonic()
        elif counts and counts[0] >= wanted[0] and counts[1] >= wanted[1] \
                and time.monotonic() - since >= STABLE_SECONDS:
            break
        time.sleep(1)
    return time.monotonic() - began


def restore(base: HubSettings, injector: Injector | None, notes: list[str], log_dir: Path) -> None:
    """Leave the broker and the database running, as they were before the phase."""
    cluster = infra.find_postgres(base)
    if cluster is not None and not infra.postgres_online(cluster):
        notes.append("PostgreSQL was down after the phase: started it")
        infra.start_postgres(cluster)
    if not infra.broker_answers(base):
        seen = injector.broker_seen if injector else None
        if seen is not None and infra.find_broker(base) is None:
            notes.append("the broker was down after the phase: started it again")
            infra.start_broker(seen, log_dir / "broker-restart.log")
        if not infra.wait_for_broker(base, 180):
            notes.append("the broker does not answer")


@contextmanager
def clients_logged(path: Path) -> Iterator[None]:
    """The suite's own kafka-python clients (the publisher above all) log to the phase's
    directory: when one stalls, its connections and metadata refreshes are there."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    kafka = logging.getLogger("kafka")
    level = kafka.level
    kafka.addHandler(handler)
    kafka.setLevel(logging.INFO)
    try:
        yield
    finally:
        kafka.removeHandler(handler)
        kafka.setLevel(level)
        handler.close()


def run_phase(plan: Plan, base: HubSettings, options: Options, console: Console) -> PhaseReport:
    options.log_dir.mkdir(parents=True, exist_ok=True)
    with clients_logged(options.log_dir / f"phase-{plan.instances}-kafka-clients.log"):
        return _run_phase(plan, base, options, console)


def _run_phase(plan: Plan, base: HubSettings, options: Options, console: Console) -> PhaseReport:
    run_id = uuid.uuid4().hex[:8]
    sandbox = infra.Sandbox(base, f"faults-{run_id}-i{plan.instances}.",
                            f"sendhub_faults_{run_id}_i{plan.instances}")
    log_dir = options.log_dir / f"{run_id}-i{plan.instances}"
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(hub_env(sandbox), log_dir)
    notes: list[str] = []
    injector: Injector | None = None
    began = time.monotonic()
    console.print(f"phase: {plan.instances} instance(s) each, namespace {sandbox.namespace}, "
                  f"database {sandbox.database}, logs {log_dir}")
    try:
        sandbox.create(list(RECEIVERS))
        fleet.start_all(plan.instances)
        start = time.time() + 1.0
        publisher = Publisher(plan, sandbox.settings, sandbox.topics, start)
        injector = Injector(plan, fleet, base, log_dir, start)
        publisher.start()
        injector.start()
        publisher.join()
        injector.join()
        notes += publisher.result.errors + injector.result.notes
        restore(base, injector, notes, log_dir)
        expected = expected_from(plan, publisher.result.failed, publisher.result.groups_sent)
        waited = drain(sandbox.settings, expected, plan.profile.drain_seconds)
        console.print(f"  stream sent in {publisher.result.finished_at - start:.0f} s; "
                      f"drained for {waited:.0f} s")
        fleet.stop_all()
        observed = observe(sandbox.settings)
        outcome = check(expected, observed, injector.result.faults)
        if expected.unpublished:
            notes.append(f"{expected.unpublished} messages the broker never acknowledged were "
                         "left out of the checks")
        log_bytes = fleet.log_bytes()
        fleet.trim_logs()
        return PhaseReport(plan.instances, outcome, recoveries(
                               injector.result.faults, observed.progress,
                               publisher.result.finished_at),
                           options.fail_on_duplicates, notes, log_bytes,
                           time.monotonic() - began, start, publisher.result.stopped)
    finally:
        fleet.stop_all()
        restore(base, injector, notes, log_dir)
        if options.keep:
            console.print(f"kept: SENDHUB_TOPIC_NAMESPACE={sandbox.namespace} "
                          f"SENDHUB_DATABASE_URL={sandbox.url}")
        else:
            for problem in sandbox.drop():
                console.print(f"[yellow]cleanup[/yellow]: {problem}")
