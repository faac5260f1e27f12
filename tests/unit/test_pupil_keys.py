"""Per-pupil keys and sealing, with the in-memory key store: what opens, what does not,
and what an erasure leaves (no I/O but a temporary master key file)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import (
    ConsumedPosition,
    PupilHistoryErased,
    RecordsApplication,
)
from services.records.chain import ErasedEntry
from services.records.domain import pupil_id_for
from services.records.handlers import to_school_event_record
from services.shared.pupil_keys import (
    FileKeyProvider,
    InMemoryPupilKeys,
    MasterKeyError,
    PupilErased,
    SealedValueBroken,
    pupil_ref,
    pupil_ref_for_upn,
)
from tests.factories import random_upn, school_event


def test_a_sealed_value_opens_only_for_its_pupil_and_its_place() -> None:
    keys = InMemoryPupilKeys()
    sealed = keys.seal("pupil-a", b"Dyslexia screener.", "row 1")
    assert b"Dyslexia" not in sealed
    assert keys.open("pupil-a", sealed, "row 1") == b"Dyslexia screener."
    keys.seal("pupil-b", b"x", "row 1")
    with pytest.raises(SealedValueBroken, match="moved from elsewhere"):
        keys.open("pupil-a", sealed, "row 2")
    with pytest.raises(SealedValueBroken):
        keys.open("pupil-b", sealed, "row 1")
    with pytest.raises(SealedValueBroken, match="altered"):
        keys.open("pupil-a", sealed[:-1] + bytes([sealed[-1] ^ 1]), "row 1")


def test_an_erased_key_is_never_made_again() -> None:
    keys = InMemoryPupilKeys()
    sealed = keys.seal("p", b"secret", "c")
    erasure = keys.erase("p", "J. Patel, DPO", "court order")
    assert erasure is not None and erasure.describe().endswith("by J. Patel, DPO because court order")
    with pytest.raises(PupilErased, match="erased on"):
        keys.open("p", sealed, "c")
    with pytest.raises(PupilErased):
        keys.seal("p", b"more", "c")
    assert keys.prepare_for_writing(["p", "q"]) == {"p": erasure}
    assert keys.erase("p", "someone else", "again") == erasure  # the first erasure stands


def test_the_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    with pytest.raises(MasterKeyError, match="does not exist"):
        FileKeyProvider(path)
    made = FileKeyProvider(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    wrapped = made.wrap(b"k" * 32, "pupil")
    assert FileKeyProvider(path).unwrap(wrapped, "pupil") == b"k" * 32
    other = FileKeyProvider(tmp_path / "other.key", create=True)
    with pytest.raises(MasterKeyError, match="wrong master key"):
        other.unwrap(wrapped, "pupil")
    with pytest.raises(MasterKeyError):
        made.unwrap(wrapped, "another pupil")


def test_the_key_name_is_records_stream_id() -> None:
    upn = random_upn()
    assert pupil_ref_for_upn(upn) == pupil_ref(pupil_id_for(upn))


def _record(app: RecordsApplication, event: dict[str, object], offset: int) -> None:
    accepted = AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=offset),
        event=SCHOOL_EVENT.validate_python(event))
    app.record_school_events([(to_school_event_record(accepted),
                               ConsumedPosition("keys-test", 0, offset))])


def test_an_erased_history_still_verifies_and_takes_nothing_new() -> None:
    app = RecordsApplication()
    upn = random_upn()
    who = {"upn": upn, "given_name": "Ada", "family_name": "Test", "date_of_birth": "2014-02-03"}
    first = school_event(pupil=who)
    _record(app, first, 0)
    _record(app, school_event("plan_reviewed", pupil=who), 1)
    app.keys.erase(pupil_ref_for_upn(upn), "DPO", "court order")

    assert app.verify_pupil(upn) == (2, None)
    items = app._stored_items(pupil_id_for(upn))
    assert all(isinstance(e, ErasedEntry) and "court order" in e.erasure for _, e in items)
    assert app.erasure_of(upn) is not None and "because court order" in str(app.erasure_of(upn))
    with pytest.raises(PupilErased):
        app.history_events(upn)

    _record(app, first, 2)  # a redelivery after the erasure adds nothing, quietly
    assert app.verify_pupil(upn) == (2, None)
    with pytest.raises(PupilHistoryErased, match="records nothing more"):
        _record(app, school_event(pupil=who), 3)
