"""Pure mapping between records' contracts and its domain, one function per direction:
an accepted school event in; a stored history event out, as the read model's entry and
as the history topic's message."""

from __future__ import annotations

from uuid import UUID

from contracts.accepted import AcceptedSchoolEventV1
from contracts.history import PupilHistoryEventV1, RefiledFromV1
from contracts.identifiers import check_upn
from contracts.inbound import INBOUND_EVENT, InboundEvent, where_recorded
from contracts.school_events import (
    CORRECTABLE_TYPES,
    EntryCorrectedV1,
    EntryMisfiledV1,
    EntryRetractedV1,
)
from services.records.domain import (
    UPN,
    Correction,
    EntryRefiled,
    SchoolEventRecord,
    SENHistoryEvent,
)
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
        correction=correction_of(event),
    )


def correction_of(event: InboundEvent) -> Correction | None:
    """What a correction event asks of the history, typed for the domain's rules."""
    if isinstance(event, EntryRetractedV1):
        return Correction(event.event_type, str(event.payload.corrects_event_id))
    if isinstance(event, EntryCorrectedV1):
        return Correction(event.event_type, str(event.payload.corrects_event_id),
                          replacement_type=CORRECTABLE_TYPES[type(event.payload.replacement)])
    if isinstance(event, EntryMisfiledV1):
        right = event.payload.correct_pupil
        return Correction(event.event_type, str(event.payload.corrects_event_id),
                          correct_pupil=right.model_dump(mode="json", exclude_none=True),
                          correct_upn_is_temporary=check_upn(right.upn))
    return None


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
        refiled_from=RefiledFromV1(
            pupil_id=UUID(event.refiled_from_pupil_id), version=event.refiled_from_version,
            misfiled_event_id=UUID(event.refiled_by_event_id))
        if isinstance(event, EntryRefiled) else None,
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
        refiled_from=entry.refiled_from,
    )
