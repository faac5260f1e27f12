"""A run's plan, all from one seed: the steady stream, the hostile groups and when
each is sent, and the faults with their moments and targets. Pure: no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from uuid import UUID

from faults import corpus, generated
from faults.model import Group, Message, ValidEvent
from faults.workload import Seeded, steady_stream
from services.transfers.packets import packet_id_for


@dataclass(frozen=True)
class Profile:
    name: str
    stream_seconds: float
    rate: float  # steady events per second
    kills: int
    brokers: int
    postgres: int
    rebalances: int
    generated_events: int
    generated_receipts: int
    flips: int
    truncations: int
    randoms: int
    drain_seconds: float
    first_fault_after: float = 6.0
    quiet_tail: float = 12.0  # no fault starts in the stream's last seconds


PROFILES = {
    "short": Profile("short", stream_seconds=60, rate=100, kills=1, brokers=1, postgres=1,
                     rebalances=1, generated_events=12, generated_receipts=2, flips=3,
                     truncations=2, randoms=3, drain_seconds=120),
    "long": Profile("long", stream_seconds=300, rate=120, kills=8, brokers=2, postgres=2,
                    rebalances=2, generated_events=100, generated_receipts=10, flips=20,
                    truncations=10, randoms=15, drain_seconds=180),
}


@dataclass(frozen=True)
class PlannedFault:
    at: float  # seconds after the stream starts
    kind: str  # kill, broker, postgres, rebalance
    service: str | None = None
    instance: int = 1
    hold: float = 0.0  # rebalance: how long the extra instance stays


@dataclass(frozen=True)
class Plan:
    seed: int
    profile: Profile
    instances: int
    steady: list[tuple[Message, ValidEvent]]
    groups: list[Group]
    faults: list[PlannedFault]


def plan_faults(rng: random.Random, profile: Profile, instances: int,
                kinds: frozenset[str]) -> list[PlannedFault]:
    """One fault per slot of the fault window, at a random moment in the slot's first
    quarter, so each has most of its slot to recover in; kinds in a seeded order."""
    wanted = (["kill"] * profile.kills + ["broker"] * profile.brokers
              + ["postgres"] * profile.postgres + ["rebalance"] * profile.rebalances)
    chosen = [k for k in wanted if k in kinds]
    rng.shuffle(chosen)
    if not chosen:
        return []
    start, end = profile.first_fault_after, profile.stream_seconds - profile.quiet_tail
    slot = (end - start) / len(chosen)
    faults = []
    for n, kind in enumerate(chosen):
        at = start + n * slot + rng.uniform(0, 0.25 * slot)
        service = rng.choice(("ingest", "records", "transfers")) if kind in (
            "kill", "rebalance") else None
        faults.append(PlannedFault(round(at, 2), kind, service, rng.randint(1, instances),
                                   hold=round(rng.uniform(0.35, 0.5) * slot, 2)))
    return faults


def early_packets(steady: list[tuple[Message, ValidEvent]], count: int) -> list[tuple[str, str]]:
    """(packet_id, receiver) of the first moves in the stream: receipts acknowledge them."""
    moves = [v for _, v in steady if v.receiver is not None][:count]
    return [(str(packet_id_for(v.upn, UUID(v.event_id))), v.receiver or "") for v in moves]


def build_plan(seed: int, profile: Profile, instances: int,
               kinds: frozenset[str] = frozenset({"kill", "broker", "postgres", "rebalance"}),
               hostile: bool = True) -> Plan:
    ids = Seeded(random.Random(seed))
    steady = steady_stream(ids, int(profile.stream_seconds * profile.rate))
    groups: list[Group] = []
    if hostile:
        groups = corpus.issue_cases(ids)
        for name, raw, upn in generated.generated_events(ids, profile.generated_events, seed):
            groups.append(corpus.single(ids, name, "hypothesis", raw, key=upn.encode()))
        groups += corpus.mutated_cases(ids, profile.flips, profile.truncations, profile.randoms)
    times = random.Random(f"{seed}/times")
    last = profile.stream_seconds - 10
    for group in groups:
        group.at = round(times.uniform(2, last), 2)
    if hostile:
        receipts = corpus.receipt_cases(ids, early_packets(steady, 20), generated.generated_receipts(
            ids, profile.generated_receipts, seed))
        for group in receipts:
            group.at = round(times.uniform(profile.stream_seconds / 2, last), 2)
        groups += receipts
    faults = plan_faults(random.Random(f"{seed}/faults/{instances}"), profile, instances, kinds)
    return Plan(seed, profile, instances, steady, sorted(groups, key=lambda g: g.at), faults)
