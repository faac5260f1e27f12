"""Pure mapping between records' contracts and its domain: accepted event in, history out."""

from __future__ import annotations

from contracts.accepted import AcceptedSchoolEventV1
from contracts.history import PupilHistoryEventV1
from contracts.school_events import SCHOOL_EVENT
from services.records.domain import UPN, SchoolEventRecord, SENHistoryEvent, pupil_id_for


def to_school_event_record(accepted: AcceptedSchoolEventV1) -> SchoolEventRecord:
    event = accepted.event
    return SchoolEventRecord(
        upn=UPN(event.pupil.upn),
        event_type=event.event_type,
        event_id=str(event.event_id),
        occurred_at=event.occurred_at,
        setting_urn=event.source.urn,
        recorded_by_role=event.recorded_by.role,
        upn_is_temporary=accepted.upn_is_temporary,
        school_event=event.model_dump(mode="json", exclude_none=True),
    )


def to_history_contract(event: SENHistoryEvent, notification_id: int) -> PupilHistoryEventV1:
    school_event = SCHOOL_EVENT.validate_python(event.school_event, context={"trusted": True})
    assert pupil_id_for(school_event.pupil.upn) == event.originator_id
    return PupilHistoryEventV1(
        pupil_id=event.originator_id,
        upn=school_event.pupil.upn,
        version=event.originator_version,
        notification_id=notification_id,
        recorded_at=event.timestamp,
        upn_is_temporary=event.upn_is_temporary,
        event=school_event,
        previous_hash=event.previous_hash or None,
        event_hash=event.event_hash or None,
    )
