"""`verify --all` shared among processes finds what one process finds, in the same order:
edited, deleted and damaged rows, and an erased pupil checked by the hashes kept beside
their rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.domain import SchoolEventRecord, pupil_id_for
from services.records.handlers import to_school_event_record
from services.shared.pupil_keys import pupil_ref
from services.shared.settings import HubSettings
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.integration

KINDS = ("concern_raised", "assessment_completed", "plan_reviewed")


def pupils_with_histories(records: RecordsApplication, count: int) -> list[str]:
    upns = [random_upn() for _ in range(count)]
    items: list[tuple[SchoolEventRecord, ConsumedPosition]] = []
    for n, upn in enumerate(upns):
        who = {"upn": upn, "given_name": "Pupil", "family_name": f"Many{n}",
               "date_of_birth": "2014-02-03"}
        for kind in KINDS:
            offset = len(items)
            accepted = AcceptedSchoolEventV1(
                accepted_at=datetime.now(UTC), upn_is_temporary=False,
                received_from=Position(topic="t", partition=0, offset=offset),
                event=SCHOOL_EVENT.validate_python(school_event(kind, pupil=who)))
            items.append((to_school_event_record(accepted),
                          ConsumedPosition("verify-in-processes", 0, offset)))
    records.record_school_events(items)
    return upns


def test_processes_find_every_break_one_process_finds(scratch_db: HubSettings) -> None:
    records = RecordsApplication(env=scratch_db.eventsourcing_env())
    upns = pupils_with_histories(records, 60)
    edited, deleted, damaged, erased = upns[:4]
    original = records.history_events(edited)[1]
    forged = replace(original, school_event={**original.school_event, "payload": {
        **original.school_event["payload"], "summary": "No difficulties found."}})
    with psycopg.connect(scratch_db.database_conninfo, autocommit=True) as sql:
        sql.execute("UPDATE records_events SET state = %s WHERE originator_id = %s "
                    "AND originator_version = 2",
                    (records.mapper.to_stored_event(forged).state, pupil_id_for(edited)))
        sql.execute("DELETE FROM records_events WHERE originator_id = %s "
                    "AND originator_version = 2", (pupil_id_for(deleted),))
        sql.execute("UPDATE records_events SET state = overlay(state placing '\\x00'::bytea "
                    "from length(state) - 3) WHERE originator_id = %s "
                    "AND originator_version = 3", (pupil_id_for(damaged),))
    records.keys.erase(pupil_ref(pupil_id_for(erased)), "J. Patel, DPO", "Article 17 request")

    assert records._verify_workers(2) == 2  # the store and keys others can open too
    progress: dict[int, list[int]] = {1: [], 2: []}
    alone = records.verify_all(progress[1].append, workers=1)
    shared = records.verify_all(progress[2].append, workers=2)

    assert shared == alone
    pupils, events, breaks = shared
    assert (pupils, events) == (60, 60 * len(KINDS) - 1)
    assert {(b.upn, b.version) for b in breaks} == {(edited, 2), (deleted, 2), (damaged, 3)}
    found: dict[Any, str] = {b.upn: b.problem for b in breaks}
    assert "content was altered" in found[edited]
    assert "version 2 is missing" in found[deleted]
    assert "does not open" in found[damaged]
    assert [b.pupil_id for b in breaks] == sorted(b.pupil_id for b in breaks)
    assert progress[1] == progress[2] == list(range(1, pupils + 1))
