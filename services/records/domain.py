"""A pupil's SEN history: the events it holds and the rule for adding one.

Domain layer: no I/O; imports only the standard library and eventsourcing.domain.
Guarantees: one stream per pupil (id = uuid5 of the UPN); events are only ever
appended; each says who recorded it, at which setting, and when it happened; an
`event_id` already in the history is never stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NewType
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEvent

UPN = NewType("UPN", str)
PupilId = NewType("PupilId", UUID)

_PUPIL_NAMESPACE = UUID("6f0f6c3e-2b7a-4c54-9a4f-5d1c0e9b1a10")


def pupil_id_for(upn: str) -> PupilId:
    """Deterministic stream id, so every service and tool finds the same pupil."""
    return PupilId(uuid5(_PUPIL_NAMESPACE, upn))


@dataclass(frozen=True)
class SENHistoryEvent(DomainEvent):
    """Something that happened to a pupil's SEN support, as recorded by a setting.

    `timestamp` (from DomainEvent) is when the hub recorded it; `occurred_at` is when it
    happened in school. `school_event` is the event exactly as the school system sent
    it (after validation), kept whole so that nothing a setting said is lost.
    """

    event_id: str
    occurred_at: datetime
    setting_urn: str
    recorded_by_role: str
    upn_is_temporary: bool
    school_event: dict[str, Any]


class ConcernRaised(SENHistoryEvent):
    pass


class AssessmentCompleted(SENHistoryEvent):
    pass


class PlanReviewed(SENHistoryEvent):
    pass


class PupilMoved(SENHistoryEvent):
    pass


EVENT_CLASSES: Mapping[str, type[SENHistoryEvent]] = {
    "concern_raised": ConcernRaised,
    "assessment_completed": AssessmentCompleted,
    "plan_reviewed": PlanReviewed,
    "pupil_moved": PupilMoved,
}
EVENT_TYPE_OF: Mapping[type[SENHistoryEvent], str] = {v: k for k, v in EVENT_CLASSES.items()}


@dataclass(frozen=True)
class PupilHistory:
    """What the history's rules need to know; the events themselves are the record."""

    id: PupilId
    version: int = 0
    event_ids: frozenset[str] = field(default_factory=frozenset)
    current_setting_urn: str | None = None


@dataclass(frozen=True)
class SchoolEventRecord:
    """A school event to be recorded, as the application hands it to the domain."""

    upn: UPN
    event_type: str
    event_id: str
    occurred_at: datetime
    setting_urn: str
    recorded_by_role: str
    upn_is_temporary: bool
    school_event: dict[str, Any]


class RecordsError(Exception):
    """Base class of the records domain's refusals."""


class UnknownEventType(RecordsError):
    """Raised when a school event's type has no history event (a contract mismatch)."""


def record_school_event(
    history: PupilHistory, event: SchoolEventRecord
) -> list[SENHistoryEvent]:
    """Decide: the history events a school event adds (none if it is already there)."""
    if event.event_id in history.event_ids:
        return []
    try:
        event_class = EVENT_CLASSES[event.event_type]
    except KeyError:
        raise UnknownEventType(event.event_type) from None
    return [
        event_class(
            originator_id=history.id,
            originator_version=history.version + 1,
            timestamp=event_class.create_timestamp(),
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            setting_urn=event.setting_urn,
            recorded_by_role=event.recorded_by_role,
            upn_is_temporary=event.upn_is_temporary,
            school_event=event.school_event,
        )
    ]


def evolve(history: PupilHistory, event: SENHistoryEvent) -> PupilHistory:
    moved_to = None
    if isinstance(event, PupilMoved):
        destination = event.school_event["payload"]["destination"]
        moved_to = destination.get("urn")
    return replace(
        history,
        version=event.originator_version,
        event_ids=history.event_ids | {event.event_id},
        current_setting_urn=moved_to if isinstance(event, PupilMoved) else event.setting_urn,
    )


def project_pupil_history(
    history: PupilHistory | None, events: Iterable[SENHistoryEvent]
) -> PupilHistory | None:
    """Rebuild the state from stored events (the repository's projector function)."""
    for event in events:
        if history is None:
            history = PupilHistory(id=PupilId(event.originator_id))
        history = evolve(history, event)
    return history
