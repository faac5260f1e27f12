"""The fault suite's corpus and plan (faults/): seeded, and hostile where it claims to be."""

from __future__ import annotations

import json
import random

from contracts.receipts import PacketReceiptV1
from contracts.school_events import SCHOOL_EVENT
from faults import corpus, generated
from faults.plan import PROFILES, build_plan, plan_faults
from faults.workload import Seeded, steady_stream


def ids(seed: int = 5) -> Seeded:
    return Seeded(random.Random(seed))


def test_the_steady_stream_is_valid_and_each_pupils_story_ends_with_a_move() -> None:
    stream = steady_stream(ids(), 400)
    assert len(stream) >= 400
    last: dict[str, str | None] = {}
    for message, event in stream:
        assert corpus.contract_accepts(message.body)
        assert message.key == event.upn.encode()
        last[event.upn] = event.receiver
    assert all(receiver is not None for receiver in last.values())


def test_the_issues_cases_are_there_with_their_exact_bytes() -> None:
    groups = corpus.issue_cases(ids())
    by_name = {h.name: h for g in groups for h in g.hostile}
    assert by_name["brackets [*100000 ]*100000"].message.value == b"[" * 100_000 + b"]" * 100_000
    assert b'"schema_version": 1' + b"0" * 5000 + b"," in by_name[
        "schema_version 1 and 5000 zeros"].message.body
    ctf = by_name["<CTF/> with a JSON content type"].message
    assert (ctf.value, ctf.headers) == (b"<CTF/>", (("content-type", b"application/json"),))
    assert b"\\u0000" in by_name["NUL in a concern's summary"].message.body
    assert by_name["no value (tombstone)"].message.value is None
    assert by_name["packet over 1 MB (30 x 120 KB concerns)"].expect == "packet"
    conflict = next(g for g in groups if g.hostile and g.hostile[0].name.startswith("event_id re-used"))
    first, again = (json.loads(m.body) for m, role in conflict.messages[:2])
    assert first["event_id"] == again["event_id"] and first["payload"] != again["payload"]


def test_only_the_issue_cases_a_later_stage_must_catch_pass_the_contract() -> None:
    # NUL and non-ASCII or newline-ended identifiers used to pass the contract (issue 10,
    # findings 2-3); now it refuses them. The other two are caught downstream: records
    # (event_id_conflict) and transfers (the packet is condensed or undeliverable).
    passing = {h.name for g in corpus.issue_cases(ids()) for h in g.hostile
               if h.message.stream == "events" and corpus.contract_accepts(h.message.body)}
    assert passing == {"packet over 1 MB (30 x 120 KB concerns)",
                       "event_id re-used with other content"}


def test_the_oversize_case_builds_a_packet_over_the_brokers_limit() -> None:
    group = corpus.oversize_packet(ids())
    concerns = [m for m, role in group.messages if b"concern_raised" in m.body and role == "valid"]
    assert len(concerns) == 30
    assert all(110_000 < len(m.body) < 512 * 1024 for m in concerns)
    assert sum(len(json.loads(m.body)["payload"]["summary"].encode()) for m in concerns) > 1_048_576


def test_every_canary_follows_its_hostile_message_on_the_same_key() -> None:
    plan = build_plan(3, PROFILES["short"], 1)
    for group in plan.groups:
        hostile = [m for m, role in group.messages if role == "hostile"]
        canary = [m for m, role in group.messages if role == "canary"]
        assert canary and group.canary is not None
        assert {m.key for m in canary} == {(hostile or [group.messages[-3][0]])[-1].key}
        assert group.messages[-len(canary):] == [(m, "canary") for m in canary]


def test_every_generated_event_is_refused_by_the_contract() -> None:
    made = generated.generated_events(ids(), 150, at_seed=11)
    assert len(made) == 150
    for name, raw, _ in made:
        assert not corpus.contract_accepts(raw), name


def test_every_generated_receipt_is_refused_by_the_receipt_contract() -> None:
    for raw in generated.generated_receipts(ids(), 80, at_seed=11):
        try:
            PacketReceiptV1.model_validate_json(raw)
        except ValueError:
            continue
        raise AssertionError(f"accepted: {raw!r}")


def test_mutated_and_random_bytes_are_refused_by_the_contract() -> None:
    for group in corpus.mutated_cases(ids(), flips=20, truncations=10, randoms=5):
        (hostile,) = group.hostile
        assert not corpus.contract_accepts(hostile.message.body), hostile.name


def test_the_same_seed_builds_the_same_run_and_another_seed_another() -> None:
    def fingerprint(seed: int) -> list[bytes | None]:
        plan = build_plan(seed, PROFILES["short"], 2)
        return ([m.value for m, _ in plan.steady[:50]]
                + [m.value for g in plan.groups for m, _ in g.messages])

    assert fingerprint(4) == fingerprint(4)
    assert fingerprint(4) != fingerprint(5)
    assert build_plan(4, PROFILES["short"], 2).faults == build_plan(4, PROFILES["short"], 2).faults


def test_faults_fall_in_the_window_one_per_slot() -> None:
    profile = PROFILES["long"]
    faults = plan_faults(random.Random(1), profile, 2, frozenset({"kill", "broker", "postgres",
                                                                   "rebalance"}))
    assert len(faults) == profile.kills + profile.brokers + profile.postgres + profile.rebalances
    times = [f.at for f in faults]
    assert times == sorted(times)
    assert profile.first_fault_after <= times[0] and times[-1] <= (
        profile.stream_seconds - profile.quiet_tail)
    assert all(f.instance in (1, 2) for f in faults)
    assert {f.service for f in faults if f.kind in ("kill", "rebalance")} <= {
        "ingest", "records", "transfers"}
    assert not plan_faults(random.Random(1), profile, 1, frozenset())


def test_generated_mutations_touch_only_their_own_field() -> None:
    for event_type, mutation in generated.draw_examples(generated.event_mutations(), 40, 2):
        base = generated.TEMPLATES[event_type]
        changed = mutation.apply(base)
        before = {p for p, _ in generated.paths(base)}
        after = {p for p, _ in generated.paths(changed)}
        touched = {p for p in before ^ after} | {
            p for p in before & after if generated._get(base, p) != generated._get(changed, p)}
        assert all(p[:len(mutation.path)] == mutation.path or mutation.path[:len(p)] == p
                   for p in touched), (mutation, touched)
        SCHOOL_EVENT.validate_python(base)
