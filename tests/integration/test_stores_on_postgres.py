"""Records' event store and transfers' projection on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_history_contract, to_school_event_record
from services.shared.settings import HubSettings
from services.transfers.application import RefusedReceipt, TransfersApplication
from services.transfers.domain import Receipt, WrongReceiver
from services.transfers.repository import ConsumedPosition as HistoryPosition
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.integration


@pytest.fixture
def records(scratch_db: HubSettings) -> RecordsApplication:
    # A database of this module's own: the e2e tests' services may be running on the
    # session's, and would publish (and mark) these packets too.
    return RecordsApplication(env=scratch_db.eventsourcing_env())


@pytest.fixture
def store(scratch_db: HubSettings) -> Iterator[TransfersApplication]:
    s = TransfersApplication.for_settings(scratch_db)
    yield s
    s.close()


def record_of(event: dict[str, object]) -> object:
    return to_school_event_record(AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=SCHOOL_EVENT.validate_python(event)))


def test_history_and_position_are_stored_together_and_redelivery_changes_nothing(
    records: RecordsApplication,
) -> None:
    upn = random_upn()
    pupil = {"upn": upn, "given_name": "Ben", "family_name": "Okafor",
             "date_of_birth": "2014-02-03"}
    concern = record_of(school_event(pupil=pupil))
    move = record_of(school_event("pupil_moved", pupil=pupil))
    topic = f"integration-{upn}"
    stored = records.record_school_events([(concern, ConsumedPosition(topic, 0, 0)),  # type: ignore[list-item]
                                           (move, ConsumedPosition(topic, 0, 1))])
    assert len(stored) == 2
    # A second application (a restarted service) sees the position and skips the batch.
    again = RecordsApplication(env=records.env)
    assert again.record_school_events([(concern, ConsumedPosition(topic, 0, 0)),  # type: ignore[list-item]
                                       (move, ConsumedPosition(topic, 0, 1))]) == []
    assert [e.originator_version for e in again.history_events(upn)] == [1, 2]
    assert again.process_recorder.max_tracking_id(f"{topic}#0") == 2


def test_transfers_builds_one_packet_per_move_whatever_is_replayed(
    records: RecordsApplication, store: TransfersApplication,
) -> None:
    upn = random_upn()
    pupil = {"upn": upn, "given_name": "Dylan", "family_name": "Hughes",
             "date_of_birth": "2015-07-09"}
    topic = f"integration-{upn}"
    records.record_school_events([
        (record_of(school_event(pupil=pupil)), ConsumedPosition(topic, 0, 0)),  # type: ignore[list-item]
        (record_of(school_event("pupil_moved", pupil=pupil)), ConsumedPosition(topic, 0, 1)),  # type: ignore[list-item]
    ])
    messages = [to_history_contract(e, n) for n, e in enumerate(records.history_events(upn), 1)]
    batch = [(m, HistoryPosition(topic, 0, i)) for i, m in enumerate(messages)]

    [packet_id] = store.record_history(batch)
    assert store.record_history(batch) == []  # same positions: skipped
    replayed = [(m, HistoryPosition(topic, 0, 10 + i)) for i, m in enumerate(messages)]
    assert store.record_history(replayed) == []  # relay re-sent: same (pupil, version)

    pending = [p for p in store.pending_packets() if p.packet_id == packet_id]
    assert len(pending) == 1 and pending[0].receiver == "urn-100002"
    store.mark_published(pending)
    assert all(p.packet_id != packet_id for p in store.pending_packets())
    packet = store.packet(packet_id)
    assert packet is not None and packet.pupil.upn == upn and packet.history_version == 2
    assert [c.areas_of_need for c in packet.concerns_open] == [["SPLD"]]


def test_a_receipt_redelivered_or_sent_twice_is_stored_once(
    records: RecordsApplication, store: TransfersApplication,
) -> None:
    upn = random_upn()
    pupil = {"upn": upn, "given_name": "Ella", "family_name": "Smith",
             "date_of_birth": "2013-10-30"}
    topic = f"integration-{upn}"
    records.record_school_events([
        (record_of(school_event("pupil_moved", pupil=pupil)), ConsumedPosition(topic, 0, 0)),  # type: ignore[list-item]
    ])
    [message] = [to_history_contract(e, 1) for e in records.history_events(upn)]
    [packet_id] = store.record_history([(message, HistoryPosition(topic, 0, 0))])
    store.mark_published(store.pending_packets())
    receipt = Receipt(packet_id=packet_id, receiver="urn-100002", status="received",
                      at=datetime.now(UTC))
    receipts = f"receipts-{upn}"
    refused: list[RefusedReceipt] = []
    assert store.record_receipts([(receipt, HistoryPosition(receipts, 0, 0)),
                                  (receipt, HistoryPosition(receipts, 0, 1))], refused.extend) == 1
    assert store.record_receipts([(receipt, HistoryPosition(receipts, 0, 0))],
                                 refused.extend) == 0  # redelivered
    assert [e.state for e in store.delivery_events(packet_id)] == ["pending", "sent", "received"]
    assert refused == []
    wrong = Receipt(packet_id=packet_id, receiver="urn-100003", status="received",
                    at=datetime.now(UTC))
    store.record_receipts([(wrong, HistoryPosition(receipts, 0, 2))], refused.extend)
    [(error)] = [r.error for r in refused]
    assert (isinstance(error, WrongReceiver), error.reason, str(error)) == (
        True, "wrong_receiver", f"packet {packet_id} was sent to urn-100002, not to urn-100003")
