"""History rows stored before sealing existed (revision 0007), on the real PostgreSQL:
`sendhub db upgrade` counts them, `sendhub db seal-existing` seals them as the owner,
they read back the same, an erased pupil's are shredded and their chain still
verifies, and a row altered while plain stays reported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import Mapper

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import (
    ConsumedPosition,
    RecordsApplication,
    SealedEvents,
    seal_stored_history,
)
from services.records.domain import pupil_id_for
from services.records.handlers import to_school_event_record
from services.records.persistence import plain_events
from services.records.sealing import ENVELOPE
from services.shared.pupil_keys import (
    InMemoryPupilKeys,
    PostgresPupilKeys,
    PupilErased,
    pupil_keys_for,
    pupil_ref_for_upn,
)
from services.shared.settings import HubSettings
from tests.conftest import CLI
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.integration
KINDS = ("concern_raised", "assessment_completed", "plan_reviewed", "pupil_moved")
NAME = "Zebedee"


class PlainRecords(RecordsApplication):
    """Records as it stored histories before sealing (bench/encryption.py's baseline)."""

    name = "records"  # records' own tables

    def construct_mapper(self) -> Mapper[UUID]:
        self._keys = InMemoryPupilKeys()  # asked for by record_school_events, never used
        return Mapper(transcoder=self.construct_transcoder())


def store_plain(settings: HubSettings, upn: str) -> None:
    plain = PlainRecords(env=settings.eventsourcing_env())
    who = {"upn": upn, "given_name": NAME, "family_name": "Test", "date_of_birth": "2014-02-03"}
    try:
        for n, kind in enumerate(KINDS):
            accepted = AcceptedSchoolEventV1(
                accepted_at=datetime.now(UTC), upn_is_temporary=False,
                received_from=Position(topic="t", partition=0, offset=n),
                event=SCHOOL_EVENT.validate_python(school_event(kind, pupil=who)))
            plain.record_school_events([(to_school_event_record(accepted),
                                         ConsumedPosition(f"old-{upn}", 0, n))])
    finally:
        plain.close()


def states(settings: HubSettings, upn: str) -> list[bytes]:
    with psycopg.connect(settings.database_conninfo) as conn:
        rows = conn.execute("SELECT state FROM records_events WHERE originator_id = %s "
                            "ORDER BY originator_version", (pupil_id_for(upn),)).fetchall()
    return [bytes(r[0]) for r in rows]


@pytest.fixture
def keys(scratch_db: HubSettings) -> Iterator[PostgresPupilKeys]:
    keys = pupil_keys_for(scratch_db)
    yield keys
    keys.close()


@pytest.fixture
def records(scratch_db: HubSettings, keys: PostgresPupilKeys) -> Iterator[RecordsApplication]:
    app = RecordsApplication(env=scratch_db.eventsourcing_env(), keys=keys)
    yield app
    app.close()


def erase(keys: PostgresPupilKeys, upn: str) -> None:
    ref = pupil_ref_for_upn(upn)
    keys.prepare_for_writing([ref])  # as the erasure does for a pupil with no key yet
    keys.erase(ref, "J. Patel, DPO", "Article 17 request")


def test_seal_existing_seals_old_history_rows_and_shreds_an_erased_pupils(
        scratch_db: HubSettings, cli: CLI, keys: PostgresPupilKeys,
        records: RecordsApplication) -> None:
    kept, gone, altered = random_upn(), random_upn(), random_upn()
    for upn in (kept, gone, altered):
        store_plain(scratch_db, upn)
    with psycopg.connect(scratch_db.database_conninfo) as conn:  # a rogue edit, while plain
        edited = conn.execute(
            "UPDATE records_events SET state = convert_to(replace(convert_from(state, "
            "'UTF8'), 'Dyslexia screener.', 'No difficulties found.'), 'UTF8') "
            "WHERE originator_id = %s AND originator_version = 2",
            (pupil_id_for(altered),)).rowcount
    assert edited == 1
    before = records.history_events(kept)
    erase(keys, gone)
    assert all(NAME.encode() in s for s in states(scratch_db, gone))  # the gap closed here
    left = plain_events(scratch_db.database_conninfo)
    assert left >= 12

    here = {"SENDHUB_DATABASE_URL": str(scratch_db.database_url)}
    upgraded = cli("db", "upgrade", **here).stdout
    assert f"{left} records (history) row(s) stored before sealing are still plain" in upgraded
    done = cli("db", "seal-existing", **here).stdout
    assert f"Sealed {left - 4} records (history) row(s) stored before sealing; 4 of erased " \
           "pupils shredded." in done
    assert "Sealed 0 transfers row(s)" in done
    assert "still plain" not in cli("db", "upgrade", **here).stdout
    assert plain_events(scratch_db.database_conninfo) == 0

    for upn in (kept, gone, altered):
        assert all(s.startswith(ENVELOPE) and NAME.encode() not in s and upn.encode() not in s
                   for s in states(scratch_db, upn))
    assert records.history_events(kept) == before
    assert records.verify_pupil(kept) == (4, None)
    with pytest.raises(PupilErased):
        records.history_events(gone)
    assert records.verify_pupil(gone) == (4, None)  # by the hashes kept beside the shreds
    assert records.erasure_of(gone) is not None
    _, found = records.verify_pupil(altered)
    assert found is not None and found.version == 2 and "content was altered" in found.problem
    assert cli("db", "seal-existing", **here).stdout.startswith(
        "Sealed 0 records (history) row(s)")  # again: nothing left


def test_the_erasure_seals_one_pupils_old_rows(scratch_db: HubSettings,
                                               keys: PostgresPupilKeys,
                                               records: RecordsApplication) -> None:
    one, other = random_upn(), random_upn()
    store_plain(scratch_db, one)
    store_plain(scratch_db, other)
    erase(keys, one)
    done = seal_stored_history(scratch_db, keys, pupil_id=pupil_ref_for_upn(one), batch=3)
    assert done == SealedEvents(shredded=4)
    assert all(s.startswith(ENVELOPE) and NAME.encode() not in s
               for s in states(scratch_db, one))
    assert not any(s.startswith(ENVELOPE) for s in states(scratch_db, other))
    assert records.verify_pupil(one) == (4, None)
    assert len(records.history_events(other)) == 4
