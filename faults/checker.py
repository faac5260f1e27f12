"""The checker: what was sent against what the hub did. Pure: no I/O.

- every valid event exactly once in its pupil's stored history, in the order sent, with
  versions 1..n; each stored version relayed to the history topic and projected by
  transfers (anything missing is *lost*; anything twice is *doubled*);
- one packet per move (no packet: lost; two packet ids for one move: doubled);
- *duplicate publishes*, apart from doubled effects: the same packet id, or the same
  (pupil, version) of history, on its topic more than once; those whose copies straddle
  a crash of the publishing service (kill -9, broker, database) are counted apart, since
  at-least-once allows them;
- nothing valid dead-lettered; every hostile message dead-lettered with its bytes (or,
  for one that passes ingest, by a later stage: a dead letter holding its marker), or
  for the packet over 1 MB, what became of it; every canary delivered.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from faults.model import Canary, Fault, Hostile, Message, ValidEvent
from faults.observe import DeadLetter, Observed, PacketCopy
from faults.plan import Plan

BROKER_LIMIT = 1_048_576  # bytes: Kafka's default largest message


@dataclass
class Expected:
    pupils: dict[str, list[ValidEvent]]
    moves: list[ValidEvent]
    hostile: list[Hostile]
    canaries: list[Canary]
    valid_bodies: set[bytes]
    unpublished: int = 0  # messages the publisher could not send (left out of the checks)


def expected_from(plan: Plan, failed: set[Message], sent_groups: set[int] | None = None) -> Expected:
    """What must come out, from what was sent: a pupil or group with any message the
    broker never acknowledged is left out, and so is a group never sent."""
    bad_pupils = {v.upn for m, v in plan.steady if m in failed}
    expected = Expected({}, [], [], [], set(), unpublished=len(failed))
    packet_moves = set()
    groups = [g for n, g in enumerate(plan.groups) if sent_groups is None or n in sent_groups]
    valid: list[tuple[Message | None, ValidEvent]] = [
        (m, v) for m, v in plan.steady if v.upn not in bad_pupils]
    for group in groups:
        if any(m in failed for m, _ in group.messages):
            continue
        valid += [(None, v) for v in group.valid]
        expected.valid_bodies |= {m.body for m, role in group.messages if role != "hostile"}
        expected.hostile += group.hostile
        expected.canaries += [group.canary] if group.canary else []
        packet_moves |= {h.move_event_id for h in group.hostile if h.expect == "packet"}
    for message, event in valid:
        expected.pupils.setdefault(event.upn, []).append(event)
        if message is not None:
            expected.valid_bodies.add(message.body)
        if event.receiver and event.event_id not in packet_moves:
            expected.moves.append(event)
    return expected


@dataclass
class Outcome:
    valid_events: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    doubled: Counter[str] = field(default_factory=Counter)
    misordered: int = 0
    dup_packets: int = 0
    dup_packets_after_crash: int = 0
    dup_history: int = 0
    dup_history_after_crash: int = 0
    unexplained: list[tuple[str, list[int]]] = field(default_factory=list)
    """Duplicates no crash explains: what was copied, and when each copy was published."""
    valid_rejected: list[str] = field(default_factory=list)
    hostile: list[tuple[Hostile, str, bool]] = field(default_factory=list)
    canaries: list[tuple[Canary, bool]] = field(default_factory=list)
    amendments: int = 0

    @property
    def hostile_handled(self) -> int:
        return sum(ok for _, _, ok in self.hostile)

    @property
    def canaries_delivered(self) -> int:
        return sum(ok for _, ok in self.canaries)


def event_ids_in(original: bytes) -> set[str]:
    """Every `event_id` value inside a dead letter's original message, at any depth."""
    try:
        document = json.loads(original)
    except Exception:
        return set()
    found: set[str] = set()
    stack: list[Any] = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("event_id"), str):
                found.add(item["event_id"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def check_histories(expected: Expected, observed: Observed, outcome: Outcome) -> None:
    relayed: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for copy in observed.history:
        relayed[copy.upn][copy.version].add(copy.event_id)
    for upn, events in expected.pupils.items():
        outcome.valid_events += len(events)
        stored = observed.stored.get(upn, [])
        ids = [event_id for _, event_id in stored]
        versions = [v for v, _ in stored]
        outcome.lost["not stored"] += sum(e.event_id not in ids for e in events)
        outcome.lost["version gap"] += len(set(range(1, len(stored) + 1)) - set(versions))
        outcome.doubled["stored twice"] += len(ids) - len(set(ids))
        wanted = [e.event_id for e in events]
        wanted_set = set(wanted)
        kept = list(dict.fromkeys(i for i in ids if i in wanted_set))
        kept_set = set(kept)
        outcome.misordered += kept != [i for i in wanted if i in kept_set]
        outcome.lost["not relayed"] += sum(v not in relayed[upn] for v in versions)
        outcome.doubled["one version, two events"] += sum(len(relayed[upn][v]) > 1 for v in versions)
        outcome.lost["not projected"] += len(set(versions) - set(observed.projected.get(upn, [])))


def crash_between(faults: list[Fault], service: str, first_ms: int, last_ms: int) -> bool:
    return any(service in f.crash_of and first_ms / 1000 - 1 <= f.at <= last_ms / 1000
               for f in faults)


def check_packets(expected: Expected, observed: Observed, faults: list[Fault],
                  outcome: Outcome) -> None:
    firsts: dict[str, set[str]] = defaultdict(set)
    copies: dict[str, list[PacketCopy]] = defaultdict(list)
    for packet in observed.packets:
        copies[packet.packet_id].append(packet)
        if packet.supersedes is None:
            firsts[packet.move_event_id].add(packet.packet_id)
        else:
            outcome.amendments += 1
    for move in expected.moves:
        found = len(firsts.get(move.event_id, ()))
        outcome.lost["no packet"] += found == 0
        outcome.doubled["two packets for one move"] += max(0, found - 1)
    for same in copies.values():
        if len(same) > 1:
            times = [p.ts_ms for p in same]
            outcome.dup_packets += len(same) - 1
            if crash_between(faults, "transfers", min(times), max(times)):
                outcome.dup_packets_after_crash += len(same) - 1
            else:
                outcome.unexplained.append((f"packet {same[0].packet_id}", sorted(times)))
    by_version: dict[tuple[str, int], list[int]] = defaultdict(list)
    for copy in observed.history:
        by_version[(copy.upn, copy.version)].append(copy.ts_ms)
    for (upn, version), times in by_version.items():
        if len(times) > 1:
            outcome.dup_history += len(times) - 1
            if crash_between(faults, "records", min(times), max(times)):
                outcome.dup_history_after_crash += len(times) - 1
            else:
                outcome.unexplained.append((f"history {upn} v{version}", sorted(times)))


def letters_for(hostile: Hostile, letters: Iterable[DeadLetter],
                by_bytes: dict[bytes, list[DeadLetter]]) -> list[DeadLetter]:
    found = list(by_bytes.get(hostile.message.body, []))
    if hostile.marker:
        found += [d for d in letters if hostile.marker in d.original and d not in found]
    return found


def packet_fate(hostile: Hostile, observed: Observed) -> tuple[str, bool]:
    """What became of the packet over the broker's limit: fits, refused, or stuck."""
    sent = [p for p in observed.packets if p.move_event_id == hostile.move_event_id]
    if sent:
        largest = max(p.size for p in sent)
        return f"delivered, {largest / 1e6:.2f} MB", largest <= BROKER_LIMIT
    rows = [pid for pid, (_, move, _) in observed.packet_rows.items() if move == hostile.move_event_id]
    if not rows:
        return "no packet built", False
    states = observed.deliveries.get(rows[0], [])
    state, detail = states[-1] if states else ("no delivery state", "")
    refused = state not in ("pending", "sent", "no delivery state")
    return f"packet {state}{': ' + detail[:60] if detail else ''}", refused


def check_dead_letters(expected: Expected, observed: Observed, outcome: Outcome) -> None:
    by_bytes: dict[bytes, list[DeadLetter]] = defaultdict(list)
    for letter in observed.dead_letters:
        by_bytes[letter.original].append(letter)
    claimed: set[int] = set()
    for hostile in expected.hostile:
        letters = letters_for(hostile, observed.dead_letters, by_bytes)
        claimed |= {id(d) for d in letters}
        if letters:
            fate = ", ".join(sorted({f"{d.service}: {d.reason}" for d in letters}))
            outcome.hostile.append((hostile, fate, True))
        elif hostile.expect == "packet":
            outcome.hostile.append((hostile, *packet_fate(hostile, observed)))
        else:
            outcome.hostile.append((hostile, "not dead-lettered", False))
    valid_ids = {e.event_id for events in expected.pupils.values() for e in events}
    for letter in observed.dead_letters:
        if id(letter) in claimed:
            continue
        if letter.original in expected.valid_bodies or event_ids_in(letter.original) & valid_ids:
            outcome.valid_rejected.append(f"{letter.service}: {letter.reason} ({letter.problems[:80]})")


def check_canaries(expected: Expected, observed: Observed, outcome: Outcome) -> None:
    moved = {p.move_event_id for p in observed.packets}
    for canary in expected.canaries:
        if canary.packet_id is not None:
            states = {s for s, _ in observed.deliveries.get(canary.packet_id, [])}
            outcome.canaries.append((canary, "received" in states))
        else:
            outcome.canaries.append((canary, canary.move_event_id in moved))


def check(expected: Expected, observed: Observed, faults: list[Fault]) -> Outcome:
    outcome = Outcome()
    check_histories(expected, observed, outcome)
    check_packets(expected, observed, faults, outcome)
    check_dead_letters(expected, observed, outcome)
    check_canaries(expected, observed, outcome)
    return outcome


def failures(outcome: Outcome, fail_on_duplicates: bool) -> list[str]:
    """Why the phase fails; empty when it passes."""
    why = []
    if sum(outcome.lost.values()):
        why.append(f"lost {sum(outcome.lost.values())}")
    if sum(outcome.doubled.values()):
        why.append(f"doubled {sum(outcome.doubled.values())}")
    if outcome.misordered:
        why.append(f"{outcome.misordered} pupils' histories out of order")
    if outcome.valid_rejected:
        why.append(f"{len(outcome.valid_rejected)} valid messages dead-lettered")
    if outcome.hostile_handled < len(outcome.hostile):
        why.append(f"{len(outcome.hostile) - outcome.hostile_handled} hostile messages not handled")
    if outcome.canaries_delivered < len(outcome.canaries):
        why.append(f"{len(outcome.canaries) - outcome.canaries_delivered} canaries not delivered")
    unexplained = (outcome.dup_packets - outcome.dup_packets_after_crash
                   + outcome.dup_history - outcome.dup_history_after_crash)
    if fail_on_duplicates and unexplained:
        why.append(f"{unexplained} duplicate publishes not explained by a crash")
    return why
