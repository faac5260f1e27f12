"""The pupil's append-only SEN history: the decide rule and the application (in memory)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.domain import (
    AssessmentCompleted,
    ConcernRaised,
    EventIdConflict,
    PupilHistory,
    PupilMoved,
    content_digest,
    pupil_id_for,
    record_school_event,
)
from services.records.handlers import to_history_contract, to_school_event_record
from tests.factories import school_event


def accepted(event: dict[str, object]) -> AcceptedSchoolEventV1:
    return AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=SCHOOL_EVENT.validate_python(event),
    )


def at(offset: int) -> ConsumedPosition:
    return ConsumedPosition("sen.accepted.v1", 0, offset)


def test_a_new_event_is_appended_at_the_next_version() -> None:
    history = PupilHistory(id=pupil_id_for("H801200001001"))
    [event] = record_school_event(history, to_school_event_record(accepted(school_event())))
    assert isinstance(event, ConcernRaised)
    assert event.originator_version == 1
    assert event.setting_urn == "100001" and event.recorded_by_role == "SENCO"


def test_an_event_id_already_in_the_history_adds_nothing() -> None:
    record = to_school_event_record(accepted(school_event()))
    history = PupilHistory(id=pupil_id_for(record.upn), version=3,
                           event_ids={record.event_id: content_digest(record.school_event)})
    assert record_school_event(history, record) == []


def test_an_event_id_reused_for_other_content_is_refused_with_both_digests() -> None:
    record = to_school_event_record(accepted(school_event()))
    history = PupilHistory(id=pupil_id_for(record.upn), version=3,
                           event_ids={record.event_id: "0" * 64})
    with pytest.raises(EventIdConflict) as refused:
        record_school_event(history, record)
    assert "stored content SHA-256 " + "0" * 64 in str(refused.value)
    assert content_digest(record.school_event) in str(refused.value)


def test_pupil_ids_are_deterministic_per_upn() -> None:
    assert pupil_id_for("H801200001001") == pupil_id_for("H801200001001")
    assert pupil_id_for("H801200001001") != pupil_id_for("B801200005001")


def test_the_application_keeps_each_event_once_whatever_is_redelivered() -> None:
    app = RecordsApplication()
    concern = to_school_event_record(accepted(school_event()))
    assessment = to_school_event_record(accepted(school_event("assessment_completed")))
    move = to_school_event_record(accepted(school_event("pupil_moved")))

    # Record two events, then the same positions again (a redelivery after a crash).
    assert len(app.record_school_events([(concern, at(0)), (assessment, at(1))])) == 2
    assert app.record_school_events([(concern, at(0)), (assessment, at(1))]) == []
    # The same school event sent again at a new offset changes nothing either.
    assert app.record_school_events([(concern, at(2)), (move, at(3))])[0].event_id == move.event_id

    events = app.history_events("H801200001001")
    assert [type(e) for e in events] == [ConcernRaised, AssessmentCompleted, PupilMoved]
    assert [e.originator_version for e in events] == [1, 2, 3]
    assert app.history_of(pupil_id_for("H801200001001")).current_setting_urn == "100002"


def test_stored_events_map_back_to_the_history_contract_unchanged() -> None:
    app = RecordsApplication()
    original = school_event("plan_reviewed")
    app.record_school_events([(to_school_event_record(accepted(original)), at(0))])
    [event] = app.history_events("H801200001001")
    message = to_history_contract(event, notification_id=1)
    assert message.version == 1 and message.upn == "H801200001001"
    assert message.event == SCHOOL_EVENT.validate_python(original)


def test_the_outbox_relay_position_moves_forward() -> None:
    app = RecordsApplication()
    app.record_school_events([(to_school_event_record(accepted(school_event())), at(0))])
    assert app.relayed_up_to() == 0
    [notification] = app.notifications(after=0, limit=10)
    app.mark_relayed(notification.id)
    assert app.relayed_up_to() == notification.id
    assert app.notifications(after=app.relayed_up_to(), limit=10) == []
