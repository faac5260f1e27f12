"""The local authority's EHC events: the contract, and the SEN record following them for E
(contracts.la_events; services.shared.sen_record)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.inbound import INBOUND_EVENT, where_recorded
from contracts.topics import Topics
from services.ingest.application import admit_school_event
from services.shared.access import (
    Principal,
    may_send_events_for,
    principal_named_by_sender,
    sender_of,
)
from services.shared.errors import MessageRefused
from services.shared.sen_record import HistoryEntry, record_at
from services.shared.sen_wording import describe_event
from tests.factories import history_entries, la_event, school_event

UPN = "H801200001001"


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return history_entries(*events, upn=UPN)


def at(day: str) -> str:
    return f"{day}T10:00:00+00:00"


def test_every_la_event_type_is_valid_and_named_by_its_la() -> None:
    for kind in ("ehc_request_received", "ehc_assessment_decision", "ehc_plan_decision",
                 "ehc_plan_issued", "ehc_annual_review", "ehc_plan_amended", "ehc_plan_ceased",
                 "ehc_plan_transferred"):
        event = INBOUND_EVENT.validate_python(la_event(kind))
        assert where_recorded(event) == "la-801"
        assert describe_event(history(la_event(kind))[0]).startswith(("LA 801", "EHC plan"))


@pytest.mark.parametrize("change", [
    {"source": {"la": "80", "system": "x"}},
    {"source": {"la": "801", "urn": "100001", "system": "x"}},
    {"payload": {"decision": "maybe"}},
])
def test_an_la_event_that_breaks_the_contract_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        INBOUND_EVENT.validate_python(la_event("ehc_assessment_decision", **change))


def test_a_plan_is_transferred_to_another_la_only() -> None:
    with pytest.raises(ValidationError, match="another local authority"):
        INBOUND_EVENT.validate_python(la_event("ehc_plan_transferred",
                                               payload={"to_la": "801"}))


def test_a_plan_issued_by_the_la_makes_e_with_its_needs() -> None:
    record = record_at(history(la_event("ehc_request_received"),
                               la_event("ehc_assessment_decision"),
                               la_event("ehc_plan_decision"), la_event("ehc_plan_issued")))
    assert record.status == "ehc_plan"
    assert [n.code for n in record.needs] == ["ASD", "SLCN"]
    assert record.ehc_plan is not None and record.ehc_plan.maintaining_la == "801"
    assert record.ehc_request_open() is None


def test_once_an_la_speaks_a_schools_ehc_plan_issued_outcome_is_not_the_plan() -> None:
    school_says_plan = school_event("assessment_completed", payload={
        "assessor_role": "educational_psychologist", "assessment_kind": "ehc_needs_assessment",
        "identified_needs": [{"code": "ASD", "rank": 1}], "outcome": "ehc_plan_issued",
        "summary": "EP advice."})
    alone = record_at(history(school_says_plan))
    assert alone.status == "ehc_plan"  # no LA connected: the school's report is all there is
    with_la = record_at(history(la_event("ehc_request_received"), school_says_plan))
    assert with_la.status == "sen_support"
    assert with_la.ehc_request_open() is not None


def test_a_declined_request_is_no_longer_open() -> None:
    for declined in (la_event("ehc_assessment_decision", payload={"decision": "not_assess"}),
                     la_event("ehc_plan_decision", payload={"decision": "not_issue"})):
        record = record_at(history(la_event("ehc_request_received"), declined))
        assert record.ehc_request_open() is None
        assert record.ehc_requests[0].declined
        assert record.status == "none"


def test_an_open_request_carries_where_the_las_case_stands() -> None:
    record = record_at(history(la_event("ehc_request_received"),
                               la_event("ehc_assessment_decision",
                                        payload={"exception": "absent_from_area"})))
    case = record.ehc_request_open()
    assert case is not None
    assert (case.la_code, case.requested_on, case.assessment_decision) == (
        "801", date(2025, 1, 13), "assess")
    assert case.exceptions == {"assessment_decision": "absent_from_area"}


def test_reviews_amendments_transfer_and_cease_follow_the_plan() -> None:
    events = [la_event("ehc_request_received"), la_event("ehc_plan_issued", occurred_at=at("2025-05-26")),
              la_event("ehc_plan_amended", occurred_at=at("2026-02-02"),
                       payload={"needs": [{"code": "ASD", "rank": 1}]}),
              la_event("ehc_annual_review", occurred_at=at("2026-05-11")),
              la_event("ehc_plan_transferred", occurred_at=at("2026-09-01"))]
    record = record_at(history(*events))
    plan = record.ehc_plan
    assert plan is not None
    assert plan.last_reviewed_on == date(2026, 5, 11)
    assert plan.reviewed_or_issued_on == date(2026, 5, 11)
    assert (plan.maintaining_la, plan.transferred_from_la) == ("803", "801")
    assert [n.code for n in record.needs] == ["ASD"]
    ceased = record_at(history(*events, la_event("ehc_plan_ceased", la="803",
                                                 occurred_at=at("2026-10-01"))))
    assert (ceased.status, ceased.ehc_plan) == ("sen_support", None)
    gone = record_at(history(*events, la_event("ehc_plan_ceased", la="803",
                                               occurred_at=at("2026-10-01"),
                                               payload={"no_longer_has_sen": True})))
    assert gone.status == "none"


def test_a_schools_ehc_review_does_not_cease_the_las_plan() -> None:
    review = school_event("plan_reviewed", occurred_at=at("2025-09-20"), payload={
        "plan_kind": "ehc_plan", "targets": [], "provision": [], "what_worked": "x",
        "decision": "cease"})
    record = record_at(history(la_event("ehc_plan_issued"), review))
    assert record.status == "ehc_plan"


class _Principals:
    def __init__(self, *names: str) -> None:
        self.known = {n: Principal.parse(n) for n in names}

    def active(self, name: str) -> Principal | None:
        return self.known.get(name)


def _admit(event: dict[str, Any], topic: str) -> AcceptedSchoolEventV1:
    return admit_school_event(
        json.dumps(event).encode(), position=Position(topic=topic, partition=0, offset=1),
        now=datetime(2026, 11, 23, tzinfo=UTC), max_bytes=100_000, headers=[],
        topics=Topics(), principals=_Principals("la-801", "la-803", "school-100001"))


def test_an_la_speaks_for_itself_on_its_own_topic_only() -> None:
    accepted = _admit(la_event("ehc_plan_issued"), "sen.school-events.v1.la-801")
    assert accepted.event.event_type == "ehc_plan_issued"
    with pytest.raises(MessageRefused, match="la-803 may not send events for LA 801") as refused:
        _admit(la_event("ehc_plan_issued"), "sen.school-events.v1.la-803")
    assert refused.value.reason == "not_authorised"
    assert refused.value.problems[0].path == "source.la"
    with pytest.raises(MessageRefused) as school:
        _admit(la_event("ehc_plan_issued"), "sen.school-events.v1.urn-100001")
    assert school.value.reason == "not_authorised"
    with pytest.raises(MessageRefused):
        _admit(school_event(), "sen.school-events.v1.la-801")


def test_the_sender_of_an_la_is_its_own_topic_suffix() -> None:
    la = Principal.parse("la-801")
    assert sender_of(la) == "la-801"
    assert principal_named_by_sender("la-801") == "la-801"
    assert may_send_events_for(la, "la-801") and not may_send_events_for(la, "100001")


def school_reported_plan(day: str = "2024-03-01") -> dict[str, Any]:
    return school_event("assessment_completed", occurred_at=at(day), payload={
        "assessor_role": "educational_psychologist", "assessment_kind": "ehc_needs_assessment",
        "identified_needs": [{"code": "ASD", "rank": 1}], "outcome": "ehc_plan_issued",
        "summary": "EP advice; plan issued by the LA."})


def test_an_la_joining_later_does_not_undo_a_plan_a_school_reported_before() -> None:
    record = record_at(history(school_reported_plan(),
                               la_event("ehc_request_received", occurred_at=at("2025-01-13"))))
    assert record.status == "ehc_plan"
    assert record.episodes == [(date(2024, 3, 1), "ehc_plan")]


def test_an_la_reviewing_a_plan_a_school_reported_takes_it_on() -> None:
    record = record_at(history(school_reported_plan(), la_event(
        "ehc_annual_review", occurred_at=at("2025-03-01"), payload={"held_on": "2025-03-01"})))
    assert record.status == "ehc_plan"
    plan = record.ehc_plan
    assert plan is not None and plan.reported_by_school
    assert (plan.maintaining_la, plan.issued_on, plan.last_reviewed_on) == (
        "801", date(2024, 3, 1), date(2025, 3, 1))


def test_an_la_cannot_change_or_end_another_las_plan() -> None:
    issued = la_event("ehc_plan_issued", occurred_at=at("2025-05-26"))
    for other in (la_event("ehc_plan_ceased", la="802", occurred_at=at("2025-09-01")),
                  la_event("ehc_plan_transferred", la="802", occurred_at=at("2025-09-01")),
                  la_event("ehc_annual_review", la="802", occurred_at=at("2025-09-01"))):
        record = record_at(history(issued, other))
        assert record.status == "ehc_plan"
        assert record.ehc_plan is not None
        assert (record.ehc_plan.maintaining_la, record.ehc_plan.last_reviewed_on) == ("801", None)


def test_an_la_issues_only_plans_it_maintains() -> None:
    with pytest.raises(ValidationError, match="cannot issue a plan that LA 805 maintains"):
        INBOUND_EVENT.validate_python(la_event("ehc_plan_issued",
                                               payload={"maintaining_la": "805"}))


def test_an_las_decision_belongs_to_its_own_case() -> None:
    record = record_at(history(
        la_event("ehc_request_received", la="801"),
        la_event("ehc_request_received", la="803", occurred_at=at("2025-03-02"),
                 payload={"received_on": "2025-02-03"}),
        la_event("ehc_assessment_decision", la="801", occurred_at=at("2025-03-03"),
                 payload={"decision": "not_assess"})))
    by_la = {c.la_code: c for c in record.ehc_requests}
    assert by_la["801"].declined and by_la["803"].assessment_decision is None


def test_a_schools_request_after_the_las_last_case_is_open() -> None:
    again = school_event("assessment_completed", occurred_at=at("2025-05-01"), payload={
        "assessor_role": "senco", "assessment_kind": "screening", "identified_needs": [],
        "outcome": "request_ehc_needs_assessment", "summary": "The school asks again."})
    record = record_at(history(
        la_event("ehc_request_received"),
        la_event("ehc_assessment_decision", payload={"decision": "not_assess"}), again))
    case = record.ehc_request_open()
    assert case is not None and (case.la_code, case.requested_on) == (None, date(2025, 5, 1))
