"""The hash chain, replay on both time axes (in memory), and the statutory measures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.inbound import INBOUND_EVENT
from contracts.school_events import SCHOOL_EVENT
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.chain import first_break
from services.records.domain import GENESIS_HASH, SENHistoryEvent, chain_hash
from services.records.handlers import to_school_event_record
from services.records.replay import as_known_at, as_of
from services.shared.clocks import LocalPolicy
from services.shared.sen_record import HistoryEntry
from services.shared.statutory import (
    concern_to_assessment,
    ehc_annual_reviews,
    ehc_request_to_plan,
    plan_gaps,
    reviews_against_due_dates,
)
from tests.factories import la_event, school_event

UPN = "H801200001001"


def accepted(event: dict[str, Any]) -> AcceptedSchoolEventV1:
    return AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=SCHOOL_EVENT.validate_python(event))


def recorded(*events: dict[str, Any]) -> tuple[RecordsApplication, list[SENHistoryEvent]]:
    app = RecordsApplication()
    for n, e in enumerate(events):
        app.record_school_events([(to_school_event_record(accepted(e)),
                                   ConsumedPosition("t", 0, n))])
    return app, app.history_events(UPN)


def test_each_event_links_to_the_hash_of_the_one_before() -> None:
    _, events = recorded(school_event(), school_event("assessment_completed"),
                         school_event("plan_reviewed"))
    assert events[0].previous_hash == GENESIS_HASH
    assert [e.previous_hash for e in events[1:]] == [e.event_hash for e in events[:-1]]
    assert all(chain_hash(e) == e.event_hash for e in events)
    assert first_break(events[0].originator_id, [(e.originator_version, e) for e in events]) is None


def test_altered_deleted_and_reordered_events_are_located() -> None:
    _, events = recorded(school_event(), school_event("assessment_completed"),
                         school_event("plan_reviewed"), school_event("pupil_moved"))
    pid = events[0].originator_id
    stored = [(e.originator_version, e) for e in events]

    altered = list(stored)
    e2 = events[1]
    altered[1] = (2, replace(e2, school_event={**e2.school_event, "payload": {
        **e2.school_event["payload"], "summary": "Nothing found."}}))
    found = first_break(pid, altered)  # type: ignore[arg-type]
    assert found and found.version == 2 and "content was altered" in found.problem

    deleted = [s for s in stored if s[0] != 3]
    found = first_break(pid, deleted)  # type: ignore[arg-type]
    assert found and found.version == 3 and "missing" in found.problem

    # Swap the content of versions 2 and 3 (the rows keep their version numbers).
    swapped = [(1, events[0]), (2, replace(events[2], originator_version=2)),
               (3, replace(events[1], originator_version=3)), (4, events[3])]
    found = first_break(pid, swapped)  # type: ignore[arg-type]
    assert found and found.version == 2 and "reordered" in found.problem

    unreadable = [(1, events[0]), (2, "JSONDecodeError: Expecting value")]
    found = first_break(pid, unreadable)
    assert found and found.version == 2 and "cannot be read" in found.problem


def test_replay_as_known_at_leaves_out_later_entries_and_as_of_leaves_out_later_events() -> None:
    app, _ = recorded(school_event(occurred_at="2025-01-10T09:00:00+00:00"),
                      school_event("plan_reviewed", occurred_at="2025-06-01T09:00:00+01:00"))
    between = datetime.now(UTC)
    # A late entry, recorded now, about something that happened in March.
    app.record_school_events([(to_school_event_record(accepted(school_event(
        "assessment_completed", occurred_at="2025-03-01T10:00:00+00:00"))),
        ConsumedPosition("t", 0, 9))])
    known_then = app.replay(UPN, known_at=between)
    assert [type(e).__name__ for e in known_then] == ["ConcernRaised", "PlanReviewed"]
    as_of_april = app.replay(UPN, as_of_day=date(2025, 4, 1))
    assert [type(e).__name__ for e in as_of_april] == ["ConcernRaised", "AssessmentCompleted"]
    assert app.replay(UPN, known_at=between - timedelta(days=400)) == []


def test_the_replay_projectors_carry_on_from_a_state_and_keep_recording_order() -> None:
    _, events = recorded(school_event(occurred_at="2025-01-10T09:00:00+00:00"),
                         school_event("plan_reviewed", occurred_at="2025-06-01T09:00:00+01:00"),
                         school_event("assessment_completed",
                                      occurred_at="2025-03-01T10:00:00+00:00"))
    by_april = as_of(date(2025, 4, 1))
    whole = by_april(None, events)
    assert whole and [e.originator_version for e in whole.events] == [1, 3]
    # Given in two parts (a state, then the rest), the same events in the same order.
    assert by_april(by_april(None, events[:1]), events[1:]) == whole
    # A pupil with events, none of them by that day: a history with nothing in it.
    nothing = as_of(date(2024, 1, 1))(None, events)
    assert nothing is not None and nothing.events == () and nothing.pupil_id == whole.pupil_id
    assert as_of(date(2025, 4, 1))(None, []) is None
    # Recording time: a prefix, however it is given.
    until_second = as_known_at(events[1].timestamp)
    assert [e.originator_version for e in until_second(until_second(None, events[:1]),
                                                       events[1:]).events] == [1, 2]
    assert as_known_at(events[0].timestamp - timedelta(seconds=1))(None, events) is None


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return [HistoryEntry(upn=UPN, version=i, recorded_at=datetime.now(UTC),
                                upn_is_temporary=False, event=INBOUND_EVENT.validate_python(e))
            for i, e in enumerate(events, start=1)]


def assessment(when: str, outcome: str, kind: str = "screening") -> dict[str, Any]:
    needs = [] if outcome == "no_sen" else [{"code": "SLCN", "rank": 1}]
    return school_event("assessment_completed", occurred_at=when, payload={
        "assessor_role": "senco", "assessment_kind": kind, "identified_needs": needs,
        "outcome": outcome, "summary": "x"})


def test_ehc_request_to_plan_runs_from_the_las_receipt_of_the_request() -> None:
    # A school's own request to the plan it reports: measured, with no statutory limit
    # applied (the 20 weeks run from the LA receiving the request, which nobody recorded).
    h = history(assessment("2022-01-18T11:00:00+00:00", "request_ehc_needs_assessment"),
                assessment("2022-07-05T11:00:00+01:00", "ehc_plan_issued", "ehc_needs_assessment"))
    (interval,) = ehc_request_to_plan(h)
    assert interval.length(date(2026, 1, 1)).days == 168 and not interval.overdue(date(2026, 1, 1))
    assert interval.limit is None and "no LA has recorded" in interval.limit_basis
    # The LA's record: 20 weeks from the day it received the request (the 20-week clock).
    received = la_event("ehc_request_received", occurred_at="2022-01-24T09:00:00+00:00",
                        payload={"received_on": "2022-01-24"})
    issued = la_event("ehc_plan_issued", occurred_at="2022-07-05T09:00:00+01:00",
                      payload={"issued_on": "2022-07-05"})
    (statutory,) = ehc_request_to_plan(history(received, issued))
    assert (statutory.start, statutory.limit) == (date(2022, 1, 24), timedelta(weeks=20))
    assert statutory.overdue(date(2026, 1, 1)) and "reg. 13(2)" in statutory.limit_basis
    (waiting,) = ehc_request_to_plan(history(received))
    assert waiting.still_open and waiting.overdue(date(2022, 6, 14))
    assert not waiting.overdue(date(2022, 6, 13))
    # A request the LA declined is never overdue.
    (declined,) = ehc_request_to_plan(history(received, la_event(
        "ehc_assessment_decision", occurred_at="2022-03-01T09:00:00+00:00",
        payload={"decided_on": "2022-03-01", "decision": "not_assess"})))
    assert declined.limit is None and not declined.overdue(date(2026, 1, 1))


def test_ehc_annual_reviews_follow_the_12_month_clock() -> None:
    issued = la_event("ehc_plan_issued", occurred_at="2024-03-04T09:00:00+00:00",
                      payload={"issued_on": "2024-03-04"})
    reviewed = la_event("ehc_annual_review", occurred_at="2025-03-10T09:00:00+00:00",
                        payload={"held_on": "2025-03-10"})
    first, second = ehc_annual_reviews(history(issued, reviewed))
    assert (first.start, first.end, first.overdue(date(2026, 1, 1))) == (
        date(2024, 3, 4), date(2025, 3, 10), True)  # due 4 March 2025
    assert second.still_open and not second.overdue(date(2026, 3, 10))
    assert second.overdue(date(2026, 3, 11))
    # No LA connected: the school's EHC plan review against the same 12 months.
    school_review = school_event("plan_reviewed", occurred_at="2023-06-20T14:00:00+01:00",
                                 payload={**school_event("plan_reviewed")["payload"],
                                          "plan_kind": "ehc_plan"})
    (reported,) = ehc_annual_reviews(history(school_review))
    assert reported.still_open and reported.overdue(date(2024, 6, 21))
    assert not reported.overdue(date(2024, 6, 20))


def test_concerns_reviews_and_gaps_are_measured() -> None:
    concern = school_event(occurred_at="2025-01-06T09:00:00+00:00")
    found = assessment("2025-03-31T09:00:00+01:00", "sen_support")
    review = school_event("plan_reviewed", occurred_at="2025-05-12T16:00:00+01:00")  # due 2025-06-01
    late_review = school_event("plan_reviewed", occurred_at="2025-07-10T16:00:00+01:00")
    h = history(concern, found, review, late_review)
    # Measured, with no statutory limit: never overdue unless a local policy sets one
    # (it used to be "overdue" against an unsourced 6-week guide).
    (c,) = concern_to_assessment(h)
    assert c.end == date(2025, 3, 31) and not c.overdue(date(2026, 1, 1))
    assert c.limit_basis == "measured, no statutory limit"
    (c,) = concern_to_assessment(h, LocalPolicy(concern_open_weeks=6))
    assert c.overdue(date(2026, 1, 1)) and "local policy" in c.limit_basis  # 12 weeks > 6
    due = [r for r in reviews_against_due_dates(h) if r.start == date(2025, 5, 12)]
    assert due[0].end == date(2025, 7, 10) and due[0].overdue(date(2026, 1, 1))
    (gap,) = plan_gaps(h)
    assert (gap.start, gap.end) == (date(2025, 3, 31), date(2025, 5, 12)) and not gap.overdue(
        date(2026, 1, 1))
    (gap,) = plan_gaps(h, LocalPolicy(plan_gap_weeks=5))
    assert gap.overdue(date(2026, 1, 1))  # 6 weeks > 5


def test_the_whole_store_verifies_in_memory_too() -> None:
    app, events = recorded(school_event(), school_event("assessment_completed"))
    pid = events[0].originator_id
    assert app.pupil_count() == 1
    assert app.verify_all() == (1, 2, [])
    assert app.all_heads(up_to=1) == [(pid, 1, events[0].event_hash)]
    assert app.all_heads(up_to=2) == [(pid, 2, events[1].event_hash)]
    checked, mismatches = app.verify_against_anchors({pid: {2: (events[1].event_hash, "t")}})
    assert (checked, mismatches) == (1, [])
