"""Move -> packet latency of the hub under a steady background of school events.

Run: `.venv/bin/python bench/latency.py --rate 500 --seconds 60 --runs 3`. Needs Kafka
and PostgreSQL (deploy/local/up). Each run sends the same paced stream three times:
- bare: to a plain topic, read back by a consumer in this process (produce -> consume);
- bare chain: through three relays in threads (consumer -> producer, acks=all, offsets
  committed after each acknowledged batch), as ingest -> records -> transfers are three
  hops, read back from the last topic;
- hub: to a fresh hub's school-events topic (fresh database and topic namespace, ingest,
  records and transfers as processes, started and joined to their consumer groups
  before the clock starts); a consumer in this process reads the receivers' inboxes.
The stream is valid pupil histories (10 events each, the last a move to one of 20
receiving schools), pupils staggered so that moves are spread evenly through it (about
one event in ten), sent at `--rate` events/s by schedule (event i at start + i/rate,
so a slow send does not shift the ones after it). A move's latency runs from the moment
just before its `send()` (the producer buffers it: linger 5 ms, acks=all) to the moment
this process polled the message that answers it: the move itself (bare) or the packet
naming the move's event id (`move.event_id`). Moves sent in the first `--warmup` seconds
are not counted. A move whose packet has not arrived `--wait` seconds after the stream
ended counts as infinitely late, so p99 says "not arrived" rather than flatter the hub.
Prints each run's figures, whether the hub kept up (its consumer groups' backlog when
the stream ended, how long the last packets took), medians over runs of p50 and p99, and
the ratios hub p99 / bare p99.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu import CpuMeter  # noqa: E402
from harness import Hub, described_groups, fresh_hub, percentile, producer, pupil_histories, receiver_urns  # noqa: E402

from services.shared.kafka import client_options, ensure_topics  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402

Message = tuple[bytes, bytes]


class EventLike(Protocol):
    """threading.Event or multiprocessing's Event: what a relay is told by."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
SERVICES = ("ingest", "records", "transfers")


def steady_histories(events: int, rate: int, per_pupil: int = 10, receivers: int = 20
                     ) -> list[Message]:
    """`events` events of valid histories in which moves come evenly, not in bursts.

    `pupil_histories` interleaves every pupil's first event, then every second, so all
    the moves come last. Here the stream is round-robin over lanes, each lane one pupil
    after another; lane l starts with a pupil of l % per_pupil + 1 events (a short
    history, still ending in a move), so the lanes' moves fall in different rounds."""
    lanes = max(per_pupil, rate // per_pupil)
    rounds = math.ceil(events / lanes)
    by_pupil: dict[bytes, list[Message]] = {}
    for key, value in pupil_histories(lanes * (rounds + per_pupil), per_pupil, receivers):
        by_pupil.setdefault(key, []).append((key, value))
    pupils = iter(by_pupil.values())
    queues = [pupil_histories(lane % per_pupil + 1, lane % per_pupil + 1, receivers)
              for lane in range(lanes)]
    for q in queues:
        while len(q) < rounds:
            q.extend(next(pupils))
    out: list[Message] = []
    for round_ in range(max(len(q) for q in queues)):
        out.extend(q[round_] for q in queues if round_ < len(q))
    return out[:events]


def move_ids(messages: Sequence[Message]) -> dict[int, str]:
    """{position in the stream: the move's event id} for every move."""
    out = {}
    for i, (_, value) in enumerate(messages):
        if b'"pupil_moved"' in value:
            event = json.loads(value)
            if event["event_type"] == "pupil_moved":
                out[i] = event["event_id"]
    return out


@dataclass
class Arrivals:
    """What a reader thread saw: the first arrival of each answer, and repeats."""

    at: dict[str, float] = field(default_factory=dict)
    repeats: int = 0
    unreadable: int = 0


def read_answers(consumer: KafkaConsumer, answer_of: Callable[[bytes], str | None],
                 arrivals: Arrivals, stop: threading.Event) -> None:
    """Note when each answer arrives (the moment poll returned it) until told to stop."""
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.monotonic()
                for r in records:
                    try:
                        answer = answer_of(r.value)
                    except (ValueError, KeyError, TypeError):
                        arrivals.unreadable += 1
                        continue
                    if answer is None:
                        continue
                    if answer in arrivals.at:
                        arrivals.repeats += 1
                    else:
                        arrivals.at[answer] = now
    finally:
        consumer.close()


def move_of_school_event(value: bytes) -> str | None:
    if b'"pupil_moved"' not in value:
        return None
    event = json.loads(value)
    return str(event["event_id"]) if event["event_type"] == "pupil_moved" else None


def move_of_packet(value: bytes) -> str | None:
    return str(json.loads(value)["move"]["event_id"])


def relay(base: HubSettings, source: str, target: str, ready: EventLike, stop: EventLike
          ) -> None:
    """A bare stage: consume a batch, produce it (acks=all), commit after the acks."""
    consumer = KafkaConsumer(**client_options(base), group_id=f"bench-relay-{uuid.uuid4().hex[:8]}",
                             enable_auto_commit=False, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(source, p) for p in consumer.partitions_for_topic(source)])
    out = producer(base)
    ready.set()
    try:
        while not stop.is_set():
            batch = [r for records in consumer.poll(timeout_ms=50, max_records=200).values()
                     for r in records]
            if not batch:
                continue
            for r in batch:
                out.send(target, key=r.key, value=r.value)
            out.flush()
            consumer.commit()
    finally:
        out.close()
        consumer.close()


def reader(base: HubSettings, topics: Sequence[str] = (), pattern: str | None = None
           ) -> KafkaConsumer:
    consumer = KafkaConsumer(**client_options(base), group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", metadata_max_age_ms=1_000)
    if pattern:
        consumer.subscribe(pattern=pattern)
    else:
        consumer.assign([TopicPartition(t, p) for t in topics
                         for p in consumer.partitions_for_topic(t)])
    return consumer


@dataclass
class Stream:
    """A paced send: when each move left, when the stream ended, how far it lagged."""

    sent: dict[str, float]
    started: float
    ended: float
    behind: float  # the most the sender fell behind its schedule, in seconds


def paced_send(base: HubSettings, topic: str, messages: Sequence[Message], rate: int,
               moves: dict[int, str], progress: Callable[[int], None]) -> Stream:
    out = producer(base)
    sent: dict[str, float] = {}
    behind = 0.0
    started = time.monotonic() + 0.1
    next_progress = started + 10
    for i, (key, value) in enumerate(messages):
        due = started + i / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
            now = time.monotonic()
        else:
            behind = max(behind, now - due)
        if i in moves:
            sent[moves[i]] = now
        out.send(topic, key=key, value=value)
        if now >= next_progress:
            progress(i)
            next_progress += 10
    out.flush()
    ended = time.monotonic()
    out.close()
    return Stream(sent, started, ended, behind)


@dataclass
class Latency:
    """One path's figures for one run, in milliseconds."""

    label: str
    measured: int
    arrived: int
    p50: float
    p99: float
    worst: float
    arrived_p50: float  # of the answers that arrived only: flatters a path that fell behind
    arrived_worst: float
    last_after_end: float  # seconds from the stream's end to the last answer
    repeats: int
    behind: float

    def line(self) -> str:
        missing = self.measured - self.arrived
        return (f"{self.label}: p50 {ms(self.p50)}, p99 {ms(self.p99)}, max {ms(self.worst)}; "
                f"moves {self.measured}, matched {self.arrived}"
                + (f", NOT ARRIVED {missing} (of those arrived: p50 {ms(self.arrived_p50)}, "
                   f"max {ms(self.arrived_worst)})" if missing else "")
                + f"; last answer {self.last_after_end:.1f} s after the stream ended"
                + (f"; {self.repeats} repeated" if self.repeats else "")
                + (f"; sender fell {self.behind:.2f} s behind schedule" if self.behind > 0.05
                   else ""))


def ms(value: float) -> str:
    if math.isnan(value):
        return "none"
    return "not arrived" if math.isinf(value) else f"{value:,.0f} ms"


def figures(label: str, stream: Stream, arrivals: Arrivals, warmup: float) -> Latency:
    counted = {m: t for m, t in stream.sent.items() if t >= stream.started + warmup}
    late = [(arrivals.at[m] - t) * 1000 if m in arrivals.at else math.inf
            for m, t in counted.items()]
    arrived = [arrivals.at[m] for m in counted if m in arrivals.at]
    on_time = [v for v in late if not math.isinf(v)]
    return Latency(label, len(counted), len(arrived), percentile(late, 50), percentile(late, 99),
                   max(late, default=math.nan), percentile(on_time, 50),
                   max(on_time, default=math.nan),
                   max(0.0, max(arrived, default=stream.ended) - stream.ended), arrivals.repeats,
                   stream.behind)


def await_answers(stream: Stream, arrivals: Arrivals, wait: float) -> None:
    deadline = stream.ended + wait
    while time.monotonic() < deadline and not set(stream.sent) <= arrivals.at.keys():
        time.sleep(0.1)


def progress_printer(label: str, total: int, arrivals: Arrivals) -> Callable[[int], None]:
    def show(i: int) -> None:
        print(f"    {label}: sent {i:,}/{total:,}, answers {len(arrivals.at):,}", flush=True)
    return show


def through(base: HubSettings, label: str, source: str, answers: KafkaConsumer,
            answer_of: Callable[[bytes], str | None], messages: Sequence[Message],
            args: argparse.Namespace, moves: dict[int, str],
            at_end: Callable[[], dict[str, int]] = dict) -> tuple[Stream, Arrivals, dict[str, int]]:
    """Send the paced stream to `source` while a thread reads `answers`; note `at_end()`
    as soon as the stream has been sent; wait up to `--wait` s for the rest."""
    arrivals, stop = Arrivals(), threading.Event()
    thread = threading.Thread(target=read_answers, args=(answers, answer_of, arrivals, stop),
                              daemon=True)
    thread.start()
    time.sleep(2)  # a pattern's topics found and their partitions assigned
    try:
        stream = paced_send(base, source, messages, args.rate, moves,
                            progress_printer(label, len(messages), arrivals))
        ended = at_end()
        await_answers(stream, arrivals, args.wait)
    finally:
        stop.set()
        thread.join(timeout=10)
    return stream, arrivals, ended


def bare_topics(base: HubSettings, count: int) -> list[str]:
    names = [f"bench-bare-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    admin = KafkaAdminClient(**client_options(base))
    try:
        admin.create_topics([NewTopic(n, base.topic_partitions, 1) for n in names])
    finally:
        admin.close()
    return names


def drop_topics(base: HubSettings, names: list[str]) -> None:
    admin = KafkaAdminClient(**client_options(base))
    try:
        admin.delete_topics(names, raise_errors=False)
    finally:
        admin.close()


def bare(base: HubSettings, messages: Sequence[Message], moves: dict[int, str],
         args: argparse.Namespace, hops: int) -> Latency:
    topics = bare_topics(base, hops + 1)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    relays = []
    try:
        # Each relay a process of its own, as each of the hub's services is.
        for source, target in zip(topics, topics[1:], strict=False):
            ready = spawn.Event()
            relays.append(spawn.Process(target=relay, args=(base, source, target, ready, stop),
                                        daemon=True))
            relays[-1].start()
            if not ready.wait(timeout=60):
                raise TimeoutError(f"the relay {source} -> {target} did not start")
        label = "bare" if hops == 0 else f"bare chain of {hops} relays"
        stream, arrivals, _ = through(base, label, topics[0], reader(base, [topics[-1]]),
                                      move_of_school_event, messages, args, moves)
    finally:
        stop.set()
        for process in relays:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        drop_topics(base, topics)
    return figures(label, stream, arrivals, args.warmup)


def joined(hub: Hub, timeout: float) -> float:
    """Wait until every service's consumer group is stable with members; seconds taken."""
    started = time.monotonic()
    groups = [hub.topics.group(s) for s in SERVICES]
    admin = KafkaAdminClient(**client_options(hub.base))
    try:
        while time.monotonic() - started < timeout:
            described = described_groups(admin, groups)
            if all(g["group_state"] == "Stable" and g["members"] for g in described.values()):
                return time.monotonic() - started
            for service, procs in hub.procs.items():
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"{service} exited while starting (see .cache/bench)")
            time.sleep(0.5)
    finally:
        admin.close()
    raise TimeoutError(f"the services' groups were not all stable after {timeout:.0f} s")


def backlog(hub: Hub) -> dict[str, int]:
    """Messages each service had not yet committed, per its input topic."""
    inputs = {"ingest": hub.topics.school_events, "records": hub.topics.accepted,
              "transfers": hub.topics.pupil_history}
    admin = KafkaAdminClient(**client_options(hub.base))
    ends = KafkaConsumer(**client_options(hub.base), group_id=None)
    try:
        out = {}
        for service, topic in inputs.items():
            partitions = [TopicPartition(topic, p) for p in ends.partitions_for_topic(topic) or []]
            end = ends.end_offsets(partitions)
            committed = admin.list_group_offsets({hub.topics.group(service): partitions})
            done = committed.get(hub.topics.group(service), {})
            out[service] = sum(end[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0
                                          else 0) for tp in partitions)
        return out
    finally:
        ends.close()
        admin.close()


def the_hub(base: HubSettings, messages: Sequence[Message], moves: dict[int, str],
            args: argparse.Namespace, env: dict[str, str]) -> tuple[Latency, str]:
    with fresh_hub(base, **env) as hub:
        inboxes = [hub.topics.inbox(f"urn-{urn}") for urn in receiver_urns()]
        ensure_topics(hub.settings, inboxes)  # as transfers would on first use
        for service in SERVICES:
            hub.start(service)
        took = joined(hub, timeout=60)
        print(f"    hub: services joined their groups in {took:.1f} s", flush=True)
        answers = reader(base, pattern=f"^{re.escape(hub.topics.inbox(''))}.*")
        meter, metered = CpuMeter(), [time.monotonic()]

        def at_end() -> dict[str, int]:
            """The backlog, and the CPU each process spent while the stream was sent."""
            meter.stop({p.pid: service for service, procs in hub.procs.items()
                        for p in procs})
            metered.append(time.monotonic())
            return backlog(hub)

        meter.start()
        stream, arrivals, behind = through(base, "hub", hub.topics.school_events, answers,
                                           move_of_packet, messages, args, moves,
                                           at_end=at_end)
        print(f"    hub: {meter.line(len(messages), metered[-1] - metered[0])}", flush=True)
        exited = [s for s, procs in hub.procs.items() if any(p.poll() is not None for p in procs)]
    result = figures("hub move -> packet", stream, arrivals, args.warmup)
    missing = len(stream.sent) - len(set(stream.sent) & arrivals.at.keys())
    kept_up = (not missing and result.last_after_end < 2 and sum(behind.values()) < args.rate)
    verdict = ("kept up" if kept_up else "did NOT keep up") + (
        f": backlog when the stream ended ingest {behind['ingest']:,}, records "
        f"{behind['records']:,}, transfers {behind['transfers']:,} messages; "
        f"{missing:,} of {len(stream.sent):,} packets not arrived {args.wait:.0f} s after "
        f"the end; {arrivals.unreadable} unreadable") + (
        f"; EXITED: {', '.join(exited)}" if exited else "")
    return result, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500, help="events per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5, help="seconds of moves not counted")
    parser.add_argument("--wait", type=float, default=60,
                        help="seconds to wait for late answers after the stream ends")
    parser.add_argument("--no-chain", action="store_true", help="skip the bare relay chain")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the hub's services, e.g. "
                        "SENDHUB_RELAY_INTERVAL_SECONDS=0.05 (default: the hub's own)")
    args = parser.parse_args()
    # Any free port for each service's /healthz: other hubs on this machine hold the defaults.
    env = {"SENDHUB_HTTP_PORT": "0", **dict(item.split("=", 1) for item in args.hub_env)}
    base = HubSettings()
    events = int(args.rate * args.seconds)
    results: dict[str, list[Latency]] = {}
    for run in range(1, args.runs + 1):
        messages = steady_histories(events, args.rate)
        moves = move_ids(messages)
        print(f"run {run}: {events:,} events at {args.rate}/s for {args.seconds:.0f} s, "
              f"{len(moves):,} moves", flush=True)
        for key, hops in (("bare", 0), ("chain", 3)):
            if key == "chain" and args.no_chain:
                continue
            results.setdefault(key, []).append(bare(base, messages, moves, args, hops))
            print(f"  {results[key][-1].line()}", flush=True)
        hub_result, verdict = the_hub(base, messages, moves, args, env)
        results.setdefault("hub", []).append(hub_result)
        print(f"  {hub_result.line()}\n  hub {verdict}", flush=True)

    print(f"\nmove -> answer latency at {args.rate} events/s for {args.seconds:.0f} s, "
          f"{args.runs} run(s), moves of the first {args.warmup:.0f} s not counted; "
          f"the machine is shared, so figures are noisy")
    for runs in results.values():
        p50 = statistics.median(r.p50 for r in runs)
        p99 = statistics.median(r.p99 for r in runs)
        print(f"{runs[0].label}: median p50 {ms(p50)}, median p99 {ms(p99)} "
              f"(p99 of runs: {', '.join(ms(r.p99) for r in runs)})")
    hub_p99 = statistics.median(r.p99 for r in results["hub"])
    for key in ("bare", "chain"):
        if key in results:
            theirs = statistics.median(r.p99 for r in results[key])
            ratio = hub_p99 / theirs if theirs else math.inf
            print(f"ratio hub p99 / {results[key][0].label} p99: "
                  + ("not arrived" if math.isinf(ratio) else f"{ratio:.1f}x"))
    print("target: hub p99 <= 150 ms at 500 events/s: "
          + ("met" if hub_p99 <= 150 and args.rate >= 500 else "not met"
             if hub_p99 > 150 else f"not measured at 500 events/s (rate {args.rate})"))


if __name__ == "__main__":
    main()
