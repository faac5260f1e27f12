"""A realistic scenario across two school years (September 2024 to July 2026).

Three schools and one post-16 provider; six pupils whose concerns are raised, assessed,
planned and reviewed. Amira moves in-year, Ben moves primary to secondary, Chloe moves
from secondary to a post-16 provider, Dylan moves with no SEN history at all, Grace
leaves with no known destination (found weeks later); Ella and Farhan stay. Weeks later
Oakfield records an assessment it had not entered before Amira left, and Riverside
withdraws a concern about Ben it had recorded in error, after his packet went. Harry
stays at Oakfield; his parents object to the hub's copy of his record, and the trust's
DPO authorises its erasure. One event
is invalid: a plan review with `parent_carer_veiws` misspelt.
All people and settings are fictional. Event ids are deterministic, so running the
scenario twice changes nothing (the hub ignores an event it already holds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from contracts.identifiers import upn_check_letter
from contracts.packet import TransferPacketV1
from contracts.receipts import PacketReceiptV1

_NS = UUID("9a6c1d2e-3f4b-4c5d-8e6f-7a8b9c0d1e2f")

OAKFIELD = {"urn": "131001", "name": "Oakfield Primary School", "system": "SIMS"}
RIVERSIDE = {"urn": "131002", "name": "Riverside Primary School", "system": "Arbor"}
HILLCREST = {"urn": "137003", "name": "Hillcrest Academy", "system": "Bromcom"}
NORTHGATE = {"ukprn": "10034567", "name": "Northgate College"}

SETTING_NAMES = {
    "urn-131001": OAKFIELD["name"],
    "urn-131002": RIVERSIDE["name"],
    "urn-137003": HILLCREST["name"],
    "ukprn-10034567": NORTHGATE["name"],
    "urn-137004": "Kingsweston Academy",
    "lost-pupils.la-801": "Bristol (LA 801): lost pupils",
}


def make_upn(serial: int) -> str:
    body = f"80120240{serial:04d}"[-12:]
    return upn_check_letter(body) + body


@dataclass(frozen=True)
class ScenarioPupil:
    upn: str
    given_name: str
    family_name: str
    date_of_birth: str
    uln: str | None = None

    def as_contract(self) -> dict[str, Any]:
        pupil = {"upn": self.upn, "given_name": self.given_name,
                 "family_name": self.family_name, "date_of_birth": self.date_of_birth}
        if self.uln:
            pupil["uln"] = self.uln
        return pupil


AMIRA = ScenarioPupil(make_upn(1), "Amira", "Khan", "2016-05-14")
BEN = ScenarioPupil(make_upn(2), "Ben", "Okafor", "2014-02-03")
CHLOE = ScenarioPupil(make_upn(3), "Chloe", "Evans", "2009-01-22", uln="9276308686")
DYLAN = ScenarioPupil(make_upn(4), "Dylan", "Hughes", "2015-07-09")
ELLA = ScenarioPupil(make_upn(5), "Ella", "Smith", "2013-10-30")
FARHAN = ScenarioPupil(make_upn(6), "Farhan", "Ali", "2019-04-11")
GRACE = ScenarioPupil(make_upn(7), "Grace", "Nowak", "2017-08-02")
HARRY = ScenarioPupil(make_upn(8), "Harry", "Brennan", "2016-11-21")
PUPILS = (AMIRA, BEN, CHLOE, DYLAN, ELLA, FARHAN, GRACE, HARRY)
KINGSWESTON = {"urn": "137004", "name": "Kingsweston Academy", "system": "Arbor"}


def event_id(pupil: ScenarioPupil, n: int) -> str:
    return str(uuid5(_NS, f"{pupil.upn}/{n}"))


def _event(pupil: ScenarioPupil, n: int, event_type: str, when: str, school: dict[str, str],
           role: str, name: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    recorded_by: dict[str, str] = {"role": role}
    if name:
        recorded_by["name"] = name
    return {
        "event_id": event_id(pupil, n), "event_type": event_type, "schema_version": 1,
        "occurred_at": when, "source": {"urn": school["urn"], "system": school["system"]},
        "recorded_by": recorded_by, "pupil": pupil.as_contract(), "payload": payload,
    }


def _provision(description: str, kind: str, frequency: str, started: str,
               ended: str | None = None) -> dict[str, str]:
    item = {"description": description, "kind": kind, "frequency": frequency,
            "started_on": started}
    if ended:
        item["ended_on"] = ended
    return item


SENCO_OAKFIELD, SENCO_RIVERSIDE, SENCO_HILLCREST = "Mrs J. Patel", "Mr D. Green", "Ms R. Osei"


def scenario_events() -> list[dict[str, Any]]:
    """The scenario's school and LA events in the order the systems send them."""
    return (_amira() + _ben_la() + _ben() + _chloe() + _dylan() + _ella() + _ella_la()
            + _farhan() + _grace() + _harry() + [_invalid_review()])


BRISTOL = {"la": "801", "system": "Capita One"}
CASE_OFFICER = {"role": "EHC case officer, SEND 0-25 team",
                "work_email": "send.casework@bristol.example.gov.uk"}


def _la_event(pupil: ScenarioPupil, n: int, event_type: str, when: str,
              payload: dict[str, Any]) -> dict[str, Any]:
    """An event from Bristol's (LA 801) case-management system."""
    return {
        "event_id": event_id(pupil, n), "event_type": event_type, "schema_version": 1,
        "occurred_at": when, "source": BRISTOL, "recorded_by": {"role": "EHC case officer"},
        "pupil": pupil.as_contract(), "payload": payload,
    }


def _ben_la() -> list[dict[str, Any]]:
    """Bristol's side of Ben's plan: the request received after the SaLT's advice, the
    decision to assess in week 5, the plan issued in week 19 (the limit is 20), the annual
    review, and the plan amended for secondary school by 15 February (phase transfer)."""
    return [
        _la_event(BEN, 20, "ehc_request_received", "2025-01-06T12:00:00+00:00",
                  {"received_on": "2025-01-06", "requested_by": "school",
                   "requesting_urn": RIVERSIDE["urn"]}),
        _la_event(BEN, 21, "ehc_assessment_decision", "2025-02-07T12:00:00+00:00",
                  {"decided_on": "2025-02-07", "decision": "assess"}),
        _la_event(BEN, 22, "ehc_plan_decision", "2025-04-14T12:00:00+01:00",
                  {"decided_on": "2025-04-14", "decision": "issue"}),
        _la_event(BEN, 23, "ehc_plan_issued", "2025-05-16T12:00:00+01:00", {
            "issued_on": "2025-05-16", "maintaining_la": "801", "case_officer": CASE_OFFICER,
            "needs": [{"code": "SLCN", "rank": 1}, {"code": "SEMH", "rank": 2}],
            "provision": [_provision("Speech and language therapy", "specialist_input",
                                     "weekly, 45 min", "2025-06-02"),
                          _provision("ELSA emotional literacy sessions", "intervention",
                                     "weekly, 30 min", "2025-09-15")],
            "outcomes": ["Follows two-step instructions in class by the end of Year 6.",
                         "Tells an adult when he is worried, using his feelings scale."],
            "named_setting_urn": RIVERSIDE["urn"]}),
        _la_event(BEN, 24, "ehc_annual_review", "2025-11-24T12:00:00+00:00",
                  {"held_on": "2025-11-17", "outcome": "amend", "for_phase_transfer": True,
                   "parent_carer_views": "Parents want Hillcrest named and SaLT to continue."}),
        _la_event(BEN, 25, "ehc_plan_amended", "2026-02-10T12:00:00+00:00", {
            "amended_on": "2026-02-10", "for_phase_transfer": True,
            "named_setting_urn": HILLCREST["urn"],
            "summary": "Section I names Hillcrest Academy from September 2026; transition visits added."}),
    ]


def _ella_la() -> list[dict[str, Any]]:
    """A parent's request for Ella that Bristol declined, four days after the 6 weeks: a
    late decision, and a request that is not overdue for ever."""
    return [
        _la_event(ELLA, 20, "ehc_request_received", "2025-10-06T12:00:00+01:00",
                  {"received_on": "2025-10-06", "requested_by": "parent"}),
        _la_event(ELLA, 21, "ehc_assessment_decision", "2025-11-21T12:00:00+00:00",
                  {"decided_on": "2025-11-21", "decision": "not_assess",
                   "reason": "Needs can be met through SEN support; review in the spring term."}),
    ]


def _amira() -> list[dict[str, Any]]:
    """SEN support at Oakfield, then an in-year move to Riverside."""
    return [
        _event(AMIRA, 1, "concern_raised", "2024-10-08T15:40:00+01:00", OAKFIELD, "class teacher",
               "Miss L. Hart", {"raised_by": "teacher", "areas_of_need": ["SPLD"],
               "summary": "Reading well below peers; reverses letters; avoids writing tasks."}),
        _event(AMIRA, 2, "assessment_completed", "2024-11-20T11:00:00+00:00", OAKFIELD, "SENCO",
               SENCO_OAKFIELD, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [{"code": "SPLD", "rank": 1}], "outcome": "sen_support",
               "summary": "Dyslexia screener indicates a moderate-to-high risk profile."}),
        _event(AMIRA, 3, "plan_reviewed", "2025-02-10T16:00:00+00:00", OAKFIELD, "SENCO",
               SENCO_OAKFIELD, {"plan_kind": "sen_support_plan", "targets": [
                   {"description": "Read 40 high-frequency words by sight", "progress": "partly_met"},
                   {"description": "Write three sentences independently", "progress": "not_met"}],
               "provision": [_provision("Toe by Toe phonics, 1:1 with TA", "intervention",
                                        "3 x 15 min weekly", "2024-11-25"),
                             _provision("Coloured overlay and word mat", "equipment", "daily",
                                        "2024-11-25")],
               "what_worked": "Short daily 1:1 sessions; overlays reduced visual stress.",
               "parent_carer_views": "Mum reports Amira is less anxious about reading at home.",
               "pupil_views": "I like the blue overlay. Writing is still hard.",
               "decision": "continue", "next_review_due": "2025-06-16"}),
        _event(AMIRA, 4, "plan_reviewed", "2025-06-16T16:00:00+01:00", OAKFIELD, "SENCO",
               SENCO_OAKFIELD, {"plan_kind": "sen_support_plan", "targets": [
                   {"description": "Read 40 high-frequency words by sight", "progress": "met"},
                   {"description": "Write three sentences independently", "progress": "partly_met"}],
               "provision": [_provision("Toe by Toe phonics, 1:1 with TA", "intervention",
                                        "3 x 15 min weekly", "2024-11-25"),
                             _provision("Touch-typing programme", "intervention", "2 x 20 min weekly",
                                        "2025-06-23")],
               "what_worked": "Phonics 1:1 worked; typing motivates her to write.",
               "parent_carer_views": "Parents want the typing to continue at home.",
               "decision": "continue", "next_review_due": "2025-10-13"}),
        _event(AMIRA, 5, "plan_reviewed", "2025-10-13T16:00:00+01:00", OAKFIELD, "SENCO",
               SENCO_OAKFIELD, {"plan_kind": "sen_support_plan", "targets": [
                   {"description": "Write a paragraph of five sentences with a word bank",
                    "progress": "partly_met"}],
               "provision": [_provision("Touch-typing programme", "intervention",
                                        "2 x 20 min weekly", "2025-06-23"),
                             _provision("TA support for extended writing", "in_class_support",
                                        "English lessons", "2025-09-08")],
               "what_worked": "Word banks and typing; praise for effort rather than accuracy.",
               "parent_carer_views": "Family moving house in the winter; worried about losing support.",
               "pupil_views": "I can type faster than I write now.",
               "decision": "continue", "next_review_due": "2026-01-26"}),
        # A parent's worry about anxiety, then a speech screen that found nothing: the
        # screen looked at SLCN, not SEMH, so the worry is still open when she moves.
        _event(AMIRA, 8, "concern_raised", "2025-09-15T15:30:00+01:00", OAKFIELD, "SENCO",
               SENCO_OAKFIELD, {"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
               "summary": "Parents report anxiety before school and trouble sleeping."}),
        _event(AMIRA, 9, "assessment_completed", "2025-10-01T11:00:00+01:00", OAKFIELD, "SENCO",
               SENCO_OAKFIELD, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [], "outcome": "no_sen", "areas_assessed": ["SLCN"],
               "summary": "Speech and language screen: within the expected range."}),
        _event(AMIRA, 6, "pupil_moved", "2025-12-01T09:30:00+00:00", OAKFIELD, "admissions officer",
               None, {"destination": {"kind": "school", "urn": RIVERSIDE["urn"]},
               "move_kind": "in_year", "effective_date": "2026-01-12",
               "admissions_reference": "IYA-2025-0412"}),
    ]


BEN_CONCERN_IN_ERROR = "Walks with a limp in PE; possible coordination difficulty."
"""A concern Riverside recorded about Ben in error: it must not be in his amended packet."""
BEN_RETRACTION = 10
"""The `n` of Riverside's retraction of that concern (`later_events`)."""


def _ben() -> list[dict[str, Any]]:
    """An EHC plan at Riverside, then the move to secondary school (Hillcrest)."""
    return [
        _event(BEN, 1, "concern_raised", "2024-09-30T15:10:00+01:00", RIVERSIDE, "SENCO", SENCO_RIVERSIDE,
               {"raised_by": "parent_carer", "areas_of_need": ["SLCN"],
                "summary": "Parent reports Ben struggles to follow instructions and find words."}),
        _event(BEN, 2, "assessment_completed", "2024-12-05T10:00:00+00:00", RIVERSIDE, "SENCO",
               SENCO_RIVERSIDE, {"assessor_role": "speech_and_language_therapist",
               "assessment_kind": "specialist", "identified_needs": [{"code": "SLCN", "rank": 1}],
               "outcome": "request_ehc_needs_assessment",
               "summary": "Severe receptive and expressive language disorder; SaLT recommends EHC needs assessment."}),
        _event(BEN, 3, "assessment_completed", "2025-05-20T14:00:00+01:00", RIVERSIDE, "SENCO",
               SENCO_RIVERSIDE, {"assessor_role": "educational_psychologist",
               "assessment_kind": "ehc_needs_assessment",
               "identified_needs": [{"code": "SLCN", "rank": 1}, {"code": "SEMH", "rank": 2}],
               "outcome": "ehc_plan_issued",
               "summary": "EHC plan issued by the local authority: speech and language therapy and emotional support."}),
        _event(BEN, 4, "plan_reviewed", "2025-11-17T15:30:00+00:00", RIVERSIDE, "SENCO", SENCO_RIVERSIDE,
               {"plan_kind": "ehc_plan", "targets": [
                   {"description": "Follow two-step instructions in class", "progress": "met"},
                   {"description": "Use a feelings scale to ask for help", "progress": "partly_met"}],
                "provision": [_provision("Speech and language therapy", "specialist_input",
                                         "weekly, 45 min", "2025-06-02"),
                              _provision("Visual timetable and now/next board", "equipment",
                                         "daily", "2025-06-02"),
                              _provision("ELSA emotional literacy sessions", "intervention",
                                         "weekly, 30 min", "2025-09-15")],
                "what_worked": "Visual supports and pre-teaching vocabulary before lessons.",
                "parent_carer_views": "Parents want the SaLT input to continue at secondary.",
                "pupil_views": "I like knowing what comes next.",
                "decision": "continue", "next_review_due": "2026-11-16"}),
        _event(BEN, 5, "concern_raised", "2026-03-02T15:20:00+00:00", RIVERSIDE, "class teacher",
               "Mr S. Ahmed", {"raised_by": "teacher", "areas_of_need": ["ASD"],
               "summary": "Distress at changes of routine and in the lunch hall; possible social communication difference."}),
        # Referred for an autism assessment: still waiting when he moves on.
        _event(BEN, 8, "assessment_completed", "2026-03-20T10:00:00+00:00", RIVERSIDE, "SENCO",
               SENCO_RIVERSIDE, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [], "outcome": "refer_to_specialist",
               "areas_assessed": ["ASD"], "addresses_concerns": [event_id(BEN, 5)],
               "referred_to": "Community paediatrics (autism pathway)",
               "summary": "Referred for a social communication assessment."}),
        # Recorded in error (Riverside withdraws it later, after his packet went).
        _event(BEN, 9, "concern_raised", "2026-03-24T15:45:00+00:00", RIVERSIDE, "class teacher",
               "Mr S. Ahmed", {"raised_by": "teacher", "areas_of_need": ["PD"],
               "summary": BEN_CONCERN_IN_ERROR}),
        _event(BEN, 6, "pupil_moved", "2026-04-16T09:00:00+01:00", RIVERSIDE, "admissions officer",
               None, {"destination": {"kind": "school", "urn": HILLCREST["urn"]},
               "move_kind": "phase_transfer", "effective_date": "2026-09-01"}),
    ]


def _chloe() -> list[dict[str, Any]]:
    """An EHC plan at Hillcrest, then college at 16 (the post-16 policy): Chloe agreed
    to share her history with the college, so Northgate gets the full post-16 packet."""
    return [
        _event(CHLOE, 10, "concern_raised", "2021-10-05T15:00:00+01:00", HILLCREST, "SENCO",
               SENCO_HILLCREST, {"raised_by": "previous_setting", "areas_of_need": ["ASD", "SLCN"],
               "summary": "Primary school reports autism diagnosis (2019) and anxiety at transition."}),
        _event(CHLOE, 11, "assessment_completed", "2022-01-18T11:00:00+00:00", HILLCREST, "SENCO",
               SENCO_HILLCREST, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [{"code": "ASD", "rank": 1}, {"code": "SLCN", "rank": 2}],
               "outcome": "request_ehc_needs_assessment",
               "summary": "Needs exceed what SEN support can meet; school requests an EHC needs assessment."}),
        _event(CHLOE, 12, "assessment_completed", "2022-07-05T12:00:00+01:00", HILLCREST, "SENCO",
               SENCO_HILLCREST, {"assessor_role": "educational_psychologist",
               "assessment_kind": "ehc_needs_assessment",
               "identified_needs": [{"code": "ASD", "rank": 1}, {"code": "SLCN", "rank": 2}],
               "outcome": "ehc_plan_issued",
               "summary": "EHC plan issued by the local authority, 24 weeks after the request."}),
        _event(CHLOE, 13, "plan_reviewed", "2023-06-20T14:00:00+01:00", HILLCREST, "SENCO", SENCO_HILLCREST,
               {"plan_kind": "ehc_plan", "targets": [
                   {"description": "Use the exit pass instead of leaving without telling staff",
                    "progress": "met"}],
                "provision": [_provision("Quiet room access and exit pass", "in_class_support",
                                         "as needed", "2022-09-05")],
                "what_worked": "Exit pass; a named key adult.",
                "parent_carer_views": "Fewer calls home this year.",
                "decision": "continue", "next_review_due": "2024-06-19"}),
        _event(CHLOE, 1, "assessment_completed", "2024-09-20T12:00:00+01:00", HILLCREST, "SENCO",
               SENCO_HILLCREST, {"assessor_role": "educational_psychologist",
               "assessment_kind": "ehc_needs_assessment",
               "identified_needs": [{"code": "ASD", "rank": 1}, {"code": "SLCN", "rank": 2}],
               "outcome": "ehc_plan_issued",
               "summary": "EHC plan in place since Year 7; reassessed on entry to Key Stage 4."}),
        _event(CHLOE, 2, "plan_reviewed", "2025-06-10T14:00:00+01:00", HILLCREST, "SENCO", SENCO_HILLCREST,
               {"plan_kind": "ehc_plan", "targets": [
                   {"description": "Attend all GCSE lessons with a quiet exit pass", "progress": "met"},
                   {"description": "Complete mock exams in a separate room", "progress": "met"}],
                "provision": [_provision("Quiet room access and exit pass", "in_class_support",
                                         "as needed", "2023-09-04"),
                              _provision("Exam access arrangements: 25% extra time, separate room",
                                         "other", "all exams", "2024-11-01")],
                "what_worked": "Predictable routines; advance warning of changes by email.",
                "parent_carer_views": "Parents ask for a transition plan to college.",
                "pupil_views": "I want to study animal care at college.",
                "decision": "continue", "next_review_due": "2026-02-09"}),
        _event(CHLOE, 3, "plan_reviewed", "2026-02-09T14:00:00+00:00", HILLCREST, "SENCO", SENCO_HILLCREST,
               {"plan_kind": "ehc_plan", "targets": [
                   {"description": "Visit college twice before the summer", "progress": "partly_met"}],
                "provision": [_provision("Quiet room access and exit pass", "in_class_support",
                                         "as needed", "2023-09-04"),
                              _provision("Transition visits with key worker", "specialist_input",
                                         "termly", "2026-01-12")],
                "what_worked": "Meeting staff in advance; a written timetable for each visit.",
                "parent_carer_views": "Happy with the college choice; want the key worker to continue.",
                "pupil_views": "College is big but I liked the animal unit.",
                "decision": "continue", "next_review_due": "2027-02-08"}),
        _event(CHLOE, 4, "pupil_moved", "2026-05-15T10:00:00+01:00", HILLCREST, "SENCO", SENCO_HILLCREST,
               {"destination": {"kind": "post16_provider", "ukprn": NORTHGATE["ukprn"]},
                "move_kind": "post16", "effective_date": "2026-09-01",
                # Chloe is over compulsory school age: the decision to share is hers
                # (SEND Code of Practice 2015 chapter 8); she agreed at her transition review.
                "post16_sharing": {"lawful_basis": "consent", "agreement": "agreed",
                                   "agreed_by": "young_person", "agreed_on": "2026-05-12"}}),
    ]


def _dylan() -> list[dict[str, Any]]:
    """A move with no SEN history at all: the packet says so."""
    return [
        _event(DYLAN, 1, "pupil_moved", "2025-10-20T09:00:00+01:00", OAKFIELD, "admissions officer",
               None, {"destination": {"kind": "school", "urn": RIVERSIDE["urn"]},
               "move_kind": "in_year", "effective_date": "2025-11-03"}),
    ]


def _ella() -> list[dict[str, Any]]:
    """Stays at Hillcrest: a concern answered (no SEN), and a new one still open."""
    return [
        _event(ELLA, 1, "concern_raised", "2025-01-15T16:00:00+00:00", HILLCREST, "SENCO", SENCO_HILLCREST,
               {"raised_by": "parent_carer", "areas_of_need": ["MLD"],
                "summary": "Parent worried about slow progress in maths and memory for routines."}),
        _event(ELLA, 2, "assessment_completed", "2025-03-04T11:00:00+00:00", HILLCREST, "SENCO",
               SENCO_HILLCREST, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [], "outcome": "no_sen",
               "summary": "Cognitive screening in the average range; quality-first teaching to continue."}),
        _event(ELLA, 3, "concern_raised", "2025-11-04T15:45:00+00:00", HILLCREST, "form tutor",
               "Mr P. Lowe", {"raised_by": "teacher", "areas_of_need": ["SEMH"],
               "summary": "Withdrawn in lessons, attendance dropping since September."}),
    ]


def _farhan() -> list[dict[str, Any]]:
    """Stays at Riverside: speech support that worked and ceased."""
    return [
        _event(FARHAN, 1, "concern_raised", "2024-11-12T15:30:00+00:00", RIVERSIDE, "class teacher",
               "Mrs A. Novak", {"raised_by": "teacher", "areas_of_need": ["SLCN"],
               "summary": "Speech hard to understand; rarely speaks in class."}),
        _event(FARHAN, 2, "assessment_completed", "2025-01-20T10:00:00+00:00", RIVERSIDE, "SENCO",
               SENCO_RIVERSIDE, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [{"code": "SLCN", "rank": 1}], "outcome": "sen_support",
               "summary": "Speech sound delay; referred to NHS SaLT (waiting list 9 months)."}),
        _event(FARHAN, 3, "plan_reviewed", "2025-04-28T15:30:00+01:00", RIVERSIDE, "SENCO", SENCO_RIVERSIDE,
               {"plan_kind": "sen_support_plan", "targets": [
                   {"description": "Produce /k/ and /g/ at word level", "progress": "partly_met"}],
                "provision": [_provision("Talk Boost small group", "intervention",
                                         "3 x 20 min weekly", "2025-02-03", "2025-07-18")],
                "what_worked": "Small group with peers he knows.", "decision": "continue",
                "next_review_due": "2025-07-14"}),
        _event(FARHAN, 4, "plan_reviewed", "2025-07-14T15:30:00+01:00", RIVERSIDE, "SENCO", SENCO_RIVERSIDE,
               {"plan_kind": "sen_support_plan", "targets": [
                   {"description": "Produce /k/ and /g/ at word level", "progress": "met"}],
                "provision": [], "what_worked": "Talk Boost; home practice sheets.",
                "parent_carer_views": "Parents see a big improvement.", "decision": "reduce",
                "next_review_due": "2025-12-08"}),
        _event(FARHAN, 5, "plan_reviewed", "2025-12-08T15:30:00+00:00", RIVERSIDE, "SENCO", SENCO_RIVERSIDE,
               {"plan_kind": "sen_support_plan", "targets": [],
                "provision": [], "what_worked": "Speech now age-appropriate.",
                "parent_carer_views": "Agree support can stop.", "pupil_views": "I like talking now.",
                "decision": "cease"}),
    ]


def _grace() -> list[dict[str, Any]]:
    """Leaves Riverside with no known destination (a lost pupil)."""
    return [
        _event(GRACE, 1, "concern_raised", "2025-09-22T15:30:00+01:00", RIVERSIDE, "class teacher",
               "Mrs A. Novak", {"raised_by": "teacher", "areas_of_need": ["SEMH"],
               "summary": "Frequent outbursts after lunch; finds it hard to settle after changes."}),
        _event(GRACE, 2, "assessment_completed", "2025-11-10T10:00:00+00:00", RIVERSIDE, "SENCO",
               SENCO_RIVERSIDE, {"assessor_role": "senco", "assessment_kind": "screening",
               "identified_needs": [{"code": "SEMH", "rank": 1}], "outcome": "sen_support",
               "summary": "Boxall profile shows difficulty with self-regulation."}),
        _event(GRACE, 3, "plan_reviewed", "2026-02-09T15:30:00+00:00", RIVERSIDE, "SENCO", SENCO_RIVERSIDE,
               {"plan_kind": "sen_support_plan", "targets": [
                   {"description": "Use the calm corner before an outburst", "progress": "partly_met"}],
                "provision": [_provision("Nurture group", "intervention", "daily, 30 min",
                                         "2025-11-17")],
                "what_worked": "Nurture group mornings; a visual calm-down plan.",
                "parent_carer_views": "Mum says mornings are calmer.",
                "decision": "continue", "next_review_due": "2026-05-18"}),
        _event(GRACE, 4, "pupil_moved", "2026-03-23T09:00:00+00:00", RIVERSIDE, "admissions officer",
               None, {"destination": {"kind": "unknown"}, "move_kind": "in_year",
               "effective_date": "2026-03-20"}),
    ]


HARRY_ERASURE_REASON = ("his parents' objection was upheld (UK GDPR Articles 21 and 17(1)(c)); "
                        "Oakfield keeps its own SEN file and the hub needs no copy while he stays")
HARRY_ERASURE_AUTHORISED_BY = "Severn Vale Trust DPO, ref DP-2026-014"


def _harry() -> list[dict[str, Any]]:
    """A pupil who stays, whose hub record his parents objected to: erased in the demo."""
    return [
        _event(HARRY, 1, "concern_raised", "2025-03-04T10:00:00+00:00", OAKFIELD, "class teacher",
               None, {"raised_by": "teacher", "areas_of_need": ["SEMH"],
                      "summary": "Anxious at the start of the day; hides under the table."}),
        _event(HARRY, 2, "plan_reviewed", "2025-06-16T15:30:00+01:00", OAKFIELD, "senco",
               SENCO_OAKFIELD, {
                   "plan_kind": "sen_support_plan",
                   "targets": [{"description": "Joins the class within 10 minutes of arriving",
                                "progress": "partly_met"}],
                   "provision": [_provision("Soft start with a named adult", "in_class_support",
                                            "daily", "2025-03-17")],
                   "what_worked": "A calm job to do on arrival.",
                   "parent_carer_views": "Mornings are easier at home too.",
                   "decision": "continue", "next_review_due": "2025-10-13"}),
    ]


def _invalid_review() -> dict[str, Any]:
    """A review with a misspelt field (`parent_carer_veiws`): ingest must refuse it."""
    return _event(FARHAN, 6, "plan_reviewed", "2026-02-02T15:30:00+00:00", RIVERSIDE, "SENCO",
                 SENCO_RIVERSIDE, {"plan_kind": "sen_support_plan", "targets": [], "provision": [],
                 "what_worked": "Monitoring only.", "parent_carer_veiws": "No concerns.",
                 "decision": "continue"})


def later_events() -> list[dict[str, Any]]:
    """Weeks later: Oakfield records an assessment it had not entered before Amira left,
    Riverside learns where Grace went, and Riverside withdraws the concern about Ben it
    had recorded in error (Hillcrest, which has his packet, gets an amendment)."""
    return [
        _event(AMIRA, 7, "assessment_completed", "2026-01-09T11:00:00+00:00", OAKFIELD, "SENCO",
               "Mrs J. Patel", {"assessor_role": "educational_psychologist",
               "assessment_kind": "specialist",
               "identified_needs": [{"code": "SPLD", "rank": 1}, {"code": "SLCN", "rank": 2}],
               "outcome": "sen_support",
               "summary": "EP report: dyslexia confirmed; word-finding difficulties; recommends pre-teaching vocabulary."}),
        _event(GRACE, 5, "pupil_moved", "2026-04-20T10:00:00+01:00", RIVERSIDE, "admissions officer",
               None, {"destination": {"kind": "school", "urn": KINGSWESTON["urn"]},
               "move_kind": "in_year", "effective_date": "2026-03-20",
               "admissions_reference": "IYA-2026-0133"}),
        _event(BEN, BEN_RETRACTION, "entry_retracted", "2026-05-05T09:15:00+01:00", RIVERSIDE,
               "SENCO", SENCO_RIVERSIDE, {"corrects_event_id": event_id(BEN, 9),
                                          "reason": "Recorded in error"}),
    ]


def impersonation() -> dict[str, Any]:
    """An event Riverside's system sends as if from Oakfield: the hub must refuse it."""
    return _event(BEN, 99, "concern_raised", "2026-02-03T10:00:00+00:00", OAKFIELD, "SENCO",
                  SENCO_RIVERSIDE, {"raised_by": "teacher", "areas_of_need": ["SEMH"],
                                    "summary": "Sent in Oakfield's name by another school."})


def later_lines() -> list[bytes]:
    return [json.dumps(e).encode() for e in later_events()]


INVALID_EVENT_ID = event_id(FARHAN, 6)

# Each move the scenario makes: (pupil, move event id, receiver).
MOVES = (
    (AMIRA, event_id(AMIRA, 6), "urn-131002"),
    (BEN, event_id(BEN, 6), "urn-137003"),
    (CHLOE, event_id(CHLOE, 4), "ukprn-10034567"),
    (DYLAN, event_id(DYLAN, 1), "urn-131002"),
    (GRACE, event_id(GRACE, 4), "lost-pupils.la-801"),  # Riverside is in LA 801
)
LATER_MOVES = ((GRACE, event_id(GRACE, 5), "urn-137004"),)


def scenario_lines() -> list[bytes]:
    return [json.dumps(e).encode() for e in scenario_events()]


def _receipt(packet: TransferPacketV1, status: str, at: str, reason: str | None = None,
             receiver: str | None = None) -> PacketReceiptV1:
    return PacketReceiptV1.model_validate({
        "packet_id": packet.packet_id, "receiver": receiver or packet.to_setting.receiver,
        "status": status, "reason": reason, "at": at})


def demo_receipts(packets: dict[UUID, TransferPacketV1]) -> list[PacketReceiptV1]:
    """Riverside receives and accepts Amira's packet, Hillcrest receives Ben's, Northgate
    accepts Chloe's; nobody answers for Dylan; Hillcrest wrongly acknowledges Amira's.
    Fixed times, so a second run adds nothing."""
    by_upn = {p.pupil.upn: p for p in packets.values()}
    amira, ben, chloe = by_upn[AMIRA.upn], by_upn[BEN.upn], by_upn[
        CHLOE.upn]
    return [
        _receipt(amira, "received", "2025-12-01T10:02:00+00:00"),
        _receipt(amira, "accepted", "2025-12-03T14:30:00+00:00"),
        _receipt(ben, "received", "2026-04-16T09:15:00+01:00"),
        _receipt(chloe, "accepted", "2026-05-18T11:00:00+01:00"),
        _receipt(amira, "accepted", "2025-12-04T09:00:00+00:00", receiver="urn-137003"),
    ]
