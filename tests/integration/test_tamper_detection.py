"""A rogue administrator edits, deletes, reorders and rewrites rows of records' event
store directly in PostgreSQL; each is detected and located by the hash chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.domain import chain_hash, pupil_id_for
from services.records.handlers import to_school_event_record
from services.shared.settings import HubSettings
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.integration


@pytest.fixture
def records(scratch_db: HubSettings) -> RecordsApplication:
    return RecordsApplication(env=scratch_db.eventsourcing_env())


@pytest.fixture
def sql(scratch_db: HubSettings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(scratch_db.database_conninfo, autocommit=True) as conn:
        yield conn


def a_pupil_with_history(records: RecordsApplication) -> str:
    upn = random_upn()
    who = {"upn": upn, "given_name": "Ella", "family_name": "Smith", "date_of_birth": "2013-10-30"}
    events = [school_event(pupil=who), school_event("assessment_completed", pupil=who),
              school_event("plan_reviewed", pupil=who), school_event("pupil_moved", pupil=who)]
    for n, e in enumerate(events):
        accepted = AcceptedSchoolEventV1(
            accepted_at=datetime.now(UTC), upn_is_temporary=False,
            received_from=Position(topic="t", partition=0, offset=n),
            event=SCHOOL_EVENT.validate_python(e))
        records.record_school_events([(to_school_event_record(accepted),
                                       ConsumedPosition(f"tamper-{upn}", 0, n))])
    assert records.verify_pupil(upn) == (4, None)
    return upn


def test_an_edited_row_is_located_at_its_version(records: RecordsApplication,
                                                 sql: psycopg.Connection[Any]) -> None:
    """The forger has the database and the master key: they open the row, edit the text
    and seal it again, leaving its hashes as recorded."""
    upn = a_pupil_with_history(records)
    original = records.history_events(upn)[1]
    forged = replace(original, school_event={**original.school_event, "payload": {
        **original.school_event["payload"], "summary": "No difficulties found."}})
    edited = sql.execute(
        "UPDATE records_events SET state = %s WHERE originator_id = %s "
        "AND originator_version = 2",
        (records.mapper.to_stored_event(forged).state, pupil_id_for(upn))).rowcount
    assert edited == 1
    checked, found = records.verify_pupil(upn)
    assert checked == 4 and found is not None
    assert found.version == 2 and "content was altered" in found.problem
    pupils, events, breaks = records.verify_all()
    assert [(b.upn, b.version) for b in breaks if b.pupil_id == pupil_id_for(upn)] == [(upn, 2)]


def test_a_deleted_row_is_located_as_a_gap(records: RecordsApplication,
                                           sql: psycopg.Connection[Any]) -> None:
    upn = a_pupil_with_history(records)
    sql.execute("DELETE FROM records_events WHERE originator_id = %s AND originator_version = 3",
                (pupil_id_for(upn),))
    _, found = records.verify_pupil(upn)
    assert found is not None and found.version == 3
    assert "version 3 is missing" in found.problem and "jumps from 2 to 4" in found.problem


def test_reordered_rows_are_located(records: RecordsApplication,
                                    sql: psycopg.Connection[Any]) -> None:
    upn = a_pupil_with_history(records)
    sql.execute(
        "UPDATE records_events e SET state = o.state FROM records_events o "
        "WHERE e.originator_id = %(id)s AND o.originator_id = %(id)s "
        "AND ((e.originator_version = 2 AND o.originator_version = 3) "
        "  OR (e.originator_version = 3 AND o.originator_version = 2))",
        {"id": pupil_id_for(upn)})
    _, found = records.verify_pupil(upn)
    assert found is not None and found.version == 2
    # Each row is sealed for its own version, so a row moved elsewhere no longer opens.
    assert "moved from elsewhere" in found.problem


def test_a_rewritten_chain_passes_alone_but_not_against_its_anchor(
    records: RecordsApplication, sql: psycopg.Connection[Any],
) -> None:
    upn = a_pupil_with_history(records)
    pid = pupil_id_for(upn)
    heads = records.heads_between(0, 1_000_000)
    assert heads is not None
    anchored = {p: {v: (h, "test anchor")} for p, (v, h) in heads.heads.items()}

    # Rewrite version 1 and recompute every hash after it, as a careful forger would.
    previous = None
    for event in records.history_events(upn):
        if event.originator_version == 1:
            event = replace(event, school_event={**event.school_event, "payload": {
                **event.school_event["payload"], "summary": "Nothing of note."}})
        if previous is not None:
            event = replace(event, previous_hash=previous)
        event = replace(event, event_hash=chain_hash(event))
        previous = event.event_hash
        stored = records.mapper.to_stored_event(event)
        sql.execute("UPDATE records_events SET state = %s WHERE originator_id = %s "
                    "AND originator_version = %s", (stored.state, pid, event.originator_version))
    assert records.verify_pupil(upn) == (4, None)  # the chain alone is consistent again
    _, mismatches = records.verify_against_anchors({pid: anchored[pid]})
    assert [(m.pupil_id, m.version) for m in mismatches] == [(pid, 4)]
    assert "history rewritten" in mismatches[0].problem


def test_the_stored_text_is_sealed_and_a_changed_byte_does_not_open(
    records: RecordsApplication, sql: psycopg.Connection[Any],
) -> None:
    """Without the pupil's key a row cannot be read, nor changed unnoticed."""
    upn = a_pupil_with_history(records)
    rows = sql.execute("SELECT state FROM records_events WHERE originator_id = %s",
                       (pupil_id_for(upn),)).fetchall()
    assert rows and all(b"Dyslexia" not in bytes(r[0]) and upn.encode() not in bytes(r[0])
                        and b"Ella" not in bytes(r[0]) for r in rows)
    sql.execute("UPDATE records_events SET state = overlay(state placing '\\x00'::bytea "
                "from length(state) - 3) WHERE originator_id = %s AND originator_version = 3",
                (pupil_id_for(upn),))
    _, found = records.verify_pupil(upn)
    assert found is not None and found.version == 3
    assert "cannot be read" in found.problem and "does not open" in found.problem
