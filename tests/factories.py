"""Test data builders: valid school events, pupils and random UPNs.

They live apart from the conftest files, which pytest loads for their fixtures: a test
imports a builder like any other module, as CP's tests/random_refs.py does.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.identifiers import upn_check_letter
from contracts.inbound import INBOUND_EVENT
from services.shared.sen_record import HistoryEntry


def random_upn() -> str:
    body = f"801{uuid.uuid4().int % 10**9:09d}"
    return upn_check_letter(body) + body


def school_event(event_type: str = "concern_raised", **changes: Any) -> dict[str, Any]:
    """A valid inbound event of the given type; keyword arguments replace top-level fields."""
    payloads: dict[str, dict[str, Any]] = {
        "concern_raised": {"raised_by": "teacher", "areas_of_need": ["SPLD"],
                           "summary": "Reading well below peers."},
        "assessment_completed": {"assessor_role": "senco", "assessment_kind": "screening",
                                 "identified_needs": [{"code": "SPLD", "rank": 1}],
                                 "outcome": "sen_support", "summary": "Dyslexia screener."},
        "plan_reviewed": {"plan_kind": "sen_support_plan",
                          "targets": [{"description": "Read 40 words", "progress": "met"}],
                          "provision": [{"description": "Phonics 1:1", "kind": "intervention",
                                         "frequency": "3 x weekly", "started_on": "2025-01-06"}],
                          "what_worked": "Short daily sessions.",
                          "parent_carer_views": "Happier at home.", "decision": "continue",
                          "next_review_due": "2025-06-01"},
        "pupil_moved": {"destination": {"kind": "school", "urn": "100002"},
                        "move_kind": "in_year", "effective_date": "2025-11-10"},
    }
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2025-03-01T10:00:00+00:00",
        "source": {"urn": "100001", "system": "SIMS"},
        "recorded_by": {"role": "SENCO", "name": "Mrs J. Patel"},
        "pupil": {"upn": "H801200001001", "given_name": "Amira", "family_name": "Khan",
                  "date_of_birth": "2016-05-14"},
        "payload": copy.deepcopy(payloads[event_type]),
    }
    event.update(copy.deepcopy(changes))
    return event


def post16_sharing(basis: str = "consent", agreement: str | None = "agreed",
                   agreed_by: str | None = "young_person", agreed_on: str | None = "2025-06-02",
                   lacks_capacity: bool = False) -> dict[str, Any]:
    """A `pupil_moved` payload's `post16_sharing` block (`contracts.post16`); by default
    the young person agreed. With another basis than consent, the agreement is left out."""
    block: dict[str, Any] = {"lawful_basis": basis}
    if basis == "consent":
        block.update({k: v for k, v in (("agreement", agreement), ("agreed_by", agreed_by),
                                        ("agreed_on", agreed_on)) if v is not None})
    if lacks_capacity:
        block["young_person_lacks_capacity"] = True
    return block


def correction(event_type: str, of: dict[str, Any], *, reason: str = "Recorded in error.",
               replacement: dict[str, Any] | None = None,
               correct_pupil: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A setting's correction of the inbound event `of` (`entry_retracted`,
    `entry_corrected` with `replacement`, `entry_misfiled` with `correct_pupil`): from
    the same setting, about the same pupil, recorded a day later than `of` by default."""
    payload: dict[str, Any] = {"corrects_event_id": of["event_id"], "reason": reason}
    if replacement is not None:
        payload["replacement"] = copy.deepcopy(replacement)
    if correct_pupil is not None:
        payload["correct_pupil"] = copy.deepcopy(correct_pupil)
    event = school_event("concern_raised", source=of["source"], pupil=of["pupil"],
                         occurred_at="2026-01-20T09:00:00+00:00", payload=payload)
    event["event_type"] = event_type
    event.update(copy.deepcopy(changes))
    return event


def pupil(upn: str, given: str, **more: str) -> dict[str, str]:
    return {"upn": upn, "given_name": given, "family_name": "Test", "date_of_birth": "2014-02-03",
            **more}


LA_PAYLOADS: dict[str, dict[str, Any]] = {
    "ehc_request_received": {"received_on": "2025-01-13", "requested_by": "school",
                             "requesting_urn": "100001"},
    "ehc_assessment_decision": {"decided_on": "2025-02-17", "decision": "assess"},
    "ehc_plan_decision": {"decided_on": "2025-04-28", "decision": "issue"},
    "ehc_plan_issued": {
        "issued_on": "2025-05-26", "maintaining_la": "801",
        "case_officer": {"role": "EHC case officer", "work_email": "ehc.team@bristol.example.gov.uk"},
        "needs": [{"code": "ASD", "rank": 1}, {"code": "SLCN", "rank": 2}],
        "provision": [{"description": "Speech and language therapy", "kind": "specialist_input",
                       "frequency": "fortnightly", "started_on": "2025-06-02"}],
        "outcomes": ["Uses a visual timetable independently by the end of Year 6."],
        "named_setting_urn": "100001"},
    "ehc_annual_review": {"held_on": "2026-05-11", "outcome": "maintain"},
    "ehc_plan_amended": {"amended_on": "2026-02-02", "summary": "Section I names the secondary school.",
                         "named_setting_urn": "100002", "for_phase_transfer": True},
    "ehc_plan_ceased": {"ceased_on": "2026-07-20", "reason": "no_longer_necessary"},
    "ehc_plan_transferred": {"transferred_on": "2026-09-01", "to_la": "803"},
}


def la_event(event_type: str = "ehc_request_received", la: str = "801",
             **changes: Any) -> dict[str, Any]:
    """A valid local authority event (`contracts.la_events`) of the given type; keyword
    arguments replace top-level fields; `payload` is merged into the default payload."""
    payload = {**copy.deepcopy(LA_PAYLOADS[event_type]), **changes.pop("payload", {})}
    event = school_event("concern_raised", source={"la": la, "system": "Capita One"},
                         recorded_by={"role": "EHC case officer"}, payload=payload)
    event["event_type"] = event_type
    event.update(copy.deepcopy(changes))
    return event


def history_entries(*events: dict[str, Any], upn: str = "H801200001001",
                    recorded_at: datetime = datetime(2026, 1, 1, tzinfo=UTC),
                    ) -> list[HistoryEntry]:
    """Inbound events (school or LA) as a pupil's history, versions 1, 2, ... in order,
    each with a hash so packet builders can name the chain head."""
    return [HistoryEntry(upn=upn, version=n, recorded_at=recorded_at, upn_is_temporary=False,
                         event=INBOUND_EVENT.validate_python(e, context={"trusted": True}),
                         event_hash=f"{n:064x}")
            for n, e in enumerate(events, start=1)]
