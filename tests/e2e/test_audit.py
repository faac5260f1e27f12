"""Auditors on the running hub: both time axes, packets rebuilt exactly, chains checked
against the anchors in Kafka, the access log, and the report in a browser."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contracts.anchors import AuditAnchorV1
from sendhub.publishing import publish_lines
from sendhub.topics_reader import read_topic
from services.records.application import RecordsApplication
from services.records.domain import chain_hash, pupil_id_for
from services.shared.settings import HubSettings
from tests.conftest import CLI
from tests.e2e.conftest import RunningServices, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

AUDITOR = ("--reason", "tribunal bundle TB-2026-114")  # as the session's auditor
OAKFIELD = {"urn": "131001", "system": "SIMS"}


def send(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def versions_stored(settings: HubSettings, upn: str, count: int) -> None:
    records = RecordsApplication(env=settings.eventsourcing_env())
    assert len(records.history_events(upn)) == count, "not all recorded yet"


def test_history_as_known_at_and_as_of_with_a_late_entry(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Amira")
    send(settings, school_event(pupil=who, occurred_at="2025-01-10T09:00:00+00:00"),
         school_event("plan_reviewed", pupil=who, occurred_at="2025-06-02T16:00:00+01:00"))
    eventually(lambda: versions_stored(settings, upn, 2))
    before_late_entry = datetime.now(UTC)
    send(settings, school_event("assessment_completed", pupil=who,
                                occurred_at="2025-03-03T11:00:00+00:00"))
    eventually(lambda: versions_stored(settings, upn, 3))

    known = json.loads(cli("history", upn, "--as-known-at", before_late_entry.isoformat(),
                           "--json", *AUDITOR).stdout)
    assert [e["event"]["event_type"] for e in known["events"]] == ["concern_raised", "plan_reviewed"]
    assert known["sen_status"] == "sen_support"  # the review put a plan in place
    as_of = json.loads(cli("history", upn, "--as-of", "2025-04-01", "--json", *AUDITOR).stdout)
    assert [e["event"]["event_type"] for e in as_of["events"]] == [
        "concern_raised", "assessment_completed"]
    assert as_of["current_needs"] == [{"code": "SPLD", "rank": 1}]
    now = json.loads(cli("history", upn, "--json", *AUDITOR).stdout)
    assert [e["version"] for e in now["events"]] == [1, 2, 3]
    assert now["chain_head"] == now["events"][-1]["event_hash"]
    table = cli("history", upn, "--as-of", "2025-04-01", *AUDITOR).stdout
    assert "as of 2025-04-01" in table and "Screening assessment" in table
    refused = cli("history", upn, "--as-of", "2025-04-01", "--as-known-at", "2025-01-01",
                  *AUDITOR, check=False)
    assert refused.returncode == 2 and "different time axes" in refused.stderr


def test_a_sent_packet_and_its_amendment_are_rebuilt_exactly(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Ben")
    send(settings, school_event(pupil=who, source=OAKFIELD),
         school_event("pupil_moved", pupil=who, source=OAKFIELD, payload={
             "destination": {"kind": "school", "urn": "131002"}, "move_kind": "in_year",
             "effective_date": "2026-01-12"}))
    eventually(lambda: len(packets_for(settings, "urn-131002", upn)) == 1 or None)
    send(settings, school_event("assessment_completed", pupil=who, source=OAKFIELD,
                                occurred_at="2026-01-08T10:00:00+00:00"))

    def both() -> list[Any]:
        found = {p.packet_id: p for p in packets_for(settings, "urn-131002", upn)}
        assert len(found) == 2
        return list(found.values())

    for packet in eventually(both):
        result = cli("packet", str(packet.packet_id), "--rebuild", *AUDITOR)
        assert "it matches what was sent, field for field" in result.stdout
        assert packet.history_chain_head is not None


def test_a_rewritten_chain_is_caught_by_the_anchors_held_in_kafka(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Chloe")
    send(settings, school_event(pupil=who), school_event("assessment_completed", pupil=who))
    eventually(lambda: versions_stored(settings, upn, 2))
    pid = pupil_id_for(upn)

    def anchored() -> None:
        heads = [h for r in read_topic(settings, settings.topics.audit_anchors)
                 for h in AuditAnchorV1.model_validate_json(r.value).heads if h.pupil_id == pid]
        assert any(h.version == 2 for h in heads), "not anchored yet"

    eventually(anchored)
    assert "every chain intact" in cli("verify", upn, "--against-anchors").stdout
    assert "matches the store" in cli("verify", "--all", "--against-anchors").stdout
    everything = cli("verify", "--all").stdout
    assert "verifying hash chains" in everything and "every chain intact" in everything

    records = RecordsApplication(env=settings.eventsourcing_env())
    previous = None
    with psycopg.connect(settings.database_conninfo, autocommit=True) as sql:
        for event in records.history_events(upn):
            if event.originator_version == 1:
                event = replace(event, school_event={**event.school_event, "payload": {
                    **event.school_event["payload"], "areas_of_need": ["MLD"]}})
            event = replace(event, previous_hash=previous or event.previous_hash)
            event = replace(event, event_hash=chain_hash(event))
            previous = event.event_hash
            sql.execute("UPDATE records_events SET state = %s WHERE originator_id = %s AND "
                        "originator_version = %s",
                        (records.mapper.to_stored_event(event).state, pid, event.originator_version))
    alone = cli("verify", upn)
    assert alone.returncode == 0  # a careful forger keeps the chain consistent...
    caught = cli("verify", upn, "--against-anchors", check=False)
    assert caught.returncode == 1  # ...but cannot rewrite what Kafka holds
    assert upn in caught.stdout and "history rewritten" in caught.stdout
    whole = cli("verify", "--all", "--against-anchors", check=False)
    assert whole.returncode == 1
    assert "does not match the store" in whole.stdout  # the digest of all heads, too


def test_reads_need_an_authenticated_auditor_and_a_reason_and_are_logged(
    services: RunningServices, settings: HubSettings, cli: CLI, tmp_path: Path,
) -> None:
    upn = random_upn()
    send(settings, school_event(pupil=pupil(upn, "Dylan")))
    eventually(lambda: versions_stored(settings, upn, 1))
    refused = cli("history", upn, "--reason", "curious", check=False, SENDHUB_TOKEN_FILE="")
    assert refused.returncode == 2
    assert "needs an authenticated principal: set SENDHUB_TOKEN_FILE" in refused.stderr
    school_token = tmp_path / "school.token"
    school_token.write_text(cli("principals", "add", "school", "131004", "--token"
                                ).stdout.splitlines()[-1])
    not_auditor = cli("history", upn, "--reason", "curious", check=False,
                      SENDHUB_TOKEN_FILE=str(school_token))
    assert not_auditor.returncode == 4
    assert "school-131004 may not read pupils' SEN histories" in not_auditor.stderr
    forged = tmp_path / "forged.token"
    forged.write_text(school_token.read_text()[:-4] + "AAAA")
    assert cli("history", upn, "--reason", "x", check=False,
               SENDHUB_TOKEN_FILE=str(forged)).returncode == 3
    no_reason = cli("history", upn, check=False)
    assert no_reason.returncode == 2 and "needs a reason" in no_reason.stderr
    cli("history", upn, "--reason", "annual review")
    cli("history", upn, "--as-of", "2025-06-01", *AUDITOR)
    log = cli("access-log", upn, *AUDITOR).stdout
    assert "auditor-tests" in log and "annual review" in log and "cli" in log
    assert "as of 2025-06-01" in log and "school-131004" not in log
    with psycopg.connect(settings.database_conninfo, autocommit=True) as sql:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql.execute("DELETE FROM access_log WHERE upn = %s", (upn,))
        count = sql.execute("SELECT count(*) FROM access_log WHERE upn = %s", (upn,)).fetchone()
    assert count is not None and count[0] == 3  # two reads and the access-log read itself


def test_the_auditors_report_in_a_browser(
    services: RunningServices, settings: HubSettings, cli: CLI, chromium: Any, artifacts: Path,
    tmp_path: Path,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Chloe")
    hill = {"urn": "137003", "system": "Bromcom"}

    def assessed(when: str, outcome: str) -> dict[str, Any]:
        return school_event("assessment_completed", pupil=who, source=hill, occurred_at=when,
                            payload={"assessor_role": "educational_psychologist",
                                     "assessment_kind": "ehc_needs_assessment",
                                     "identified_needs": [{"code": "ASD", "rank": 1}],
                                     "outcome": outcome, "summary": "EP report."})

    send(settings,
         school_event(pupil=who, source=hill, occurred_at="2021-10-05T15:00:00+01:00"),
         assessed("2022-01-18T11:00:00+00:00", "request_ehc_needs_assessment"),
         assessed("2022-07-05T12:00:00+01:00", "ehc_plan_issued"),
         school_event("plan_reviewed", pupil=who, source=hill,
                      occurred_at="2023-06-20T14:00:00+01:00",
                      payload={**school_event("plan_reviewed")["payload"], "plan_kind": "ehc_plan",
                               "next_review_due": "2024-06-19"}))
    eventually(lambda: versions_stored(settings, upn, 4))
    target = tmp_path / "report.html"
    cli("report", upn, "--format", "html", "-o", str(target), *AUDITOR)
    page = chromium.new_page(viewport={"width": 1123, "height": 794})  # A4 landscape
    try:
        page.goto(target.as_uri())
        page.screenshot(path=str(artifacts / "audit-report.png"), full_page=True)
        assert page.locator(".chart svg").is_visible()
        assert page.locator(".chart svg").bounding_box()["width"] > 600  # type: ignore[index]
        assert page.get_by_text("Hash chain verified").is_visible()
        request_row = page.locator("tr", has_text="EHC needs assessment request to plan issued")
        # The school's own request, with no LA connected: measured, no statutory limit
        # applied (the 20 weeks run from the LA receiving the request).
        assert "24 wk 0 d" in request_row.inner_text() and "OVERDUE" not in request_row.inner_text()
        review_row = page.locator("tr", has_text="EHC plan annual review")
        assert "still open" in review_row.inner_text() and "OVERDUE" in review_row.inner_text()
        assert page.locator("tr", has_text="Concern to first assessment").count() == 1
    finally:
        page.close()
    assert "report" in cli("access-log", upn, *AUDITOR).stdout
