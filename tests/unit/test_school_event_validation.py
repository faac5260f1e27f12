"""Every validation rule of the inbound contract v1, each with the error it gives."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.dead_letter import Problem, problems_from
from contracts.school_events import SCHOOL_EVENT
from contracts.storable import refuse_unstorable
from tests.factories import school_event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def problems(event: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ValidationError) as caught:
        SCHOOL_EVENT.validate_json(json.dumps(event), context={"now": NOW})
    return problems_from(caught.value)


@pytest.mark.parametrize("event_type", ["concern_raised", "assessment_completed",
                                        "plan_reviewed", "pupil_moved"])
def test_each_event_type_validates(event_type: str) -> None:
    event = SCHOOL_EVENT.validate_json(json.dumps(school_event(event_type)), context={"now": NOW})
    assert event.event_type == event_type


def edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return apply


DELETE = object()

CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str, str]] = [
    ("concern_raised", "missing event_type", edit("event_type", DELETE),
     "event_type", "event_type is missing"),
    ("concern_raised", "unknown event_type", edit("event_type", "plan_written"),
     "event_type", "event_type must be one of"),
    ("concern_raised", "unknown top-level field", edit("urgent", True),
     "urgent", "Extra inputs are not permitted"),
    ("plan_reviewed", "misspelt views field", edit("payload.parent_carer_veiws", "x"),
     "payload.parent_carer_veiws", "Extra inputs are not permitted"),
    ("concern_raised", "schema_version 2", edit("schema_version", 2),
     "schema_version", "Input should be 1"),
    ("concern_raised", "event_id not a UUID", edit("event_id", "42"),
     "event_id", "Input should be a valid UUID"),
    ("concern_raised", "occurred_at without offset", edit("occurred_at", "2025-03-01T10:00:00"),
     "occurred_at", "Input should have timezone info"),
    ("concern_raised", "occurred_at in the future",
     edit("occurred_at", (NOW + timedelta(days=1)).isoformat()),
     "occurred_at", "occurred_at is in the future"),
    ("concern_raised", "bad UPN check letter", edit("pupil.upn", "Z801200001001"),
     "pupil.upn", "the UPN check letter is 'Z' but the digits give 'H'"),
    ("concern_raised", "bad ULN", edit("pupil.uln", "9276308687"),
     "pupil.uln", "ULN check digit"),
    ("concern_raised", "URN of 5 digits", edit("source.urn", "10001"),
     "source.urn", "a URN is exactly 6 digits"),
    ("concern_raised", "impossible date of birth", edit("pupil.date_of_birth", "2016-02-30"),
     "pupil.date_of_birth", "Input should be a valid date"),
    ("concern_raised", "date of birth in the future", edit("pupil.date_of_birth", "2099-01-01"),
     "pupil.date_of_birth", "date of birth is in the future"),
    ("concern_raised", "blank given name", edit("pupil.given_name", "  "),
     "pupil.given_name", "at least 1 character"),
    ("concern_raised", "unknown need code", edit("payload.areas_of_need", ["DYSLEXIA"]),
     "payload.areas_of_need.0", "Input should be 'SPLD'"),
    ("concern_raised", "no areas of need", edit("payload.areas_of_need", []),
     "payload.areas_of_need", "at least 1 item"),
    ("concern_raised", "repeated area", edit("payload.areas_of_need", ["SPLD", "SPLD"]),
     "payload.areas_of_need", "an area of need may appear only once"),
    ("concern_raised", "unknown raised_by", edit("payload.raised_by", "headteacher"),
     "payload.raised_by", "Input should be 'teacher'"),
    ("assessment_completed", "duplicate ranks",
     edit("payload.identified_needs", [{"code": "SPLD", "rank": 1}, {"code": "MLD", "rank": 1}]),
     "payload.identified_needs", "each need must have a different rank"),
    ("assessment_completed", "no primary need",
     edit("payload.identified_needs", [{"code": "SPLD", "rank": 2}]),
     "payload.identified_needs", "one need must have rank 1"),
    ("assessment_completed", "sen_support without needs", edit("payload.identified_needs", []),
     "payload", "outcome sen_support needs at least one identified need"),
    ("assessment_completed", "unknown outcome", edit("payload.outcome", "diagnosed"),
     "payload.outcome", "Input should be 'no_sen'"),
    ("assessment_completed", "unknown assessor", edit("payload.assessor_role", "gp"),
     "payload.assessor_role", "Input should be 'senco'"),
    ("plan_reviewed", "unknown target progress",
     edit("payload.targets", [{"description": "x", "progress": "nearly"}]),
     "payload.targets.0.progress", "Input should be 'not_met'"),
    ("plan_reviewed", "provision ends before it starts",
     edit("payload.provision", [{"description": "x", "kind": "intervention", "frequency": "weekly",
                                 "started_on": "2025-02-01", "ended_on": "2025-01-01"}]),
     "payload.provision.0", "provision ended_on is before started_on"),
    ("plan_reviewed", "empty pupil views", edit("payload.pupil_views", ""),
     "payload.pupil_views", "left out, not sent empty"),
    ("plan_reviewed", "unknown decision", edit("payload.decision", "pause"),
     "payload.decision", "Input should be 'continue'"),
    ("pupil_moved", "unknown destination kind", edit("payload.destination", {"kind": "mars"}),
     "payload.destination.kind", "kind must be one of"),
    ("pupil_moved", "UKPRN not starting with 1",
     edit("payload.destination", {"kind": "post16_provider", "ukprn": "20034567"}),
     "payload.destination.ukprn", "starts with 1"),
    ("pupil_moved", "move to the sending school",
     edit("payload.destination", {"kind": "school", "urn": "100001"}),
     "", "cannot move to the school that is sending the event"),
    ("pupil_moved", "unknown move kind", edit("payload.move_kind", "expelled"),
     "payload.move_kind", "Input should be 'in_year'"),
]


@pytest.mark.parametrize(("event_type", "rule", "change", "path", "message"), CASES,
                         ids=[c[1] for c in CASES])
def test_invalid_events_are_refused_with_path_and_reason(
    event_type: str, rule: str, change: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    event = school_event(event_type)
    change(event)
    found = problems(event)
    assert any(p.path == path and message in p.message for p in found), found


def test_a_temporary_upn_is_accepted() -> None:
    event = school_event(pupil={"upn": "G80120000101A", "given_name": "A", "family_name": "B",
                                "date_of_birth": "2016-01-01"})
    assert SCHOOL_EVENT.validate_python(event).pupil.upn == "G80120000101A"


def test_absent_views_stay_absent_rather_than_empty() -> None:
    event = school_event("plan_reviewed")
    del event["payload"]["parent_carer_views"]
    review = SCHOOL_EVENT.validate_python(event)
    assert review.payload.parent_carer_views is None  # type: ignore[union-attr]
    assert review.payload.pupil_views is None  # type: ignore[union-attr]


def test_internal_readers_ignore_fields_they_do_not_know() -> None:
    event = school_event(added_later="by a newer producer")
    parsed = SCHOOL_EVENT.validate_python(event, extra="ignore")
    assert parsed.event_type == "concern_raised"


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(
    st.text(max_size=12), st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=4),
    st.integers(), st.none(), st.dictionaries(st.text(max_size=4), st.text(max_size=4)))))
def test_a_nul_is_refused_in_any_string_or_list_of_strings_and_nothing_else(
        data: dict[str, Any]) -> None:
    def stored_badly(value: Any) -> bool:
        texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        return any(isinstance(t, str) and "\x00" in t for t in texts)

    culprit = next((key for key, value in data.items() if stored_badly(value)), None)
    if culprit is None:
        assert refuse_unstorable(data) is data
    else:
        with pytest.raises(ValueError, match=f"^{re.escape(culprit)} holds a NUL character"):
            refuse_unstorable(data)


def test_a_nul_in_a_nested_field_is_named_where_it_is() -> None:
    event = school_event()
    event["recorded_by"]["name"] = "Mrs J.\x00 Patel"
    with pytest.raises(ValidationError, match="name holds a NUL character"):
        SCHOOL_EVENT.validate_python(event)
