"""What the packet must never hide (issue 12), one rule per test, on the packet builder:
concerns close only when answered, referrals and an EHC request stay open until
concluded, every provision tried is kept, NSA, and one N/K/E rule set."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts.school_events import SCHOOL_EVENT
from services.shared.sen_record import record_at
from services.transfers.packets import build_transfer_packet
from tests.factories import school_event
from tests.unit.test_packet_rules import GENERATED, SCHOOL, history, moved


def concern(areas: list[str], on: str = "2024-10-01T10:00:00+01:00", **more: Any
            ) -> dict[str, Any]:
    return school_event("concern_raised", occurred_at=on, payload={
        "raised_by": "parent_carer", "areas_of_need": areas, "summary": "Worried.", **more})


def assessment(outcome: str, needs: list[str] = (), on: str = "2024-11-20T11:00:00+00:00",
               kind: str = "screening", **more: Any) -> dict[str, Any]:
    return school_event("assessment_completed", occurred_at=on, payload={
        "assessor_role": "senco", "assessment_kind": kind, "outcome": outcome,
        "identified_needs": [{"code": c, "rank": i} for i, c in enumerate(needs, start=1)],
        "summary": "Seen.", **more})


def review(on: str, provision: list[dict[str, Any]], decision: str = "continue",
           plan_kind: str = "sen_support_plan", **more: Any) -> dict[str, Any]:
    return school_event("plan_reviewed", occurred_at=on, payload={
        "plan_kind": plan_kind, "targets": [{"description": "Read 50 words",
                                             "progress": "partly_met"}],
        "provision": provision, "what_worked": "Small groups.", "decision": decision, **more})


def provision(description: str, started: str, ended: str | None = None,
              kind: str = "intervention") -> dict[str, Any]:
    item = {"description": description, "kind": kind, "frequency": "weekly",
            "started_on": started}
    return {**item, "ended_on": ended} if ended else item


def packet_of(*events: dict[str, Any]) -> Any:
    h = history(*events, moved(SCHOOL))
    return build_transfer_packet(h, len(h), GENERATED)


def test_an_unrelated_no_sen_screen_does_not_close_a_concern() -> None:
    semh = concern(["SEMH"])
    packet = packet_of(semh, assessment("no_sen", areas_assessed=["SPLD"]))
    assert [str(c.event_id) for c in packet.concerns_open] == [semh["event_id"]]


def test_an_assessment_that_names_no_area_closes_nothing() -> None:
    semh = concern(["SEMH"])
    assert len(packet_of(semh, assessment("no_sen")).concerns_open) == 1


def test_a_concern_closes_when_an_assessment_names_it_or_covers_all_its_areas() -> None:
    named = concern(["SEMH", "SLCN"])
    covered = concern(["SPLD"])
    packet = packet_of(named, covered,
                       assessment("no_sen", addresses_concerns=[named["event_id"]]),
                       assessment("sen_support", ["SPLD"], on="2024-12-01T10:00:00+00:00"))
    assert packet.concerns_open == []


def test_an_assessment_covering_only_some_areas_leaves_the_concern_open() -> None:
    both = concern(["SEMH", "SLCN"])
    assert len(packet_of(both, assessment("sen_support", ["SLCN"])).concerns_open) == 1


def test_a_referral_answers_nothing_and_stays_pending_until_a_specialist_concludes() -> None:
    slcn = concern(["SLCN"])
    referral = assessment("refer_to_specialist", referred_to="NHS speech and language therapy",
                          areas_assessed=["SLCN"])
    packet = packet_of(slcn, referral)
    assert len(packet.concerns_open) == 1
    [pending] = packet.referrals_pending
    assert (str(pending.event_id), pending.referred_to, pending.referred_on, pending.areas) == (
        referral["event_id"], "NHS speech and language therapy", date(2024, 11, 20), ["SLCN"])
    concluded = packet_of(slcn, referral, assessment(
        "sen_support", ["SLCN"], kind="specialist", on="2025-02-01T10:00:00+00:00"))
    assert concluded.referrals_pending == [] and concluded.concerns_open == []


def test_a_referral_alone_changes_neither_status_nor_needs() -> None:
    packet = packet_of(concern(["SLCN"]), assessment("refer_to_specialist", ["SLCN"]))
    assert (packet.sen_status, packet.current_needs) == ("none", [])


def test_an_ehc_request_is_open_until_an_ehc_needs_assessment_concludes() -> None:
    request = assessment("request_ehc_needs_assessment")
    packet = packet_of(assessment("sen_support", ["ASD"], on="2024-09-01T10:00:00+01:00"),
                       request)
    assert packet.ehc_request_open is not None
    assert str(packet.ehc_request_open.event_id) == request["event_id"]
    done = packet_of(request, assessment("ehc_plan_issued", ["ASD"],
                                         kind="ehc_needs_assessment",
                                         on="2025-04-01T10:00:00+01:00"))
    assert done.ehc_request_open is None and done.sen_status == "ehc_plan"


def test_a_review_overdue_at_the_move_is_said() -> None:
    packet = packet_of(review("2025-01-10T10:00:00+00:00", [], next_review_due="2025-04-10"))
    assert packet.review_overdue_since == date(2025, 4, 10)  # the move is 2025-11-10


def test_every_provision_tried_is_kept_across_reviews_and_open_items_end_at_the_move() -> None:
    packet = packet_of(
        review("2024-12-01T10:00:00+00:00", [provision("Phonics group", "2024-09-10")]),
        review("2025-03-01T10:00:00+00:00",
               [provision("Phonics group", "2024-09-10", "2025-02-28"),
                provision("25% extra time", "2025-03-01", kind="exam_access_arrangements")],
               what_did_not_work="Withdrawal from class upset him."))
    tried = {i.description: i for i in packet.interventions}
    assert tried["Phonics group"].ended_on == date(2025, 2, 28)
    assert not tried["Phonics group"].open_at_move
    extra = tried["25% extra time"]
    assert extra.open_at_move and extra.ended_on == date(2025, 11, 10)
    assert extra.what_did_not_work == "Withdrawal from class upset him."
    assert [i.description for i in packet.exam_access_arrangements] == ["25% extra time"]
    assert [len(r.provision) for r in packet.plans.reviews] == [1, 2]  # each review kept


def test_sen_support_without_a_specialist_assessment_sends_nsa() -> None:
    packet = packet_of(assessment("sen_support", ["NSA"]))
    assert (packet.sen_status, [n.code.value for n in packet.current_needs]) == (
        "sen_support", ["NSA"])


def test_ceasing_an_ehc_plan_returns_to_k_unless_the_pupil_no_longer_has_sen() -> None:
    ehc = assessment("ehc_plan_issued", ["ASD"], kind="ehc_needs_assessment")
    ceased = packet_of(ehc, review("2025-06-01T10:00:00+01:00", [], decision="cease",
                                   plan_kind="ehc_plan"))
    assert (ceased.sen_status, [n.code.value for n in ceased.current_needs]) == (
        "sen_support", ["ASD"])
    no_sen = packet_of(ehc, review("2025-06-01T10:00:00+01:00", [], decision="cease",
                                   plan_kind="ehc_plan", no_longer_has_sen=True))
    assert (no_sen.sen_status, no_sen.current_needs) == ("none", [])  # no need with N


def test_no_sen_for_named_areas_removes_only_those_needs() -> None:
    record = record_at(history(assessment("sen_support", ["SPLD", "SEMH"]),
                               assessment("no_sen", areas_assessed=["SPLD"],
                                          on="2025-01-10T10:00:00+00:00")))
    assert (record.status, [(n.code.value, n.rank) for n in record.needs]) == (
        "sen_support", [("SEMH", 1)])


def move_with_contact(contact: dict[str, str], **more: Any) -> dict[str, Any]:
    return school_event("pupil_moved", occurred_at="2025-10-20T09:00:00+01:00", payload={
        "destination": SCHOOL, "move_kind": "in_year", "effective_date": "2025-11-10",
        "sen_contact": contact}, **more)


def test_the_sending_contact_and_gender_travel_with_the_packet() -> None:
    h = history(concern(["SPLD"]), move_with_contact(
        {"role": "SENCO", "work_email": "senco@oakfield.example"},
        pupil={**school_event()["pupil"], "gender": "F"}))
    packet = build_transfer_packet(h, 2, GENERATED)
    assert packet.pupil.gender == "F"
    assert packet.sending_contact is not None
    assert packet.sending_contact.work_email == "senco@oakfield.example"


def test_old_v1_events_stay_valid_and_a_contact_needs_a_way_to_reach_it() -> None:
    assert SCHOOL_EVENT.validate_python(school_event("assessment_completed"))
    with pytest.raises(ValidationError, match="work email or a work telephone"):
        SCHOOL_EVENT.validate_python(move_with_contact({"role": "SENCO"}))
    with pytest.raises(ValidationError, match="needs at least one identified need"):
        SCHOOL_EVENT.validate_python(assessment("sen_support"))
    assert UUID(assessment("request_ehc_needs_assessment")["event_id"])
