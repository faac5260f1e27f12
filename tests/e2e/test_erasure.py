"""Erasure on the running hub: after `sendhub erase`, nothing plain of the pupil is left
in PostgreSQL (a pg_dump, scanned) or on the hub's topics (read whole), the chain still
verifies and says the pupil was erased, and the access log keeps the erasure."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import psycopg
import pytest

from contracts.dead_letter import DeadLetterV1
from sendhub.publishing import publish_lines
from sendhub.topics_reader import read_topic
from services.shared.pupil_keys import pupil_ref_for_upn
from services.shared.settings import HubSettings
from tests.conftest import CLI
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.e2e

OAKFIELD = {"urn": "131001", "system": "SIMS"}
AUDITOR = ("--reason", "erasure check ER-1")


def send(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def dump(settings: HubSettings) -> bytes:
    """The whole database as pg_dump writes it (data and schema, plain SQL)."""
    return subprocess.run(["pg_dump", "--no-owner", settings.database_conninfo],
                          capture_output=True, check=True, timeout=120).stdout


def in_dump(database: bytes, needles: list[bytes]) -> list[str]:
    """Which tables of a dump hold any of `needles` (a COPY block is one table's rows)."""
    table, found = "", set()
    for line in database.splitlines():
        if line.startswith(b"COPY "):
            table = line.split()[1].decode()
        if any(n in line for n in needles):
            found.add(table)
    return sorted(found)


def erased_letters(settings: HubSettings) -> list[DeadLetterV1]:
    return [d for d in dead_letters(settings) if d.reason == "pupil_erased"]


def on_topics(settings: HubSettings, needles: list[bytes]) -> list[str]:
    """Where any of `needles` appears in a record of this session's topics."""
    from kafka import KafkaAdminClient

    from services.shared.kafka import client_options

    admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-tests")
    try:
        topics = [t for t in admin.list_topics() if t.startswith(settings.topic_namespace)]
    finally:
        admin.close()
    found = []
    for topic in topics:
        for r in read_topic(settings, topic):
            blobs = [r.key or b"", r.value, *r.headers.values()]
            found += [f"{topic}@{r.partition}:{r.offset}" for n in needles
                      if any(n in b for b in blobs)]
    return found


def test_an_erased_pupil_leaves_no_plain_trace_and_the_chain_still_verifies(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    family = f"Quillfeather{uuid.uuid4().hex[:8]}"
    sen_text = f"Needs a quiet room for phonics {uuid.uuid4().hex[:8]}."
    who = {"upn": upn, "given_name": "Zephyrine", "family_name": family,
           "date_of_birth": "2011-09-17"}
    concern = school_event(pupil=who, source=OAKFIELD, payload={
        "raised_by": "teacher", "areas_of_need": ["SPLD"], "summary": sen_text})
    send(settings, concern,
         school_event("pupil_moved", pupil=who, source=OAKFIELD, payload={
             "destination": {"kind": "school", "urn": "131002"}, "move_kind": "in_year",
             "effective_date": "2026-01-12"}))
    eventually(lambda: len(packets_for(settings, "urn-131002", upn)) == 1 or None)
    cli("history", upn, *AUDITOR)  # an auditor's read, in the access log under the UPN
    needles = [upn.encode(), b"Zephyrine", family.encode(), b"2011-09-17", sen_text.encode()]
    assert upn.encode() in dump(settings)  # the UPN is kept plain to find the pupil's rows
    eventually(lambda: "all match the store" in cli("verify", upn, "--against-anchors").stdout
               or None)  # anchored before the erasure

    erased = cli("erase", upn, "--reason", "court order CO-2026-77",
                 "--authorised-by", "J. Patel, DPO")
    assert "erased on" in erased.stdout and "J. Patel, DPO" in erased.stdout
    assert "urn-131002" in erased.stdout  # the receiver to tell

    assert in_dump(dump(settings), needles) == []
    assert on_topics(settings, needles) == []

    verified = cli("verify", upn, "--against-anchors")
    assert verified.returncode == 0
    assert "erased on" in verified.stdout and "because court order CO-2026-77" in verified.stdout
    assert "every chain intact" in verified.stdout and "all match the store" in verified.stdout
    everyone = cli("verify", "--all")
    assert "every chain intact" in everyone.stdout and "J. Patel, DPO" in everyone.stdout

    with psycopg.connect(settings.database_conninfo) as conn:
        log = conn.execute("SELECT action, detail FROM access_log WHERE upn = %s ORDER BY id",
                           (f"erased:{pupil_ref_for_upn(upn)}",)).fetchall()
    assert [action for action, _ in log] == ["history", "erase"]
    assert "court order CO-2026-77" in log[-1][1] and "urn-131002" in log[-1][1]
    assert "hash chain was intact at erasure (2 events" in log[-1][1]

    gone = cli("history", upn, *AUDITOR, check=False)
    assert gone.returncode == 1 and "erased on" in gone.stderr

    # A redelivery adds nothing; the hub records nothing more about the pupil: a new
    # event is dead-lettered.
    before = len(erased_letters(settings))
    late = school_event(pupil=who, source=OAKFIELD)
    send(settings, concern, late)
    # One dead letter: the redelivered concern (same key, so consumed before the new
    # event) added nothing. It keeps neither the event nor its key (the UPN).
    eventually(lambda: len(erased_letters(settings)) == before + 1 or None)
    letter = erased_letters(settings)[-1]
    assert letter.original == b"" and letter.key is None and letter.original_size > 0
    again = cli("erase", upn, "--reason", "court order CO-2026-77", "--authorised-by", "x")
    assert "already" in again.stdout
    assert in_dump(dump(settings), needles) == []
    assert on_topics(settings, needles) == []
