"""Records' recorder answers the audit's reads the same in memory and on PostgreSQL.

One test body, run here over the in-memory recorder and in
tests/integration/test_records_recorder_on_postgres.py over PostgreSQL, as eventsourcing
runs one test case over each of its recorders.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from services.records.application import RecordsApplication
from services.records.persistence import POPORecordsRecorder, RecordsRecorder, StoredRow

PUPIL_A = UUID("00000000-0000-4000-8000-00000000000a")
PUPIL_B = UUID("00000000-0000-4000-8000-00000000000b")
PUPIL_C = UUID("00000000-0000-4000-8000-00000000000c")
PUPIL_D = UUID("00000000-0000-4000-8000-00000000000d")
PUPIL_E = UUID("00000000-0000-4000-8000-00000000000e")
PUPIL_F = UUID("00000000-0000-4000-8000-00000000000f")
TOPIC = "services.records.domain:SENHistoryEvent"


class RecorderContract:
    """What the application relies on, whichever store holds the histories."""

    def recorder(self) -> RecordsRecorder:
        raise NotImplementedError

    def test_the_audits_reads(self) -> None:
        recorder = self.recorder()
        assert recorder.pupil_count() == 0
        assert list(recorder.stored_rows_by_pupil()) == []
        ids: dict[tuple[UUID, int], int] = {}
        for pupil, version in [(PUPIL_B, 1), (PUPIL_A, 1), (PUPIL_B, 2), (PUPIL_C, 1),
                               (PUPIL_A, 2), (PUPIL_A, 3)]:
            stored = StoredEvent(pupil, version, TOPIC, f"{pupil.hex[-1]}{version}".encode())
            (ids[pupil, version],) = recorder.insert_events([stored]) or [0]

        assert recorder.pupil_count() == 3
        assert list(recorder.stored_rows_by_pupil()) == [
            StoredRow(pupil, version, TOPIC, f"{pupil.hex[-1]}{version}".encode(),
                      ids[pupil, version])
            for pupil, version in [(PUPIL_A, 1), (PUPIL_A, 2), (PUPIL_A, 3), (PUPIL_B, 1),
                                   (PUPIL_B, 2), (PUPIL_C, 1)]]
        as_anchored = [(r.pupil_id, r.version) for r in recorder.newest_rows(ids[PUPIL_C, 1])]
        assert as_anchored == [(PUPIL_A, 1), (PUPIL_B, 2), (PUPIL_C, 1)]
        now = [(r.pupil_id, r.version) for r in recorder.newest_rows(ids[PUPIL_A, 3])]
        assert now == [(PUPIL_A, 3), (PUPIL_B, 2), (PUPIL_C, 1)]
        row = next(recorder.newest_rows(ids[PUPIL_A, 3]))
        assert row.stored_event == StoredEvent(PUPIL_A, 3, TOPIC, b"a3")

    def test_a_pupils_stream_with_every_bound(self) -> None:
        """As eventsourcing's repository asks for it (after a snapshot, up to a version,
        the newest first); PostgreSQL's rows come back binary."""
        recorder = self.recorder()  # pupils of their own: the database is the module's
        for pupil, version in [(PUPIL_D, 1), (PUPIL_E, 1), (PUPIL_D, 2), (PUPIL_D, 3),
                               (PUPIL_D, 4)]:
            recorder.insert_events([StoredEvent(pupil, version, TOPIC,
                                                bytes([0, 255, version]) + b"\n")])

        def versions(**bounds: int | bool) -> list[int]:
            return [e.originator_version for e in recorder.select_events(PUPIL_D, **bounds)]

        assert recorder.select_events(PUPIL_D)[1] == StoredEvent(PUPIL_D, 2, TOPIC,
                                                                 b"\x00\xff\x02\n")
        assert versions() == [1, 2, 3, 4]
        assert versions(gt=1, lte=3) == [2, 3]
        assert versions(desc=True, limit=2) == [4, 3]
        assert versions(lte=2, desc=True) == [2, 1]
        assert versions(gt=4) == []
        assert [e.originator_id for e in recorder.select_events(PUPIL_E)] == [PUPIL_E]

    def test_notifications_with_every_bound(self) -> None:
        """As the relay, the anchoring and eventsourcing's readers ask for them."""
        recorder = self.recorder()  # pupils of their own: the database is the module's
        other = "services.records.domain:PlanReviewed"
        ids = [recorder.insert_events([StoredEvent(PUPIL_F, version, other if version == 2
                                                   else TOPIC, bytes([0, version]))])
               for version in (1, 2, 3)]
        first, second, third = (found[0] for found in ids if found)

        def read(start: int | None, limit: int = 10, **more: Any) -> list[int]:
            return [n.id for n in recorder.select_notifications(start, limit, **more)
                    if n.originator_id == PUPIL_F]

        assert read(first) == [first, second, third]
        assert read(first, inclusive_of_start=False) == [second, third]
        assert read(first, stop=second) == [first, second]
        assert read(None, topics=[other]) == [second]
        assert read(first, limit=1) == [first]
        (note,) = recorder.select_notifications(third, 1)
        assert (note.originator_id, note.originator_version, note.topic, note.state) == (
            PUPIL_F, 3, TOPIC, b"\x00\x03")


class TestInMemory(RecorderContract):
    def recorder(self) -> RecordsRecorder:
        return POPORecordsRecorder()


def test_the_application_in_memory_uses_records_recorder() -> None:
    assert isinstance(RecordsApplication().process_recorder, POPORecordsRecorder)
