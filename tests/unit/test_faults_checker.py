"""The fault suite's checker and recovery times (faults/), on made-up observations."""

from __future__ import annotations

import json

import pytest

from faults.checker import Expected, check, event_ids_in, failures
from faults.model import Canary, Fault, Hostile, Message, ValidEvent
from faults.observe import DeadLetter, HistoryCopy, Observed, PacketCopy
from faults.recovery import lane_recovery, recoveries

A, B = "A801000000001", "B801000000002"


def events() -> dict[str, list[ValidEvent]]:
    return {A: [ValidEvent(A, "a1"), ValidEvent(A, "a2"), ValidEvent(A, "a3", "urn-100002")],
            B: [ValidEvent(B, "b1"), ValidEvent(B, "b2", "urn-100003")]}


def expected(hostile: list[Hostile] | None = None, canaries: list[Canary] | None = None) -> Expected:
    pupils = events()
    moves = [e for es in pupils.values() for e in es if e.receiver]
    return Expected(pupils, moves, hostile or [], canaries or [], {b"valid-a1"})


def all_well() -> Observed:
    o = Observed()
    for upn, es in events().items():
        o.stored[upn] = [(n, e.event_id) for n, e in enumerate(es, start=1)]
        o.projected[upn] = list(range(1, len(es) + 1))
        for n, e in enumerate(es, start=1):
            o.history.append(HistoryCopy(upn, n, e.event_id, 1_000 * n, 0))
    o.packets = [PacketCopy("p-a", A, "a3", "urn-100002", None, 5_000, 900),
                 PacketCopy("p-b", B, "b2", "urn-100003", None, 5_000, 900)]
    return o


def test_nothing_lost_or_doubled_passes() -> None:
    outcome = check(expected(), all_well(), [])
    assert (sum(outcome.lost.values()), sum(outcome.doubled.values()), outcome.misordered) == (0, 0, 0)
    assert outcome.valid_events == 5
    assert failures(outcome, fail_on_duplicates=True) == []


def test_an_event_not_stored_and_a_version_not_relayed_or_projected_are_lost() -> None:
    o = all_well()
    o.stored[A] = o.stored[A][:2]
    o.projected[B] = [1]
    o.history = [h for h in o.history if (h.upn, h.version) != (B, 1)]
    outcome = check(expected(), o, [])
    assert +outcome.lost == {"not stored": 1, "not relayed": 1, "not projected": 1}


def test_an_event_stored_twice_is_doubled_and_a_swap_is_misordered() -> None:
    o = all_well()
    o.stored[A] = [(1, "a1"), (2, "a1"), (3, "a2"), (4, "a3")]
    o.stored[B] = [(1, "b2"), (2, "b1")]
    outcome = check(expected(), o, [])
    assert outcome.doubled["stored twice"] == 1
    assert outcome.misordered == 1


def test_a_move_with_no_packet_is_lost_and_with_two_packet_ids_doubled() -> None:
    o = all_well()
    o.packets = [PacketCopy("p-a", A, "a3", "urn-100002", None, 5_000, 900),
                 PacketCopy("p-a2", A, "a3", "urn-100002", None, 5_100, 900)]
    outcome = check(expected(), o, [])
    assert outcome.lost["no packet"] == 1
    assert outcome.doubled["two packets for one move"] == 1
    assert outcome.dup_packets == 0


def test_duplicate_publishes_are_counted_apart_and_those_around_a_crash_separately() -> None:
    o = all_well()
    o.packets.append(PacketCopy("p-a", A, "a3", "urn-100002", None, 9_000, 900))  # after a crash
    o.packets.append(PacketCopy("p-b", B, "b2", "urn-100003", None, 5_001, 900))  # two publishers
    o.history.append(HistoryCopy(A, 1, "a1", 1_050, 0))
    crash = Fault("kill", "transfers", at=6.0)
    outcome = check(expected(), o, [crash])
    assert (outcome.dup_packets, outcome.dup_packets_after_crash) == (2, 1)
    assert (outcome.dup_history, outcome.dup_history_after_crash) == (1, 0)
    assert sum(outcome.doubled.values()) == 0
    assert failures(outcome, fail_on_duplicates=False) == []
    assert failures(outcome, fail_on_duplicates=True) == [
        "2 duplicate publishes not explained by a crash"]
    assert [what for what, _ in outcome.unexplained] == ["packet p-b", f"history {A} v1"]
    assert all(len(times) == 2 and times == sorted(times) for _, times in outcome.unexplained)


def test_a_rebalance_does_not_explain_a_duplicate_publish() -> None:
    o = all_well()
    o.packets.append(PacketCopy("p-a", A, "a3", "urn-100002", None, 9_000, 900))
    outcome = check(expected(), o, [Fault("rebalance join", "transfers", at=6.0)])
    assert (outcome.dup_packets, outcome.dup_packets_after_crash) == (1, 0)


def hostile(name: str, body: bytes, marker: bytes | None = None) -> Hostile:
    return Hostile(name, "issue", Message("events", b"k", body), marker)


def test_hostile_messages_are_matched_by_bytes_or_by_marker_downstream() -> None:
    o = all_well()
    nul = json.dumps({"event": {"event_id": "nul-1"}}).encode()
    o.dead_letters = [DeadLetter("not_json", "ingest", "ns.sen.school-events.v1", b"<CTF/>", ""),
                      DeadLetter("internal_error", "transfers", "ns.sen.pupil-history.v1", nul, "")]
    cases = [hostile("ctf", b"<CTF/>"), hostile("nul", b"{...}", marker=b"nul-1"),
             hostile("lost", b"[[[")]
    outcome = check(expected(cases), o, [])
    fates = {h.name: (fate, ok) for h, fate, ok in outcome.hostile}
    assert fates == {"ctf": ("ingest: not_json", True), "nul": ("transfers: internal_error", True),
                     "lost": ("not dead-lettered", False)}
    assert outcome.valid_rejected == []


def test_a_valid_message_dead_lettered_is_reported_unless_a_hostile_one_claims_it() -> None:
    o = all_well()
    conflict = json.dumps({"event": {"event_id": "b1", "payload": {"summary": "correction 7"}}})
    o.dead_letters = [DeadLetter("schema_invalid", "ingest", "t", b"valid-a1", ""),
                      DeadLetter("event_id_conflict", "records", "t", conflict.encode(), ""),
                      DeadLetter("internal_error", "transfers", "t",
                                 json.dumps({"event": {"event_id": "b2"}}).encode(), "")]
    outcome = check(expected([hostile("conflict", b"x", marker=b"correction 7")]), o, [])
    assert len(outcome.valid_rejected) == 2
    assert outcome.hostile_handled == 1


def test_the_packet_over_the_limit_is_handled_when_it_fits_or_is_refused() -> None:
    big = Hostile("big", "issue", Message("events", b"k", b"move"), expect="packet",
                  move_event_id="m-big")
    o = all_well()
    o.packet_rows = {"p-big": (A, "m-big", False)}
    o.deliveries = {"p-big": [("pending", "")]}
    assert check(expected([big]), o, []).hostile[0][1:] == ("packet pending", False)
    o.deliveries["p-big"].append(("undeliverable", "1.2 MB is over the limit"))
    assert check(expected([big]), o, []).hostile[0][2] is True
    o.packets.append(PacketCopy("p-big", A, "m-big", "urn-100004", None, 7_000, 600_000))
    assert check(expected([big]), o, []).hostile[0][1:] == ("delivered, 0.60 MB", True)


def test_canaries_are_delivered_by_a_packet_or_a_recorded_receipt() -> None:
    o = all_well()
    o.deliveries = {"p-a": [("pending", ""), ("sent", ""), ("received", "")]}
    canaries = [Canary("after x", B, move_event_id="b2"), Canary("after y", "", packet_id="p-a"),
                Canary("after z", "C", move_event_id="never"), Canary("r", "", packet_id="p-b")]
    outcome = check(expected(canaries=canaries), o, [])
    assert [ok for _, ok in outcome.canaries] == [True, True, False, False]
    assert "2 canaries not delivered" in failures(outcome, False)


def test_event_ids_are_found_at_any_depth_and_unreadable_bytes_have_none() -> None:
    assert event_ids_in(b'{"event": {"event_id": "x"}, "event_id": "y"}') == {"x", "y"}
    assert event_ids_in(b"[" * 100_000 + b"]" * 100_000) == set()
    assert event_ids_in(b"\xff") == set()


@pytest.mark.parametrize(("times", "expected_seconds"), [
    ([1.0, 1.1, 1.2, 1.3, 1.4], 0.1),  # no pause: the next record
    ([1.0, 1.1, 9.1, 9.2], 8.0),  # the pause under way at the fault
    ([1.0, 1.3, 1.5, 8.5, 8.6], 7.4),  # in-flight work first, then the pause
    ([1.0, 1.1, 1.2, 1.3, 20.0], 18.9),
    ([1.0, 1.1], None),  # never again
])
def test_a_lanes_recovery_is_the_end_of_the_pause_after_the_fault(
        times: list[float], expected_seconds: float | None) -> None:
    seconds = lane_recovery(times, 1.1)
    assert seconds == (pytest.approx(expected_seconds) if expected_seconds is not None else None)


def test_a_pause_starting_well_after_the_fault_is_not_its_doing() -> None:
    times = [1.0 + 0.1 * n for n in range(100)] + [30.0]
    assert lane_recovery(times, 1.05) == pytest.approx(0.05)


def test_a_fault_recovers_when_its_slowest_lane_does_and_other_stages_do_not_count() -> None:
    progress = [("records", lane, int(1000 * t)) for lane in (0, 1) for t in (9.0, 9.5, 10.0)]
    progress += [("records", 0, 11_000), ("records", 1, 16_000), ("ingest", 0, 30_000)]
    progress += [("transfers", 2, 1_000)]  # idle before the fault: not measured
    (kill,) = recoveries([Fault("kill", "records", at=10.2)], progress)
    assert (kill.seconds, kill.status) == (5.8, "recovered")
    (stalled,) = recoveries([Fault("kill", "transfers", at=10.2)], progress)
    assert stalled.status == "nothing moving"
    (broker,) = recoveries([Fault("broker", None, at=10.2)], progress + [("ingest", 0, 10_000)])
    assert broker.seconds == 19.8


def test_a_lane_silent_after_a_fault_past_the_streams_end_had_nothing_left() -> None:
    progress = [("records", 0, int(1000 * t)) for t in (9.0, 9.5, 10.0)]
    (during,) = recoveries([Fault("kill", "records", at=10.2)], progress, stream_ended=12.0)
    assert (during.status, during.stuck) == ("not recovered", 1)
    (after,) = recoveries([Fault("kill", "records", at=12.5)], progress + [
        ("records", 0, 12_400)], stream_ended=12.0)
    assert (after.status, after.seconds, after.stuck) == ("nothing left", None, 0)


def test_a_recovery_still_under_way_at_the_next_fault_is_a_lower_bound() -> None:
    progress = [("ingest", 0, int(1000 * t)) for t in (9.0, 9.5, 10.0, 30.0, 30.1)]
    first, second = recoveries([Fault("kill", "ingest", at=10.2), Fault("broker", None, at=14.2)],
                               progress)
    assert (first.seconds, first.status) == (4.0, "overlapped")
    assert (second.seconds, second.status) == (15.8, "recovered")


def test_only_a_later_fault_on_the_same_stages_bounds_a_recovery() -> None:
    progress = [("ingest", 0, int(1000 * t)) for t in (9.0, 9.5, 10.0, 30.0, 30.1)]
    (kill, _) = recoveries([Fault("kill", "ingest", at=10.2), Fault("postgres", None, at=14.2)],
                           progress)
    assert (kill.seconds, kill.status) == (19.8, "recovered")
