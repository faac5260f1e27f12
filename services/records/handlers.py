"""Pure mapping between records' contracts and its domain, one function per direction:
an accepted school event in; a stored history event out, as the read model's entry and
as the history topic's message."""

from __future__ import annotations

from contracts.accepted import AcceptedSchoolEventV1
from contracts.history import PupilHistoryEventV1
from contracts.inbound import INBOUND_EVENT, where_recorded
from services.records.domain import UPN, SchoolEventRecord, SENHistoryEvent
from services.shared.sen_record import HistoryEntry


def to_school_event_record(accepted: AcceptedSchoolEventV1) -> SchoolEventRecord:
    event = accepted.event
    return SchoolEventRecord(
        upn=UPN(event.pupil.upn),
        event_type=event.event_type,
        event_id=str(event.event_id),
        occurred_at=event.occurred_at,
        setting_urn=where_recorded(event),
        recorded_by_role=event.recorded_by.role,
        upn_is_temporary=accepted.upn_is_temporary,
        school_event=event.model_dump(mode="json", exclude_none=True),
    )


def to_history_entry(event: SENHistoryEvent) -> HistoryEntry:
    """A stored history event as the shared SEN read model sees it (replay, report,
    packet rebuild). The stored school event was validated at the edge, so it is read
    back trusted (no clock check)."""
    return HistoryEntry(
        upn=event.upn,
        version=event.originator_version,
        recorded_at=event.timestamp,
        upn_is_temporary=event.upn_is_temporary,
        event=INBOUND_EVENT.validate_python(event.school_event, context={"trusted": True}),
        event_hash=event.event_hash or None,
        previous_hash=event.previous_hash or None,
    )


def to_history_contract(event: SENHistoryEvent, notification_id: int) -> PupilHistoryEventV1:
    """A stored history event as relayed on `sen.pupil-history.v1`, at its position in
    the notification log."""
    entry = to_history_entry(event)
    return PupilHistoryEventV1(
        pupil_id=event.originator_id,
        upn=entry.upn,
        version=entry.version,
        notification_id=notification_id,
        recorded_at=entry.recorded_at,
        upn_is_temporary=entry.upn_is_temporary,
        event=entry.event,
        previous_hash=entry.previous_hash,
        event_hash=entry.event_hash,
    )
