"""Scale-out: two processes of each service on the same topics (partitions shared),
nothing lost or doubled, with each process's share; against one process of each.

Run: `.venv/bin/python bench/scale_out.py` (`--events 10000 --runs 3 --partitions 4`).
Needs Kafka and PostgreSQL (deploy/local/up). Each run generates N events (10 a pupil,
each history ending in a move) and runs two fresh hubs on the same bytes, one with one
process each of ingest, records and transfers, one with two each, every topic made with
`--partitions` partitions (SENDHUB_TOPIC_PARTITIONS; 4, so two consumers split evenly).

Timing: every process is started and in its consumer group first (each group Stable
with all its members, so nobody consumes alone before the other joins); the clock then
starts with the publish of the N events (which is inside the time, for both), and stops
when a reader has all N history events on sen.pupil-history.v1 and every pupil's packet
in the inbox topics. The figure to quote is the ratio two / one, same run, same bytes.

Checked, and printed rather than hidden, for both: every sent event id on the history
topic, under exactly one (pupil_id, version), none extra, repeats counted; exactly one
packet per pupil by packet_id, repeats counted. Each process's share comes from its own
log (SENDHUB_LOG_LEVEL=INFO for every process of both hubs, so both pay for it; ingest
logs each batch, or each message before it batched): ingest's consumed events,
records' stored batches, transfers' projected ones, beside the partitions the group
gave each process. Records' relay and transfers' packet publisher run in one instance
only (an outbox lease, services/shared/lease.py): the holder is named from its log.
The machine is shared: quote medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backfill import SERVICES, HubRun, at, medians, run_hub, seconds  # noqa: E402
from harness import LOGS, Hub, group_assignments, pupil_histories, service_log  # noqa: E402

from services.shared.settings import HubSettings  # noqa: E402

PER_PUPIL = 10
RECEIVERS = 20
# What each service's log says it did, per line: the event name and the field counting
# the messages (None: one a line). Ingest logged each message before it batched.
WORK: dict[str, dict[str, str | None]] = {
    "ingest": {"school_events.accepted": "consumed", "school_event.accepted": None},
    "records": {"history.recorded": "consumed"},
    "transfers": {"history.projected": "consumed"},
}
OUTBOXES = {"records": ("pupil-history", "history.relayed", "count"),
            "transfers": ("packets", "packet.delivered", None)}


@dataclass
class Shares:
    """Each process's part of the work, by service, from the logs and the group."""

    work: dict[str, list[int]] = field(default_factory=dict)
    partitions: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    lease: dict[str, list[int]] = field(default_factory=dict)  # who took it
    outbox: dict[str, list[int]] = field(default_factory=dict)  # what each published

    def lines(self, events: int) -> list[str]:
        out = []
        for service in SERVICES:
            counts = self.work.get(service, [])
            total = sum(counts)
            held = self.partitions.get(service, {})
            parts = []
            for i, n in enumerate(counts):
                # Members are named <service>-<run>-<i> (SENDHUB_INSTANCE_ID, Hub.start).
                mine = [p for name, ps in held.items() if name.endswith(f"-{i}") for p in ps]
                where = f", {_short(mine)}" if held else ""
                parts.append(f"#{i} {n:,} ({100 * n / total if total else 0:.0f}%{where})")
            missing = " (nothing in the logs: did its log lines change?)" if total == 0 else ""
            out.append(f"    {service:9} {'; '.join(parts)}; total {total:,} of {events:,}{missing}")
            if service in OUTBOXES:
                name = OUTBOXES[service][0]
                holders = [f"#{i}" for i in self.lease.get(service, [])]
                sent = "; ".join(f"#{i} {n:,}" for i, n in enumerate(self.outbox.get(service, [])))
                out.append(f"    {'':9} outbox {name}: lease taken by "
                           f"{', '.join(holders) or 'none logged'}; published {sent}")
        return out


def _short(partitions: list[str]) -> str:
    """`sen.accepted.v1 [0, 2]` for `<ns>sen.accepted.v1[0]`, `<ns>sen.accepted.v1[2]`."""
    by_topic: dict[str, list[str]] = defaultdict(list)
    for held in partitions:
        topic, partition = held.rstrip("]").rsplit("[", 1)
        by_topic[topic[topic.find("sen."):]].append(partition)
    return ", ".join(f"{t} [{', '.join(ps)}]" for t, ps in sorted(by_topic.items())) or "none"


def _count(line: dict[str, object], counted: dict[str, str | None]) -> int:
    """How many messages a log line says were handled (0: not such a line)."""
    event = str(line.get("event"))
    if event not in counted:
        return 0
    field_name = counted[event]
    return int(str(line.get(field_name, 1))) if field_name else 1


def read_shares(hub: Hub, instances: int, partitions: dict[str, dict[str, list[str]]]
                ) -> Shares:
    shares = Shares(partitions=partitions)
    for service in SERVICES:
        counted = WORK[service]
        shares.work[service] = []
        for i in range(instances):
            lines = service_log(LOGS / f"{service}-{hub.run}-{i}.log")
            shares.work[service].append(sum(_count(line, counted) for line in lines))
            if service in OUTBOXES:
                name, published, count = OUTBOXES[service]
                if any(line.get("event") == "outbox.lease_taken" and line.get("outbox") == name
                       for line in lines):
                    shares.lease.setdefault(service, []).append(i)
                shares.outbox.setdefault(service, []).append(
                    sum(int(line.get(count, 1)) if count else 1
                        for line in lines if line.get("event") == published))
    return shares


def one_hub(messages: list[tuple[bytes, bytes]], instances: int, base: HubSettings,
            partitions: int, timeout: float, packets_timeout: float) -> tuple[HubRun, Shares]:
    held: dict[str, dict[str, list[str]]] = {}
    got: list[Shares] = []

    def on_ready(hub: Hub) -> None:
        for service in SERVICES:
            held[service] = group_assignments(hub.base, hub.topics.group(service))

    def after(hub: Hub) -> None:
        got.append(read_shares(hub, instances, held))

    result = run_hub(messages, instances=instances, preload=False, base=base,
                     env={"SENDHUB_TOPIC_PARTITIONS": str(partitions),
                          "SENDHUB_LOG_LEVEL": "INFO"},
                     timeout=timeout, packets_timeout=packets_timeout, on_ready=on_ready,
                     after=after)
    return result, got[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds to wait for each hub's history (default 900)")
    parser.add_argument("--packets-timeout", type=float, default=300,
                        help="seconds to wait for the packets once the history is out")
    args = parser.parse_args()
    base = HubSettings(topic_partitions=args.partitions)
    rates: dict[int, list[float | None]] = defaultdict(list)
    packets: dict[int, list[float | None]] = defaultdict(list)
    ratios: list[float | None] = []
    lost = doubled = 0
    for run in range(args.runs):
        print(f"run {run + 1} of {args.runs}: generating {args.events:,} events", flush=True)
        messages = pupil_histories(args.events, PER_PUPIL, RECEIVERS)
        results: dict[int, tuple[HubRun, Shares]] = {}
        for instances in (1, 2):
            print(f"  [{instances} process{'es' if instances > 1 else ''} of each service]",
                  flush=True)
            results[instances] = one_hub(messages, instances, base, args.partitions,
                                         args.timeout, args.packets_timeout)
        for instances, (hub, shares) in results.items():
            rates[instances].append(hub.history_rate)
            packets[instances].append(hub.packets_seconds)
            lost += hub.events_missing + hub.pupils_without_packet
            doubled += hub.history_repeats + hub.packet_repeats + hub.pupils_with_two_packets
            rate = f"{hub.history_rate:,.0f} events/s" if hub.history_rate else "did not finish"
            print(f"run {run + 1}, {instances} each: {rate} to the history topic "
                  f"({seconds(hub.history_seconds)}), last packet "
                  f"{at(hub.packets_seconds)}", flush=True)
            print(f"  {hub.checks()}", flush=True)
            print(f"  {hub.logged_errors()}", flush=True)
            print("  shares:", flush=True)
            for line in shares.lines(args.events):
                print(line, flush=True)
        one, two = rates[1][-1], rates[2][-1]
        ratios.append(two / one if one and two else None)
        print(f"run {run + 1}: two / one = "
              f"{f'{ratios[-1]:.2f}x' if ratios[-1] else 'not measured (a hub did not finish)'}",
              flush=True)
    print(f"events per run: {args.events:,} ({args.events // PER_PUPIL:,} pupils x {PER_PUPIL}, "
          f"moves to {RECEIVERS} schools), {args.partitions} partitions a topic")
    print(medians("one process each, inbound -> sen.pupil-history.v1", rates[1], "events/s"))
    print(medians("two processes each, inbound -> sen.pupil-history.v1", rates[2], "events/s"))
    print(medians("one process each, time to the last packet", packets[1], "s"))
    print(medians("two processes each, time to the last packet", packets[2], "s"))
    done = [r for r in ratios if r is not None]
    print(f"two / one (per run): median {statistics.median(done):.2f}x "
          f"(runs: {', '.join(f'{r:.2f}' for r in done)})" if done
          else "two / one: no run where both hubs finished")
    print(f"lost over all runs and hubs: {lost} (history events or pupils' packets); doubled: "
          f"{doubled} (repeated history events or packets, pupils with two packets)")
    if lost or doubled:
        sys.exit(1)


if __name__ == "__main__":
    main()
