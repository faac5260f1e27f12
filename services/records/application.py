"""Records use cases: record school events in pupils' histories; read a history back.

Application layer: eventsourcing on PostgreSQL (or in memory with no env, for unit
tests). Exactly-once effects: the Kafka position is stored as an eventsourcing Tracking
record in the same transaction as the new history events, and positions already
recorded are skipped; an `event_id` already in a pupil's history adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Notification, ProcessRecorder, Tracking

from services.records.domain import (
    PupilHistory,
    PupilId,
    SchoolEventRecord,
    SENHistoryEvent,
    project_pupil_history,
    pupil_id_for,
    record_school_event,
)


@dataclass(frozen=True)
class ConsumedPosition:
    """A Kafka position: the tracking key is `topic#partition`, the id is offset + 1."""

    topic: str
    partition: int
    offset: int

    @property
    def tracking(self) -> Tracking:
        # Offsets start at 0; tracking ids are positive, so store the next offset.
        return Tracking(f"{self.topic}#{self.partition}", self.offset + 1)


class RecordsApplication(Application[UUID]):
    name = "records"

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        return cast(ProcessRecorder, self.recorder)

    def history_of(self, pupil_id: PupilId) -> PupilHistory:
        try:
            state = self.repository.get(pupil_id, projector_func=project_pupil_history)
        except AggregateNotFoundError:
            return PupilHistory(id=pupil_id)
        return state

    def record_school_events(
        self, batch: Sequence[tuple[SchoolEventRecord, ConsumedPosition]]
    ) -> list[SENHistoryEvent]:
        """Record one partition's consumed events in one transaction with their position.

        Events at positions already recorded are skipped (a redelivery after a crash).
        """
        if not batch:
            return []
        positions = {position.tracking.application_name for _, position in batch}
        if len(positions) != 1:
            raise ValueError("a batch holds one partition's events")
        (tracking_key,) = positions
        done = self.process_recorder.max_tracking_id(tracking_key) or 0
        fresh = [(e, p) for e, p in batch if p.tracking.notification_id > done]
        if not fresh:
            return []
        histories: dict[PupilId, PupilHistory] = {}
        new_events: list[SENHistoryEvent] = []
        for school_event, _ in fresh:
            pupil_id = pupil_id_for(school_event.upn)
            history = histories.get(pupil_id) or self.history_of(pupil_id)
            decided = record_school_event(history, school_event)
            state = project_pupil_history(history, decided)
            assert state is not None
            histories[pupil_id] = state
            new_events.extend(decided)
        last = max((p for _, p in fresh), key=lambda p: p.offset)
        self.events.put(new_events, tracking=last.tracking)
        return new_events

    def history_events(self, upn: str) -> list[SENHistoryEvent]:
        """The pupil's whole history, in the order it was recorded."""
        return cast(
            list[SENHistoryEvent], list(self.events.get(pupil_id_for(upn)))
        )

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def to_history_event(self, notification: Notification) -> SENHistoryEvent:
        return cast(SENHistoryEvent, self.mapper.to_domain_event(notification))

    RELAY_KEY = "relay#pupil-history"

    def relayed_up_to(self) -> int:
        """The last notification id relayed to Kafka (0 when none)."""
        return self.process_recorder.max_tracking_id(self.RELAY_KEY) or 0

    def mark_relayed(self, notification_id: int) -> None:
        self.process_recorder.insert_tracking(Tracking(self.RELAY_KEY, notification_id))
