"""Backfill: N events of valid histories with moves, inbound to every history event stored
and relayed and every packet in its receiver's inbox, against the bare single stage.

Run: `.venv/bin/python bench/backfill.py` (`--events 20000 --runs 3`). Needs Kafka and
PostgreSQL (deploy/local/up). Each run generates N events (10 a pupil, each pupil's
history ending in a move to one of 20 schools) and measures, on the same bytes:

- the bare single stage: one process with a kafka-python consumer (its own group, no
  auto-commit, batches of up to 500) -> psycopg, the batch's rows and the consumed
  offsets in one transaction -> a kafka-python producer sending every row to an output
  topic, flushed after the commit. The least a stage that stores what it consumed, and
  publishes it, exactly once, must do;
- the bare chain (`--chain 3`): three such stages in a row, each its own process, group
  and tables, input -> stage 1 -> topic -> stage 2 -> topic -> stage 3 -> output, all
  running before the clock starts. What as many stages as the hub has services cost on
  the same two cores, before any of the hub's own work (validation, sealing, the hash
  chain, packets): the fairer yardstick for a hub of three services;
- the hub: a fresh hub (database, namespace), one process each of ingest, records and
  transfers; inbound on sen.school-events.v1, done when all N history events are on
  sen.pupil-history.v1 and every pupil's packet is in its receiver's inbox topic.

How both are timed, the same way, so the ratio is fair:
- the input is pre-loaded, untimed: the events are published to the input topic (the
  stage's, or the hub's sen.school-events.v1) before anything consumes it;
- the clock starts when the consuming group first becomes Stable, i.e. has its
  partitions and can consume (polled every 50 ms): the stage's group, or ingest's.
  Start-up before that (process start, imports, connecting, joining) is not counted; the
  hub's is printed beside. Records and transfers are started first and are already in
  their groups when ingest starts, as in a hub that is running when a backfill arrives;
- it stops when a reader in this process (kafka-python, from the earliest offset) has
  the last of the N distinct records on the output topic, or on the history topic, or
  the last pupil's packet in the inbox topics (found by pattern within 250 ms of being
  made). That is an upper bound: the reader's lag is in it, for both sides alike. The
  broker timestamps (CreateTime: when the producer sent the last one, before the broker
  acknowledged it) give the lower bound, printed beside as "sent".

Checked every run, and printed rather than hidden: every sent event on the history topic
under exactly one (pupil_id, version), none extra, repeats counted; exactly one packet
per pupil by packet_id; the stage's output exactly the input. The machine is shared:
quote medians and the ratio, not one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from pydantic import PostgresDsn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu import CpuMeter  # noqa: E402
from harness import (  # noqa: E402
    LOGS,
    Hub,
    TopicReader,
    drop_topics,
    fresh_hub,
    median_line,
    producer,
    publish,
    pupil_histories,
    service_log,
    wait_for_groups,
)

from services.shared.database import drop_database  # noqa: E402
from services.shared.kafka import client_options, ensure_topics  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402

STAGE_BATCH = 500
RECEIVERS = 20
PER_PUPIL = 10


# --- the bare single stage -------------------------------------------------------------

STAGE_TABLES = """
CREATE TABLE {stage}_rows (key bytea, value bytea NOT NULL);
CREATE TABLE {stage}_consumed (topic text, partition int, next_offset bigint NOT NULL,
                               PRIMARY KEY (topic, partition));
"""
"""Each stage's own tables ({stage}: stage1, stage2, ...), in one database."""


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """Resume each assigned partition where the database says the stage got to."""

    def __init__(self, consumer: KafkaConsumer, db: psycopg.Connection[Any], table: str
                 ) -> None:
        self.consumer, self.db, self.table = consumer, db, table

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        for tp in assigned:
            row = self.db.execute(f"SELECT next_offset FROM {self.table} WHERE topic = %s "
                                  "AND partition = %s", (tp.topic, tp.partition)).fetchone()
            self.db.commit()
            if row:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition), row[0])


def bare_stage(conninfo: str, source: str, sink: str, group: str, n: int,
               done: Any, release: Any, stage: str = "stage1") -> None:
    """The hand-written stage (runs in its own process): consume a batch, store its rows
    and offsets in one transaction, then publish the rows and flush; until N are out.
    Then waits for `release`, so that its CPU, and its database session's, are still
    there to be read when the clock stops."""
    settings = HubSettings()
    with psycopg.connect(conninfo) as db:
        consumer = KafkaConsumer(**client_options(settings), group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=STAGE_BATCH)
        consumer.subscribe([source], listener=_SeekToStored(consumer, db, f"{stage}_consumed"))
        out = producer(settings)
        sent = batches = 0
        while sent < n:
            polled = consumer.poll(timeout_ms=100, max_records=STAGE_BATCH)
            records = [r for rs in polled.values() for r in rs]
            if not records:
                continue
            nexts: dict[tuple[str, int], int] = {}
            for r in records:
                nexts[(r.topic, r.partition)] = r.offset + 1
            with db.transaction(), db.cursor() as cur:
                cur.executemany(f"INSERT INTO {stage}_rows (key, value) VALUES (%s, %s)",
                                [(r.key, r.value) for r in records])
                cur.executemany(
                    f"INSERT INTO {stage}_consumed (topic, partition, next_offset) VALUES "
                    "(%s, %s, %s) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = "
                    "excluded.next_offset", [(t, p, o) for (t, p), o in nexts.items()])
            for r in records:
                out.send(sink, key=r.key, value=r.value)
            out.flush()
            sent += len(records)
            batches += 1
        done.put({"flushed_at": time.time(), "batches": batches, "sent": sent})
        release.get(timeout=600)
        out.close()
        consumer.close()


def _stages_alive(stages: Sequence[Any]) -> None:
    for n, stage in enumerate(stages, start=1):
        if stage.exitcode not in (None, 0):
            raise RuntimeError(f"bare stage {n} exited with {stage.exitcode}")


@dataclass
class StageRun:
    seconds: float  # clock start -> the reader had all N
    sent_seconds: float  # clock start -> the last one's CreateTime
    batches: int  # the last stage's
    repeats: int
    extra: int
    missing: int
    cpu: str = ""  # CPU per event by process kind, clock start -> the reader had all N


def run_bare(base: HubSettings, messages: Sequence[tuple[bytes, bytes]], timeout: float,
             settle: float, stages: int = 1) -> StageRun:
    """`stages` bare stages in a chain (input -> stage 1 -> topic -> stage 2 ... -> output),
    each its own process, group and tables, all running before the clock starts: with
    one, the single stage; with three, what as many stages as the hub has services cost
    on the same cores."""
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-bare-{run}."
    topics = [f"{prefix}input", *(f"{prefix}hop{n}" for n in range(1, stages)),
              f"{prefix}output"]
    groups = [f"{prefix}stage{n}" for n in range(1, stages + 1)]
    label = "bare" if stages == 1 else f"bare chain of {stages} stages"
    db = f"sendhub_bench_bare_{run}"
    with psycopg.connect(base.database_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    conninfo = base.model_copy(update={"database_url": PostgresDsn(
        str(base.database_url).rsplit("/", 1)[0] + f"/{db}")}).database_conninfo
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for n in range(1, stages + 1):
                conn.execute(STAGE_TABLES.format(stage=f"stage{n}"))
        ensure_topics(base, topics)
        print(f"  {label}: pre-loading {len(messages):,} events on {topics[0]}", flush=True)
        publish(base, topics[0], messages)
        reader = TopicReader(base, lambda r: r.value, len(messages), topics=[topics[-1]])
        reader.start()
        spawn = multiprocessing.get_context("spawn")
        done: Any = spawn.Queue()
        release: Any = spawn.Queue()
        procs = [spawn.Process(
            target=bare_stage, args=(conninfo, topics[n], topics[n + 1], groups[n],
                                     len(messages), done, release, f"stage{n + 1}"))
            for n in range(stages)]
        for proc in procs:
            proc.start()
        meter = CpuMeter()
        try:
            print(f"  {label}: started; clock starts when its groups are stable", flush=True)
            t0 = wait_for_groups(base, dict.fromkeys(groups, 1))
            meter.start()
            seen = reader.wait(timeout, f"{label} output", alive=lambda: _stages_alive(procs))
            meter.stop({proc.pid: f"stage {n}" for n, proc in enumerate(procs, start=1)
                        if proc.pid is not None})
            stats = [done.get(timeout=timeout) for _ in procs]
            for _ in procs:
                release.put(None)
            for proc in procs:
                proc.join(timeout=30)
            time.sleep(settle)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            reader.stop()
        sent, out = {v for _, v in messages}, set(reader.first)
        last = max(stats, key=lambda s: float(s["flushed_at"]))
        result = StageRun(seen - t0, reader.last_published() - t0, int(last["batches"]),
                          reader.repeats, len(out - sent), len(sent - out),
                          meter.line(len(messages), seen - t0))
        print(f"  {label}: {len(messages):,} out in {result.seconds:.2f} s "
              f"({len(messages) / result.seconds:,.0f} events/s; sent by "
              f"{result.sent_seconds:.2f} s, the last flush done at "
              f"{last['flushed_at'] - t0:.2f} s; {result.batches} batches in the last stage)",
              flush=True)
        print(f"  {label}: {result.cpu}", flush=True)
        return result
    finally:
        drop_database(base.database_conninfo, db)
        drop_topics(base, prefix)


# --- the hub ------------------------------------------------------------------------------

SERVICES = ("ingest", "records", "transfers")


def _history_key(record: Any) -> tuple[str, int]:
    event = json.loads(record.value)
    return event["pupil_id"], event["version"]


def _packet_key(record: Any) -> bytes:
    return bytes(record.key)


@dataclass
class HubRun:
    run: str
    events: int
    pupils: int
    startup: float  # ingest started -> its group stable (not counted)
    # None: not all of them arrived within the timeout (the checks say how many did)
    history_seconds: float | None  # clock start -> the reader had all N history events
    packets_seconds: float | None  # clock start -> the reader had every pupil's packet
    history_sent_seconds: float | None  # clock start -> the last one's CreateTime
    packets_sent_seconds: float | None
    history_repeats: int = 0
    history_extra: int = 0  # distinct (pupil, version) beyond the events sent
    events_missing: int = 0  # sent event ids not on the history topic
    events_unexpected: int = 0  # event ids on the history topic that were not sent
    packet_repeats: int = 0  # copies of a packet_id already seen
    pupils_without_packet: int = 0
    pupils_with_two_packets: int = 0  # two different packet_ids for one pupil
    errors: dict[str, Counter[str]] = field(default_factory=dict)  # logged, by service
    cpu: str = ""  # CPU per event by process kind, clock start -> last packet (bench/cpu.py)

    @property
    def history_rate(self) -> float | None:
        return self.events / self.history_seconds if self.history_seconds else None

    def logged_errors(self) -> str:
        """What the services logged as errors: often why something did not arrive."""
        told = [f"{service} {sum(c.values())} ({', '.join(f'{e} x{n}' for e, n in c.most_common(3))})"
                for service, c in self.errors.items() if c]
        return "errors logged: " + ("; ".join(told) if told else "none")

    def checks(self) -> str:
        doubled = self.history_repeats + self.packet_repeats + self.pupils_with_two_packets
        lost = self.events_missing + self.pupils_without_packet
        verdict = "OK" if doubled + lost + self.history_extra + self.events_unexpected == 0 \
            else "NOT OK"
        return (f"checks {verdict}: history {self.events - self.events_missing:,} of "
                f"{self.events:,} sent events, {self.history_repeats} repeated, "
                f"{self.history_extra} extra (pupil, version), {self.events_unexpected} "
                f"unexpected; packets for {self.pupils - self.pupils_without_packet:,} of "
                f"{self.pupils:,} pupils, {self.packet_repeats} repeated, "
                f"{self.pupils_with_two_packets} pupils with two")


def run_hub(messages: Sequence[tuple[bytes, bytes]], *, instances: int = 1, preload: bool = True,
            base: HubSettings | None = None, env: dict[str, str] | None = None,
            timeout: float = 900, packets_timeout: float = 300, settle: float = 3.0,
            on_ready: Callable[[Hub], None] | None = None,
            after: Callable[[Hub], None] | None = None) -> HubRun:
    """One hub run. `preload`: the input is on the topic before ingest starts, the clock
    starting when ingest's group is stable; otherwise every service is started and in
    its group first and the clock starts with the publish (which is then timed).
    `timeout` bounds the wait for the history, `packets_timeout` the wait for the
    packets after it; what did not arrive is counted as lost, not raised.
    `on_ready(hub)` is called when every group is stable, before the clock starts;
    `after(hub)` once the services have stopped, before the hub is torn down."""
    pupils = {k for k, _ in messages}
    sent = {json.loads(v)["event_id"] for _, v in messages}
    with fresh_hub(base, **(env or {})) as hub:
        topics = hub.topics
        groups = {topics.group(s): instances for s in SERVICES}
        if preload:
            ensure_topics(hub.settings, [topics.school_events])
            print(f"  hub {hub.run}: pre-loading {len(messages):,} events on "
                  f"{topics.school_events}", flush=True)
            publish(hub.base, topics.school_events, messages)
        print(f"  hub {hub.run}: starting records and transfers x{instances}", flush=True)
        for service in ("records", "transfers"):
            hub.start(service, instances)
        wait_for_groups(hub.base, {g: n for g, n in groups.items()
                                   if not g.endswith("ingest")}, timeout=300)
        history = TopicReader(hub.base, _history_key, len(messages),
                              topics=[topics.pupil_history])
        packets = TopicReader(hub.base, _packet_key, len(pupils),
                              pattern="^" + re.escape(topics.inbox("")) + ".*")
        history.start()
        packets.start()
        try:
            print(f"  hub {hub.run}: starting ingest x{instances}", flush=True)
            started = time.time()
            hub.start("ingest", instances)
            ready = wait_for_groups(hub.base, groups, timeout=300)
            if on_ready is not None:
                on_ready(hub)
            print(f"  hub {hub.run}: every group stable {ready - started:.1f} s after ingest "
                  "started: clock started", flush=True)
            if preload:
                t0 = ready
            else:
                t0 = time.time()
                print(f"  hub {hub.run}: publishing {len(messages):,} events (timed)",
                      flush=True)
                publish(hub.base, topics.school_events, messages)
            print(f"  hub {hub.run}: waiting for the history and the packets", flush=True)
            meter = CpuMeter()
            meter.start()
            history_seen = _wait(history, timeout, "history events", hub)
            if history_seen is not None:
                print(f"  hub {hub.run}: all {len(messages):,} history events out at "
                      f"{history_seen - t0:.1f} s", flush=True)
            packets_seen = _wait(packets, packets_timeout if history_seen else settle,
                                 "packets", hub)
            meter.stop({p.pid: service for service, procs in hub.procs.items()
                        for p in procs})
            cpu = meter.line(len(messages), (packets_seen or time.time()) - t0)
            time.sleep(settle)  # anything doubled after the last one arrives now
        finally:
            history.stop()
            packets.stop()
        _fail_if_a_service_died(hub)
        hub.stop()
        done = history_seen is not None, packets_seen is not None
        result = HubRun(
            hub.run, len(messages), len(pupils), ready - started,
            history_seen - t0 if history_seen else None,
            packets_seen - t0 if packets_seen else None,
            history.last_published() - t0 if done[0] else None,
            packets.last_published() - t0 if done[1] else None)
        _check(result, history, packets, sent, pupils)
        result.cpu = cpu
        for service in SERVICES:
            result.errors[service] = Counter(
                str(line.get("event"))[:80] for i in range(instances)
                for line in service_log(LOGS / f"{service}-{hub.run}-{i}.log")
                if line.get("level") in ("error", "critical"))
        if after is not None:
            after(hub)
        return result


def _wait(reader: TopicReader, timeout: float, label: str, hub: Hub) -> float | None:
    """When the reader had them all, or None (said so) if they did not all come."""
    try:
        return reader.wait(timeout, label, alive=lambda: _fail_if_a_service_died(hub))
    except TimeoutError as error:
        print(f"  hub {hub.run}: NOT ALL ARRIVED: {error}; see .cache/bench/*-{hub.run}-*.log",
              flush=True)
        return None


def _fail_if_a_service_died(hub: Hub) -> None:
    for service, procs in hub.procs.items():
        for i, p in enumerate(procs):
            if p.poll() is not None:
                raise RuntimeError(f"{service} instance {i} exited with {p.returncode}: see "
                                   f".cache/bench/{service}-{hub.run}-{i}.log")


def _check(result: HubRun, history: TopicReader, packets: TopicReader, sent: set[str],
           pupils: set[bytes]) -> None:
    result.history_repeats = history.repeats
    result.history_extra = max(0, len(history.first) - result.events)
    on_topic = {json.loads(r.value)["event"]["event_id"] for r in history.first.values()}
    result.events_missing = len(sent - on_topic)
    result.events_unexpected = len(on_topic - sent)
    result.packet_repeats = packets.repeats
    per_pupil = Counter(json.loads(r.value)["pupil"]["upn"].encode()
                        for r in packets.first.values())
    result.pupils_without_packet = len(pupils - set(per_pupil))
    result.pupils_with_two_packets = sum(1 for n in per_pupil.values() if n > 1)


# --- the benchmark -------------------------------------------------------------------------

def seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "did not finish"


def at(value: float | None) -> str:
    return f"at {value:.1f} s" if value is not None else "did not finish"


def medians(label: str, values: Sequence[float | None], unit: str) -> str:
    """The median of the runs that finished, saying how many did not."""
    done = [v for v in values if v is not None]
    if not done:
        return f"{label}: no run finished"
    missing = len(values) - len(done)
    return median_line(label, done, unit) + (f" ({missing} run(s) did not finish)"
                                             if missing else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds to wait for each side's output (default 900)")
    parser.add_argument("--packets-timeout", type=float, default=300,
                        help="seconds to wait for the packets once the history is out")
    parser.add_argument("--chain", type=int, default=3,
                        help="stages of the bare chain, run beside the single stage (0: none)")
    args = parser.parse_args()
    base = HubSettings()
    bare_rates: list[float] = []
    chain_rates: list[float] = []
    chain_shares: list[float | None] = []
    hub_rates: list[float | None] = []
    packet_times: list[float | None] = []
    shares: list[float | None] = []
    failed = 0
    for i in range(args.runs):
        print(f"run {i + 1} of {args.runs}: generating {args.events:,} events", flush=True)
        messages = pupil_histories(args.events, PER_PUPIL, RECEIVERS)
        bare = run_bare(base, messages, args.timeout, settle=1.0)
        chain = run_bare(base, messages, args.timeout, settle=1.0, stages=args.chain) \
            if args.chain > 1 else None
        hub = run_hub(messages, timeout=args.timeout, packets_timeout=args.packets_timeout)
        bare_rate = args.events / bare.seconds
        bare_rates.append(bare_rate)
        hub_rates.append(hub.history_rate)
        packet_times.append(hub.packets_seconds)
        shares.append(100 * hub.history_rate / bare_rate if hub.history_rate else None)
        if chain is not None:
            chain_rates.append(args.events / chain.seconds)
            chain_shares.append(100 * hub.history_rate / chain_rates[-1]
                                if hub.history_rate else None)
        rate = f"{hub.history_rate:,.0f} events/s" if hub.history_rate else "did not finish"
        share = f"{shares[-1]:.1f}%" if shares[-1] is not None else "-"
        after_history = f" (+{hub.packets_seconds - hub.history_seconds:.2f} s)" \
            if hub.packets_seconds and hub.history_seconds else ""
        print(f"run {i + 1}: bare {bare_rate:,.0f} events/s ({bare.seconds:.2f} s); hub {rate} "
              f"to the history topic ({seconds(hub.history_seconds)}), last packet "
              f"{at(hub.packets_seconds)}{after_history}; hub {share} of bare", flush=True)
        if chain is not None:
            chain_share = f"{chain_shares[-1]:.1f}%" if chain_shares[-1] is not None else "-"
            print(f"  bare chain of {args.chain} stages {chain_rates[-1]:,.0f} events/s "
                  f"({chain.seconds:.2f} s); hub {chain_share} of the chain", flush=True)
        print(f"  hub: sent (CreateTime) the last history event "
              f"{at(hub.history_sent_seconds)}, the last packet "
              f"{at(hub.packets_sent_seconds)}; start-up {hub.startup:.1f} s, not counted",
              flush=True)
        bare_ok = True
        for name, stage in (("bare", bare), ("bare chain", chain)):
            if stage is None:
                continue
            ok = stage.repeats + stage.extra + stage.missing == 0
            print(f"  {name} checks {'OK' if ok else 'NOT OK'}: {stage.missing} missing, "
                  f"{stage.repeats} repeated, {stage.extra} unexpected", flush=True)
            bare_ok = bare_ok and ok
        print(f"  hub {hub.checks()}", flush=True)
        print(f"  hub {hub.cpu}", flush=True)
        print(f"  hub {hub.logged_errors()}", flush=True)
        failed += (not bare_ok) + (not hub.checks().startswith("checks OK"))
    print(f"events per run: {args.events:,} ({args.events // PER_PUPIL:,} pupils x {PER_PUPIL}, "
          f"each ending in a move to one of {RECEIVERS} schools)")
    print(median_line("bare single stage (consumer -> psycopg -> producer)", bare_rates,
                      "events/s"))
    if chain_rates:
        print(median_line(f"bare chain of {args.chain} stages (each consumer -> psycopg -> "
                          "producer)", chain_rates, "events/s"))
    print(medians("hub, inbound -> sen.pupil-history.v1", hub_rates, "events/s"))
    print(medians("hub, time to the last packet in its inbox", packet_times, "s"))
    print(medians("hub as % of the bare stage (per run)", shares, "%"))
    if chain_rates:
        print(medians(f"hub as % of the bare chain of {args.chain} stages (per run)",
                      chain_shares, "%"))
    print(f"runs whose checks failed (lost, doubled or unexpected): {failed}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
