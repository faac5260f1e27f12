"""The statutory clocks, rule by rule, on their boundary days: done inside the limit, on
the due day, one day late, and the published exceptions (services.shared.clocks)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.shared.clocks import (
    RULES,
    ClockResult,
    LocalPolicy,
    WeekdaysOnly,
    all_clocks,
    file_sent_clock,
    setting_on,
    twelve_months_after,
)
from services.shared.sen_record import HistoryEntry
from tests.factories import history_entries, la_event, school_event

UPN = "H801200001001"
NO_POLICY = LocalPolicy()
RECEIVED = "2025-01-13"  # a Monday: 6 weeks is 24 Feb, 16 weeks 5 May, 20 weeks 2 June 2025


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return history_entries(*events, upn=UPN)


def at(day: str) -> str:
    return f"{day}T10:00:00+00:00"


def request(received: str = RECEIVED) -> dict[str, Any]:
    return la_event("ehc_request_received", occurred_at=at(received),
                    payload={"received_on": received})


def assessment_decision(on: str, decision: str = "assess", **more: Any) -> dict[str, Any]:
    return la_event("ehc_assessment_decision", occurred_at=at(on),
                    payload={"decided_on": on, "decision": decision, **more})


def plan_decision(on: str, decision: str = "issue", **more: Any) -> dict[str, Any]:
    return la_event("ehc_plan_decision", occurred_at=at(on),
                    payload={"decided_on": on, "decision": decision, **more})


def plan_issued(on: str, **more: Any) -> dict[str, Any]:
    return la_event("ehc_plan_issued", occurred_at=at(on), payload={"issued_on": on, **more})


def annual_review(on: str, la: str = "801") -> dict[str, Any]:
    return la_event("ehc_annual_review", la=la, occurred_at=at(on), payload={"held_on": on})


def amended(on: str) -> dict[str, Any]:
    return la_event("ehc_plan_amended", occurred_at=at(on), payload={"amended_on": on})


def ceased(on: str) -> dict[str, Any]:
    return la_event("ehc_plan_ceased", occurred_at=at(on), payload={"ceased_on": on})


def transferred(on: str, to_la: str = "803") -> dict[str, Any]:
    return la_event("ehc_plan_transferred", occurred_at=at(on),
                    payload={"transferred_on": on, "to_la": to_la})


def moved(effective: str, kind: str = "phase_transfer", urn: str = "100002",
          occurred: str | None = None) -> dict[str, Any]:
    return school_event("pupil_moved", occurred_at=at(occurred or effective), payload={
        "destination": {"kind": "school", "urn": urn}, "move_kind": kind,
        "effective_date": effective})


def concern(on: str) -> dict[str, Any]:
    return school_event("concern_raised", occurred_at=at(on))


def assessed(on: str) -> dict[str, Any]:
    return school_event("assessment_completed", occurred_at=at(on))  # finds SPLD: answers


def d(day: str) -> date:
    return date.fromisoformat(day)


def clocks(rule: str, *events: dict[str, Any], today: str = "2030-01-01",
           policy: LocalPolicy = NO_POLICY) -> list[ClockResult]:
    return [c for c in all_clocks(history(*events), today=d(today), calendar=WeekdaysOnly(),
                                  policy=policy) if c.rule == rule]


def clock(rule: str, *events: dict[str, Any], today: str = "2030-01-01",
          policy: LocalPolicy = NO_POLICY) -> ClockResult:
    (found,) = clocks(rule, *events, today=today, policy=policy)
    return found


class HolidayCalendar:
    """A fake school calendar: weekdays except the given holidays."""

    def __init__(self, *holidays: date) -> None:
        self.holidays = set(holidays)

    def _open(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def school_days_between(self, start: date, end: date, la_code: str | None) -> int:
        return sum(1 for n in range(1, (end - start).days + 1)
                   if self._open(start + timedelta(days=n)))

    def add_school_days(self, start: date, n: int, la_code: str | None) -> date:
        day = start
        while n:
            day += timedelta(days=1)
            n -= self._open(day)
        return day


# The rules and their sources.

def test_every_rule_is_named_with_its_source() -> None:
    assert {r: (RULES[r].source, RULES[r].statutory) for r in RULES} == {
        "ehc_assessment_decision_6_weeks": ("SEND Regulations 2014, reg. 4 and 5(1)", True),
        "ehc_decision_not_to_issue_16_weeks": ("SEND Regulations 2014, reg. 10(1)", True),
        "ehc_final_plan_20_weeks": ("SEND Regulations 2014, reg. 13(2)", True),
        "ehc_annual_review_12_months": ("Children and Families Act 2014, s.44(1)", True),
        "ehc_phase_transfer_review": ("SEND Regulations 2014, reg. 18", True),
        "file_sent_15_school_days": (
            "Education (Pupil Information) (England) Regulations 2005, reg. 9 (maintained "
            "schools; academies are strongly encouraged to follow it)", True),
        "concern_open_policy": (
            "local policy (SENDHUB_POLICY_CONCERN_OPEN_WEEKS), not statute", False),
    }
    assert all(r.title for r in RULES.values())


def test_a_clock_carries_the_pupil_the_school_attended_and_the_la() -> None:
    c = clock("ehc_final_plan_20_weeks", concern("2024-11-04"), request(),
              moved("2025-03-03", kind="in_year", urn="100009"))
    assert (c.upn, c.setting_urn, c.la_code, c.statutory) == (UPN, "100001", "801", True)
    assert c.title and c.source == "SEND Regulations 2014, reg. 13(2)"


def test_the_setting_is_the_last_move_in_else_the_last_school_to_speak() -> None:
    h = history(school_event(occurred_at=at("2024-10-01"), source={"urn": "100005",
                                                                   "system": "SIMS"}),
                concern("2024-11-04"), request(),
                moved("2025-03-03", kind="in_year", urn="100009", occurred="2025-02-20"),
                school_event("pupil_moved", occurred_at=at("2025-07-01"), source={
                    "urn": "100009", "system": "Arbor"}, payload={
                    "destination": {"kind": "unknown"}, "move_kind": "in_year",
                    "effective_date": "2025-07-18"}))
    assert setting_on(h, d("2024-09-01")) == "100005"  # before anything: the first school
    assert setting_on(h, d("2024-10-15")) == "100005"
    assert setting_on(h, d("2025-01-13")) == "100001"  # an LA's event is not a school's
    assert setting_on(h, d("2025-03-02")) == "100001"  # the move is not yet effective
    assert setting_on(h, d("2025-03-03")) == "100009"
    assert setting_on(h, d("2025-07-18")) is None  # left for an unknown destination
    assert setting_on([], d("2025-01-01")) is None


# 6 weeks to decide whether to assess (SEND Regulations 2014, reg. 4 and 5).

@pytest.mark.parametrize(("decided", "decision", "status"), [
    ("2025-02-17", "assess", "met"),  # inside
    ("2025-02-24", "assess", "met"),  # on the due day
    ("2025-02-25", "assess", "late"),  # one day late
    ("2025-02-25", "not_assess", "late"),  # either decision ends the clock
])
def test_the_decision_whether_to_assess_is_due_6_weeks_after_the_la_received_the_request(
        decided: str, decision: str, status: str) -> None:
    c = clock("ehc_assessment_decision_6_weeks", request(), assessment_decision(decided, decision))
    assert (c.started_on, c.due_on, c.ended_on, c.status) == (
        d(RECEIVED), d("2025-02-24"), d(decided), status)


def test_no_decision_is_open_on_the_due_day_and_overdue_the_day_after() -> None:
    rule = "ehc_assessment_decision_6_weeks"
    assert clock(rule, request(), today="2025-02-24").status == "open"
    assert clock(rule, request(), today="2025-02-25").status == "overdue"


def test_a_late_decision_with_a_published_exception_is_an_exception() -> None:
    c = clock("ehc_assessment_decision_6_weeks", request(), assessment_decision(
        "2025-03-10", exception="absent_from_area"))
    assert c.status == "exception"
    assert "absent from area" in c.note and "reg. 5(4)" in c.note
    in_time = clock("ehc_assessment_decision_6_weeks", request(), assessment_decision(
        "2025-02-20", exception="school_closure"))
    assert in_time.status == "met" and "school closure" in in_time.note


def test_a_schools_own_request_starts_no_clock() -> None:
    school_asks = school_event("assessment_completed", occurred_at=at("2024-12-02"), payload={
        "assessor_role": "senco", "assessment_kind": "screening",
        "identified_needs": [{"code": "ASD", "rank": 1}],
        "outcome": "request_ehc_needs_assessment", "summary": "x"})
    assert all_clocks(history(school_asks), today=d("2026-01-01"), calendar=WeekdaysOnly()) == []
    # With the LA's record of the request, the clocks run from the day it received it.
    c = clock("ehc_final_plan_20_weeks", school_asks, request())
    assert c.started_on == d(RECEIVED)


# 16 weeks to a decision not to issue (reg. 10).

@pytest.mark.parametrize(("decided", "status"), [
    ("2025-04-28", "met"), ("2025-05-05", "met"), ("2025-05-06", "late")])
def test_a_decision_not_to_issue_is_due_16_weeks_after_the_request(decided: str, status: str) -> None:
    c = clock("ehc_decision_not_to_issue_16_weeks", request(), assessment_decision("2025-02-17"),
              plan_decision(decided, "not_issue"))
    assert (c.due_on, c.ended_on, c.status) == (d("2025-05-05"), d(decided), status)


def test_the_16_weeks_run_only_once_the_la_decided_to_assess() -> None:
    assert clocks("ehc_decision_not_to_issue_16_weeks", request()) == []
    assert clocks("ehc_decision_not_to_issue_16_weeks", request(),
                  assessment_decision("2025-02-17", "not_assess")) == []
    rule, assessing = "ehc_decision_not_to_issue_16_weeks", assessment_decision("2025-02-17")
    assert clock(rule, request(), assessing, today="2025-05-05").status == "open"
    assert clock(rule, request(), assessing, today="2025-05-06").status == "overdue"


def test_a_decision_to_issue_stops_the_16_weeks() -> None:
    c = clock("ehc_decision_not_to_issue_16_weeks", request(), assessment_decision("2025-02-17"),
              plan_decision("2025-05-20", "issue"))
    assert (c.status, c.ended_on) == ("stopped", d("2025-05-20"))
    assert "20-week" in c.note


def test_a_late_decision_not_to_issue_with_a_published_exception_is_an_exception() -> None:
    c = clock("ehc_decision_not_to_issue_16_weeks", request(), assessment_decision("2025-02-17"),
              plan_decision("2025-05-19", "not_issue", exception="early_years_closure"))
    assert c.status == "exception" and "reg. 10(4)" in c.note and "early years closure" in c.note


# 20 weeks to the final plan (reg. 13).

def decided_to_issue() -> list[dict[str, Any]]:
    return [request(), assessment_decision("2025-02-17"), plan_decision("2025-04-28")]


@pytest.mark.parametrize(("issued", "status"), [
    ("2025-05-26", "met"), ("2025-06-02", "met"), ("2025-06-03", "late")])
def test_the_final_plan_is_due_20_weeks_after_the_la_received_the_request(
        issued: str, status: str) -> None:
    c = clock("ehc_final_plan_20_weeks", *decided_to_issue(), plan_issued(issued))
    assert (c.started_on, c.due_on, c.ended_on, c.status) == (
        d(RECEIVED), d("2025-06-02"), d(issued), status)


def test_no_plan_is_open_on_the_due_day_and_overdue_the_day_after() -> None:
    assert clock("ehc_final_plan_20_weeks", *decided_to_issue(), today="2025-06-02").status == "open"
    assert clock("ehc_final_plan_20_weeks", *decided_to_issue(), today="2025-06-03").status == "overdue"


def test_a_late_plan_with_a_published_exception_is_an_exception() -> None:
    c = clock("ehc_final_plan_20_weeks", *decided_to_issue(),
              plan_issued("2025-07-14", exception="exceptional_personal_circumstances"))
    assert c.status == "exception"
    assert "reg. 13(3)" in c.note and "exceptional personal circumstances" in c.note


@pytest.mark.parametrize("declined", [
    [assessment_decision("2025-02-20", "not_assess")],
    [assessment_decision("2025-02-17"), plan_decision("2025-04-28", "not_issue")],
])
def test_a_declined_request_stops_the_20_weeks_and_is_never_overdue(
        declined: list[dict[str, Any]]) -> None:
    c = clock("ehc_final_plan_20_weeks", request(), *declined, today="2027-01-01")
    assert c.status == "stopped" and c.ended_on == d(declined[-1]["payload"]["decided_on"])
    every = all_clocks(history(request(), *declined), today=d("2027-01-01"),
                       calendar=WeekdaysOnly())
    assert not [x for x in every if x.status == "overdue"]


# The annual review: 12 months from the plan and from each review (CFA 2014 s.44).

PLAN = "2025-05-26"


def test_a_plan_never_reviewed_is_open_on_its_anniversary_and_overdue_the_day_after() -> None:
    rule = "ehc_annual_review_12_months"
    first = clock(rule, plan_issued(PLAN), today="2026-05-26")
    assert (first.started_on, first.due_on, first.status) == (d(PLAN), d("2026-05-26"), "open")
    assert clock(rule, plan_issued(PLAN), today="2026-05-27").status == "overdue"


@pytest.mark.parametrize(("held", "status"), [
    ("2026-05-11", "met"), ("2026-05-26", "met"), ("2026-05-27", "late")])
def test_the_first_review_is_due_12_months_after_the_plan(held: str, status: str) -> None:
    first, _ = clocks("ehc_annual_review_12_months", plan_issued(PLAN), annual_review(held))
    assert (first.due_on, first.ended_on, first.status) == (d("2026-05-26"), d(held), status)


def test_each_review_is_due_12_months_after_the_one_before() -> None:
    first, second, third = clocks("ehc_annual_review_12_months", plan_issued(PLAN),
                                  annual_review("2026-05-11"), annual_review("2027-05-12"),
                                  today="2027-06-01")
    assert (second.started_on, second.due_on, second.status) == (
        d("2026-05-11"), d("2027-05-11"), "late")
    assert (third.started_on, third.due_on, third.ended_on, third.status) == (
        d("2027-05-12"), d("2028-05-12"), None, "open")


def test_a_plan_made_on_29_february_is_due_on_28_february() -> None:
    assert twelve_months_after(d("2024-02-29")) == d("2025-02-28")
    c = clock("ehc_annual_review_12_months", plan_issued("2024-02-29"), today="2025-02-28")
    assert (c.due_on, c.status) == (d("2025-02-28"), "open")


def test_ceasing_the_plan_stops_the_open_review_and_a_new_plan_starts_its_own() -> None:
    found = clocks("ehc_annual_review_12_months", plan_issued(PLAN), annual_review("2026-05-11"),
                   ceased("2026-07-20"), plan_issued("2027-01-11"), today="2028-06-01")
    assert [(c.started_on, c.ended_on, c.status) for c in found] == [
        (d(PLAN), d("2026-05-11"), "met"),
        (d("2026-05-11"), d("2026-07-20"), "stopped"),
        (d("2027-01-11"), None, "overdue")]


def test_a_plan_ceased_with_its_review_already_overdue_stays_overdue() -> None:
    found = clock("ehc_annual_review_12_months", plan_issued(PLAN), ceased("2026-07-20"))
    assert (found.ended_on, found.status) == (d("2026-07-20"), "overdue")


def test_after_a_transfer_the_new_la_reviews_at_the_later_of_12_months_and_3_months() -> None:
    reviewed, old_la, new_la = clocks(
        "ehc_annual_review_12_months", plan_issued(PLAN), annual_review("2026-05-11"),
        transferred("2026-09-01"), today="2026-10-01")
    assert reviewed.status == "met"
    assert (old_la.la_code, old_la.ended_on, old_la.status) == ("801", d("2026-09-01"), "stopped")
    # 12 months from the last review (11 May 2027) is later than 3 months from the transfer.
    assert (new_la.la_code, new_la.started_on, new_la.due_on, new_la.status) == (
        "803", d("2026-09-01"), d("2027-05-11"), "open")
    assert "reg. 15" in new_la.note
    # Transferred a month before the review was due: 3 months from the transfer is later.
    found = clocks("ehc_annual_review_12_months", plan_issued(PLAN), annual_review("2026-05-11"),
                   transferred("2027-04-10"), annual_review("2027-07-10", la="803"),
                   today="2027-08-01")
    assert [(c.la_code, c.started_on, c.due_on, c.status) for c in found[1:]] == [
        ("801", d("2026-05-11"), d("2027-05-11"), "stopped"),
        ("803", d("2027-04-10"), d("2027-07-10"), "met"),
        ("803", d("2027-07-10"), d("2028-07-10"), "open")]


def test_a_transfer_after_the_review_was_due_leaves_the_old_las_clock_overdue() -> None:
    old_la, new_la = clocks("ehc_annual_review_12_months", plan_issued(PLAN),
                            transferred("2026-07-01"), today="2026-08-01")
    assert (old_la.la_code, old_la.status, old_la.ended_on) == ("801", "overdue", d("2026-07-01"))
    assert (new_la.la_code, new_la.due_on, new_la.status) == ("803", d("2026-10-01"), "open")


# Phase transfer: reviewed and amended before 15 February, or 31 March for post-16 (reg. 18).

def phase_move(kind: str = "phase_transfer") -> list[dict[str, Any]]:
    return [plan_issued(PLAN), moved("2026-09-01", kind=kind, occurred="2026-06-15")]


@pytest.mark.parametrize(("kind", "amended_on", "due", "status"), [
    ("phase_transfer", "2026-01-20", "2026-02-14", "met"),
    ("phase_transfer", "2026-02-14", "2026-02-14", "met"),
    ("phase_transfer", "2026-02-15", "2026-02-14", "late"),
    ("post16", "2026-03-30", "2026-03-30", "met"),
    ("post16", "2026-03-31", "2026-03-30", "late"),
])
def test_a_phase_transfer_needs_the_plan_amended_by_the_deadline_of_its_kind(
        kind: str, amended_on: str, due: str, status: str) -> None:
    plan, move = phase_move(kind)
    c = clock("ehc_phase_transfer_review", plan, amended(amended_on), move)
    assert (c.started_on, c.due_on, c.ended_on, c.status, c.la_code) == (
        d("2025-09-01"), d(due), d(amended_on), status, "801")
    assert "reg. 18" in c.note


def test_a_review_in_the_school_year_before_the_move_counts_and_one_before_it_does_not() -> None:
    plan, move = phase_move()
    assert clock("ehc_phase_transfer_review", plan, annual_review("2025-11-03"),
                 move).status == "met"
    assert clock("ehc_phase_transfer_review", plan, annual_review("2025-09-01"),
                 move).status == "met"  # from 1 September, that day included
    too_early = clock("ehc_phase_transfer_review", plan, annual_review("2025-08-31"), move,
                      today="2026-02-15")
    assert (too_early.ended_on, too_early.status) == (None, "overdue")
    assert clock("ehc_phase_transfer_review", *phase_move(), today="2026-02-14").status == "open"


def test_a_review_after_the_move_does_not_make_a_missed_phase_transfer_review_late() -> None:
    plan, move = phase_move()
    c = clock("ehc_phase_transfer_review", plan, move, annual_review("2026-10-05"),
              today="2026-11-01")
    assert (c.ended_on, c.status) == (None, "overdue")


def test_only_a_phase_transfer_with_a_plan_starts_the_clock() -> None:
    assert clocks("ehc_phase_transfer_review", moved("2026-09-01")) == []  # no plan
    assert clocks("ehc_phase_transfer_review", plan_issued(PLAN),
                  moved("2026-09-01", kind="in_year")) == []
    assert clocks("ehc_phase_transfer_review", plan_issued(PLAN), ceased("2026-03-01"),
                  moved("2026-09-01")) == []


# The file sent within 15 school days of leaving (Pupil Information Regs 2005, reg. 9).

LEFT = date(2025, 3, 3)  # a Monday; 15 weekdays later is Monday 24 March


def sent(first_sent_on: date | None, today: date = date(2025, 6, 1),
         calendar: Any = None) -> ClockResult:
    return file_sent_clock(upn=UPN, leaving_urn="100001", leaving_la="801", left_on=LEFT,
                           first_sent_on=first_sent_on, today=today,
                           calendar=calendar or WeekdaysOnly())


def test_the_file_is_due_15_school_days_after_leaving() -> None:
    assert (sent(date(2025, 3, 20)).due_on, sent(date(2025, 3, 20)).status) == (
        date(2025, 3, 24), "met")
    assert sent(date(2025, 3, 24)).status == "met"
    assert sent(date(2025, 3, 25)).status == "late"
    assert sent(date(2025, 2, 28)).status == "met"  # a packet sent before the pupil left
    assert sent(None, today=date(2025, 3, 24)).status == "open"
    assert sent(None, today=date(2025, 3, 25)).status == "overdue"
    c = sent(None)
    assert (c.rule, c.setting_urn, c.la_code, c.started_on, c.statutory) == (
        "file_sent_15_school_days", "100001", "801", LEFT, True)


def test_the_15_school_days_skip_the_calendars_holidays() -> None:
    with_holiday = HolidayCalendar(date(2025, 3, 14))
    c = sent(date(2025, 3, 25), calendar=with_holiday)
    assert (c.due_on, c.status) == (date(2025, 3, 25), "met")  # late on weekdays only
    assert "15 school days" in c.note
    assert sent(date(2025, 3, 26), calendar=with_holiday).status == "late"
    assert sent(None, today=date(2025, 3, 25), calendar=with_holiday).status == "open"


def test_weekdays_only_counts_the_days_after_the_start() -> None:
    weekdays = WeekdaysOnly()
    assert weekdays.add_school_days(date(2025, 3, 7), 1, None) == date(2025, 3, 10)
    assert weekdays.school_days_between(LEFT, date(2025, 3, 24), None) == 15
    assert weekdays.school_days_between(date(2025, 3, 24), LEFT, None) == -15


# Local policy: a concern followed through (no statute; only when configured).

SIX_WEEKS = LocalPolicy(concern_open_weeks=6)


def test_the_concern_policy_is_off_unless_configured() -> None:
    assert clocks("concern_open_policy", concern("2025-01-06")) == []


@pytest.mark.parametrize(("answered", "status"), [
    ("2025-02-10", "met"), ("2025-02-17", "met"), ("2025-02-18", "late")])
def test_a_concern_answered_is_met_or_late_by_the_policys_weeks(answered: str, status: str) -> None:
    c = clock("concern_open_policy", concern("2025-01-06"), assessed(answered), policy=SIX_WEEKS)
    assert (c.due_on, c.ended_on, c.status, c.statutory) == (
        d("2025-02-17"), d(answered), status, False)
    assert c.source.startswith("local policy") and "not statute" in c.note


def test_a_concern_still_open_is_overdue_past_the_policys_weeks() -> None:
    assert clock("concern_open_policy", concern("2025-01-06"), policy=SIX_WEEKS,
                 today="2025-02-17").status == "open"
    assert clock("concern_open_policy", concern("2025-01-06"), policy=SIX_WEEKS,
                 today="2025-02-18").status == "overdue"


def test_all_clocks_come_in_the_order_they_started() -> None:
    found = all_clocks(history(concern("2024-12-02"), *decided_to_issue(), plan_issued(PLAN)),
                       today=d("2025-07-01"), calendar=WeekdaysOnly(), policy=SIX_WEEKS)
    assert [c.rule for c in found] == [
        "concern_open_policy", "ehc_assessment_decision_6_weeks",
        "ehc_decision_not_to_issue_16_weeks", "ehc_final_plan_20_weeks",
        "ehc_annual_review_12_months"]
    assert [c.status for c in found] == ["overdue", "met", "stopped", "met", "open"]
