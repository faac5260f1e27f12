"""Issue 15's batching, with no I/O: records' kept pupil states, the relay's wake-up,
and ingest publishing a batch together."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.ingest.entrypoint import build_broker
from services.records.application import (
    ConsumedPosition,
    PupilHistoryErased,
    RecordsApplication,
)
from services.records.current_state import CurrentStates
from services.records.domain import (
    EventIdConflict,
    PupilHistory,
    SchoolEventRecord,
    chain_hash,
    pupil_id_for,
)
from services.records.handlers import to_school_event_record
from services.shared.kafka import LINGER_MIN_BYTES, batch_consumer_options
from services.shared.pupil_keys import pupil_ref_for_upn
from services.shared.settings import HubSettings
from services.shared.tasks import PeriodicTask
from tests.factories import correction, pupil, random_upn, school_event

UPN = "H801200001001"


def accepted(event: dict[str, object]) -> AcceptedSchoolEventV1:
    return AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=SCHOOL_EVENT.validate_python(event))


def record(kind: str = "concern_raised", **changes: object) -> SchoolEventRecord:
    return to_school_event_record(accepted(school_event(kind, **changes)))


def at(offset: int) -> ConsumedPosition:
    return ConsumedPosition("sen.accepted.v1", 0, offset)


def test_a_batch_builds_on_the_kept_state_without_reading_the_stream() -> None:
    app = RecordsApplication()
    app.record_school_events([(record(), at(0))])
    reads: list[object] = []
    app.history_of = lambda pupil_id: reads.append(pupil_id)  # type: ignore[assignment,method-assign,return-value]
    [event] = app.record_school_events([(record("assessment_completed"), at(1))])
    assert reads == [] and event.originator_version == 2


def test_a_kept_state_behind_the_store_is_read_again() -> None:
    """As when another process wrote the pupil's history (a rebalance moved the
    partition): the kept state is one version behind, so the stream is read."""
    app = RecordsApplication()
    app.record_school_events([(record(), at(0))])
    pupil = pupil_id_for(UPN)
    stale = app.states.current(pupil, 1)
    assert stale is not None
    app.record_school_events([(record("assessment_completed"), at(1))])
    app.states.keep([stale])  # the state as it was before version 2
    [move] = app.record_school_events([(record("pupil_moved"), at(2))])
    second = app.history_events(UPN)[1]
    assert move.originator_version == 3 and move.previous_hash == chain_hash(second)


def test_a_failed_batch_keeps_no_state() -> None:
    app = RecordsApplication()
    concern = record()
    app.record_school_events([(concern, at(0))])
    before = app.states.current(pupil_id_for(UPN), 1)
    reused = record(event_id=concern.event_id, payload={
        "raised_by": "parent_carer", "areas_of_need": ["SEMH"], "summary": "Other content."})
    with pytest.raises(EventIdConflict):
        app.record_school_events([(record("assessment_completed"), at(1)), (reused, at(2))])
    assert app.states.current(pupil_id_for(UPN), 1) is before
    assert len(app.history_events(UPN)) == 1


def test_the_least_recently_used_state_is_forgotten_first() -> None:
    states = CurrentStates(capacity=2)
    a, b, c = (PupilHistory(id=pupil_id_for(random_upn()), version=1) for _ in range(3))
    states.keep([a, b])
    assert states.current(a.id, 1) is a  # a is now the most recently used
    states.keep([c])
    assert len(states) == 2 and states.current(b.id, 1) is None
    assert states.current(a.id, 1) is a and states.current(c.id, 1) is c
    assert CurrentStates(capacity=0).current(a.id, 1) is None


class Counting(PeriodicTask):
    def __init__(self) -> None:
        super().__init__(60.0, logging.getLogger("test"), "counting")
        self.rounds = 0

    async def once(self) -> bool:
        self.rounds += 1
        return False


async def test_a_woken_task_runs_at_once_not_at_the_end_of_its_interval() -> None:
    task = Counting()
    await task.start()
    await asyncio.sleep(0.05)
    assert task.rounds == 1
    task.wake()
    await asyncio.sleep(0.05)
    assert task.rounds == 2
    await task.stop()


async def test_ingest_publishes_a_batch_and_dead_letters_only_the_bad_message() -> None:
    settings = HubSettings(topic_namespace="unit.", kafka_security_protocol="PLAINTEXT")
    broker = build_broker(settings)
    accepted: list[bytes] = []
    rejected: list[bytes] = []

    @broker.subscriber(settings.topics.accepted)
    async def on_accepted(message: KafkaMessage) -> None:
        accepted.append(message.body)

    @broker.subscriber(settings.topics.rejected)
    async def on_rejected(message: KafkaMessage) -> None:
        rejected.append(message.body)

    events = [school_event(pupil={"upn": random_upn(), "given_name": "A", "family_name": "B",
                                  "date_of_birth": "2015-01-01"}) for _ in range(3)]
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            json.dumps(events[0]).encode(), b"{oops", json.dumps(events[1]).encode(),
            json.dumps(events[2]).encode(), topic=settings.topics.school_events)

    ids = [str(AcceptedSchoolEventV1.model_validate_json(a).event.event_id) for a in accepted]
    assert ids == [e["event_id"] for e in events]
    assert len(rejected) == 1 and json.loads(rejected[0])["reason"] == "not_json"


def test_a_misfiled_entry_is_not_moved_into_an_erased_pupils_kept_history() -> None:
    """The right pupil's state is kept (written recently), then their history is erased:
    the correction is refused as for any erased pupil, and their state is forgotten."""
    app = RecordsApplication()
    a, b = (pupil(random_upn(), name) for name in ("Ada", "Ben"))
    misfiled = school_event(pupil=a)
    app.record_school_events([(to_school_event_record(accepted(misfiled)), at(0)),
                              (to_school_event_record(accepted(school_event(pupil=b))), at(1))])
    right = pupil_id_for(b["upn"])
    assert app.states.current(right, 1) is not None
    app.keys.erase(pupil_ref_for_upn(b["upn"]), "DPO", "court order")
    move = correction("entry_misfiled", misfiled, correct_pupil=b)
    with pytest.raises(PupilHistoryErased, match="records nothing more"):
        app.record_school_events([(to_school_event_record(accepted(move)), at(2))])
    assert app.states.current(right, 1) is None
    assert len(app.history_events(a["upn"])) == 1


def test_a_consumer_lingers_for_fuller_batches_only_when_told_to() -> None:
    default = batch_consumer_options(HubSettings(topic_namespace="unit."), "records")
    assert (default["fetch_min_bytes"], default["fetch_max_wait_ms"]) == (1, 500)
    lingering = batch_consumer_options(
        HubSettings(topic_namespace="unit.", consumer_linger_ms=50), "records")
    assert (lingering["fetch_min_bytes"], lingering["fetch_max_wait_ms"]) == (LINGER_MIN_BYTES, 50)
    with pytest.raises(ValueError, match="consumer_linger_ms"):
        HubSettings(consumer_linger_ms=5_000)
