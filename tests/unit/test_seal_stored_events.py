"""History rows stored before sealing existed (plain JSON, revision 0007 cannot seal
them) are sealed with their pupil's key by `seal_stored_events`, in memory: read back
the same, the chain still verifies with the hashes recorded, an erased pupil's rows are
shredded, and a row altered while plain stays detectably altered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Mapper, StoredEvent

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import (
    ConsumedPosition,
    RecordsApplication,
    SealedEvents,
)
from services.records.chain import ErasedEntry
from services.records.domain import pupil_id_for
from services.records.handlers import to_school_event_record
from services.records.sealing import ENVELOPE
from services.shared.pupil_keys import InMemoryPupilKeys, PupilErased, pupil_ref_for_upn
from tests.factories import random_upn, school_event

KINDS = ("concern_raised", "assessment_completed", "plan_reviewed", "pupil_moved")
NAME = "Zebedee"  # the pupil's given name: plain in an old row, nowhere once sealed


class PlainRecords(RecordsApplication):
    """Records as it stored histories before sealing (as bench/encryption.py's baseline)."""

    name = "records"  # records' own tables

    def construct_mapper(self) -> Mapper[UUID]:
        self._keys = InMemoryPupilKeys()  # asked for by record_school_events, never used
        return Mapper(transcoder=self.construct_transcoder())


def plain_rows(upns: list[str]) -> list[StoredEvent]:
    """Four events of each pupil, stored as records stored them before sealing."""
    plain, offset = PlainRecords(), 0
    for upn in upns:
        who = {"upn": upn, "given_name": NAME, "family_name": "Test",
               "date_of_birth": "2014-02-03"}
        for kind in KINDS:
            accepted = AcceptedSchoolEventV1(
                accepted_at=datetime.now(UTC), upn_is_temporary=False,
                received_from=Position(topic="t", partition=0, offset=offset),
                event=SCHOOL_EVENT.validate_python(school_event(kind, pupil=who)))
            plain.record_school_events([(to_school_event_record(accepted),
                                         ConsumedPosition("old", 0, offset))])
            offset += 1
    return [StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
            for n in plain.recorder.select_notifications(start=None, limit=1_000)]


def upgraded(rows: list[StoredEvent]) -> RecordsApplication:
    """Today's records over a store holding those plain rows (an upgraded database)."""
    app = RecordsApplication()
    app.recorder.insert_events(rows)
    return app


def states(app: RecordsApplication) -> list[bytes]:
    return [n.state for n in app.recorder.select_notifications(start=None, limit=1_000)]


def test_plain_rows_are_sealed_read_back_the_same_and_still_verify() -> None:
    upns = [random_upn(), random_upn()]
    app = upgraded(plain_rows(upns))
    before = {upn: app.history_events(upn) for upn in upns}  # the plain rows still read
    assert all(NAME.encode() in s for s in states(app))

    assert app.seal_stored_events(batch=3) == SealedEvents(sealed=8)
    assert all(s.startswith(ENVELOPE) and NAME.encode() not in s for s in states(app))
    assert {upn: app.history_events(upn) for upn in upns} == before
    assert app.verify_all() == (2, 8, [])
    assert app.seal_stored_events() == SealedEvents()  # run again: nothing left to do


def test_an_erased_pupils_plain_rows_are_shredded_and_the_chain_still_verifies() -> None:
    kept, gone = random_upn(), random_upn()
    app = upgraded(plain_rows([kept, gone]))
    ref = pupil_ref_for_upn(gone)
    app.keys.prepare_for_writing([ref])  # as the erasure does for a pupil with no key yet
    app.keys.erase(ref, "J. Patel, DPO", "Article 17 request")

    assert app.seal_stored_events() == SealedEvents(sealed=4, shredded=4)
    assert all(NAME.encode() not in s and gone.encode() not in s for s in states(app))
    with pytest.raises(PupilErased):
        app.history_events(gone)
    assert len(app.history_events(kept)) == 4
    assert app.verify_pupil(gone) == (4, None)  # by the hashes kept beside the shreds
    streams = dict(app.stored_streams())
    erased = [item for _, item in streams[pupil_id_for(gone)]]
    assert all(isinstance(e, ErasedEntry) and "because Article 17 request" in e.erasure
               for e in erased)
    assert app.verify_all() == (2, 8, [])


def test_one_pupil_is_sealed_alone_for_the_erasure() -> None:
    one, other = random_upn(), random_upn()
    app = upgraded(plain_rows([one, other]))
    app.keys.prepare_for_writing([pupil_ref_for_upn(one)])
    app.keys.erase(pupil_ref_for_upn(one), "DPO", "court order")

    assert app.seal_stored_events(pupil_id=pupil_ref_for_upn(one)) == SealedEvents(shredded=4)
    assert sum(not s.startswith(ENVELOPE) for s in states(app)) == 4  # the other's, plain
    assert len(app.history_events(other)) == 4


def _altered(row: StoredEvent, old: bytes, new: bytes) -> StoredEvent:
    assert old in row.state
    return StoredEvent(row.originator_id, row.originator_version, row.topic,
                       row.state.replace(old, new))


def test_a_row_altered_while_plain_stays_detected_once_sealed() -> None:
    upn = random_upn()
    rows = plain_rows([upn])
    rows[1] = _altered(rows[1], b"Dyslexia screener.", b"No difficulties found.")
    app = upgraded(rows)
    _, found = app.verify_pupil(upn)
    assert found is not None and found.version == 2 and "content was altered" in found.problem

    assert app.seal_stored_events() == SealedEvents(sealed=4)
    assert all(s.startswith(ENVELOPE) for s in states(app))
    assert app.verify_pupil(upn) == (4, found)  # the same break, at the same version


def test_a_plain_row_that_no_longer_reads_is_sealed_and_still_reported() -> None:
    upn, gone = random_upn(), random_upn()
    rows = plain_rows([upn, gone])
    rows[2] = _altered(rows[2], b"{", b"<")  # not JSON any more
    rows[6] = _altered(rows[6], b"{", b"<")
    app = upgraded(rows)
    app.keys.prepare_for_writing([pupil_ref_for_upn(gone)])
    app.keys.erase(pupil_ref_for_upn(gone), "DPO", "court order")

    done = app.seal_stored_events()
    assert done == SealedEvents(sealed=4, shredded=4, unreadable=2)
    assert all(s.startswith(ENVELOPE) and NAME.encode() not in s for s in states(app))
    _, found = app.verify_pupil(upn)
    assert found is not None and found.version == 3 and "cannot be read" in found.problem
    # the erased pupil's unreadable row kept no hashes: their chain breaks there
    _, broken = app.verify_pupil(gone)
    assert broken is not None and broken.version == 3


def test_the_rows_keep_their_place_in_the_outbox() -> None:
    app = upgraded(plain_rows([random_upn()]))
    ids: list[Any] = [(n.id, n.originator_id, n.originator_version)
                      for n in app.notifications(0, 100)]
    app.seal_stored_events()
    assert [(n.id, n.originator_id, n.originator_version)
            for n in app.notifications(0, 100)] == ids
