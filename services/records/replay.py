"""Replaying a pupil's history on its two time axes: what the hub had recorded by an
instant (`as_known_at`), and what had happened by a day as known now (`as_of`).

Domain layer: no I/O; each is a projector the repository runs over the stored events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from services.records.domain import CORRECTIONS, PupilId, SENHistoryEvent


@dataclass(frozen=True)
class RecordedHistory:
    """A pupil's events as a replay selected them (the repository's projected state)."""

    pupil_id: PupilId
    events: tuple[SENHistoryEvent, ...] = ()


Projector = Callable[[RecordedHistory | None, Iterable[SENHistoryEvent]], RecordedHistory | None]


def as_known_at(instant: datetime) -> Projector:
    """Events the hub had recorded by `instant` (recording time: `timestamp`).

    Versions follow recording order, so this is always a prefix of the stream.
    """

    def project(state: RecordedHistory | None, events: Iterable[SENHistoryEvent]
                ) -> RecordedHistory | None:
        selected = []
        for event in events:
            if event.timestamp > instant:
                break
            selected.append(event)
        return _with_events(state, selected)

    return project


def as_of(day: date) -> Projector:
    """Events that had happened by the end of `day` (occurrence time), as known now:
    with every correction known now, whenever it was made."""

    def project(state: RecordedHistory | None, events: Iterable[SENHistoryEvent]
                ) -> RecordedHistory | None:
        first: SENHistoryEvent | None = None
        selected = []
        for event in events:
            first = first or event
            if event.occurred_at.date() <= day or isinstance(event, CORRECTIONS):
                selected.append(event)
        if state is None and first is not None and not selected:  # nothing by that day
            return RecordedHistory(PupilId(first.originator_id))
        return _with_events(state, selected)

    return project


def _with_events(state: RecordedHistory | None, selected: Sequence[SENHistoryEvent]
                 ) -> RecordedHistory | None:
    """`state` with `selected` after its events, made once (one tuple for a 200-event
    replay, not one copy per event); None while there is nothing to hold."""
    if not selected:
        return state
    pupil = state.pupil_id if state else PupilId(selected[0].originator_id)
    return RecordedHistory(pupil, (*(state.events if state else ()), *selected))
