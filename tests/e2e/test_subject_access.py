"""Subject access on the running hub: for a pupil with a packet, a receipt, and an
amendment, `sendhub subject-access` writes everything the hub holds, as stored, and a
readable page in accessible markup (the page's structure is tested in
tests/unit/test_subject_access.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from lxml import html

from sendhub.publishing import publish_lines
from services.records.application import RecordsApplication
from services.records.handlers import to_history_entry
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from tests.conftest import CLI
from tests.e2e.conftest import RunningServices, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

OAKFIELD = {"urn": "131001", "system": "SIMS"}
AUDITOR = ("--reason", "annual review preparation")


def send(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def states(settings: HubSettings, packet_id: UUID) -> list[str]:
    store = TransfersApplication.for_settings(settings)
    try:
        return [e.state for e in store.delivery_events(packet_id)]
    finally:
        store.close()


def test_subject_access_is_complete_for_a_pupil_with_a_packet_and_an_amendment(
    services: RunningServices, settings: HubSettings, cli: CLI, tmp_path: Path,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Ffion")
    send(settings,
         school_event(pupil=who, source=OAKFIELD, occurred_at="2025-11-03T10:00:00+00:00",
                      payload={"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
                               "summary": "Anxious at drop-off."}),
         school_event("pupil_moved", pupil=who, source=OAKFIELD, payload={
             "destination": {"kind": "school", "urn": "131002"}, "move_kind": "in_year",
             "effective_date": "2026-01-12"}))
    def packet() -> Any:
        found = packets_for(settings, "urn-131002", upn)
        assert found, "no packet yet"
        return found[0]

    first = eventually(packet)
    cli("receipt", str(first.packet_id), "--receiver", "urn-131002", "--status", "received")
    eventually(lambda: assert_in("received", states(settings, first.packet_id)))
    send(settings, school_event("assessment_completed", pupil=who, source=OAKFIELD,
                                occurred_at="2026-01-08T10:00:00+00:00",
                                recorded_by={"role": "SENCO", "name": "Mrs J. Patel"}))

    def amended() -> Any:
        found = [p for p in packets_for(settings, "urn-131002", upn) if p.supersedes]
        assert found, "no amendment yet"
        return found[0]

    amendment = eventually(amended)
    cli("receipt", str(amendment.packet_id), "--receiver", "urn-131002", "--status", "rejected",
        "--reason", "not on our roll yet")
    eventually(lambda: assert_in("rejected", states(settings, amendment.packet_id)))
    eventually(lambda: assert_in("superseded", states(settings, first.packet_id)))
    cli("history", upn, *AUDITOR)
    cli("packet", str(first.packet_id), "--format", "html", "-o", str(tmp_path / "p.html"),
        *AUDITOR)

    out = tmp_path / "answer"
    result = cli("subject-access", upn, "-o", str(out))
    assert "3 history entries, 2 packet(s)" in result.stdout
    doc = json.loads((out / "subject-access.json").read_text())
    assert stat.S_IMODE((out / "subject-access.json").stat().st_mode) == 0o600

    stored = [to_history_entry(e) for e in
              RecordsApplication(env=settings.eventsourcing_env()).history_events(upn)]
    assert [(h["version"], h["event_type"], h["occurred_at"], h["recorded_at"])
            for h in doc["history"]] == [
        (h.version, h.event.event_type, h.event.occurred_at.isoformat(),
         h.recorded_at.isoformat()) for h in stored]
    assert [h["event"] for h in doc["history"]] == [
        h.event.model_dump(mode="json") for h in stored]  # every event as stored
    assert doc["history"][2]["recorded_by"]["setting"] == "131001"
    assert doc["history"][2]["recorded_by"]["role"] == "SENCO"
    assert doc["history"][2]["event_hash"] == stored[2].event_hash

    packets = {p["packet_id"]: p for p in doc["packets"]}
    assert set(packets) == {str(first.packet_id), str(amendment.packet_id)}
    one, two = packets[str(first.packet_id)], packets[str(amendment.packet_id)]
    assert one["receiver"] == two["receiver"] == "urn-131002"
    assert one["inbox"] == "urn-131002"
    assert [e["state"] for e in one["delivery_events"]] == states(settings, first.packet_id)
    assert {"sent", "received", "superseded"} <= {e["state"] for e in one["delivery_events"]}
    assert {"sent", "rejected"} <= {e["state"] for e in two["delivery_events"]}
    assert one["superseded_by"] == str(amendment.packet_id) and two["state"] == "rejected"
    assert two["supersedes"] == str(first.packet_id) and two["content"]["changes"]
    assert one["content"] == json.loads(first.model_dump_json())
    assert [(r["packet_id"], r["status"], r["reason"]) for r in doc["receipts"]] == [
        (str(first.packet_id), "received", None),
        (str(amendment.packet_id), "rejected", "not on our roll yet")]

    reads = [(a["who"], a["what"], a["why"]) for a in doc["access_log"]]
    assert ("auditor-tests", "history", "annual review preparation") in reads
    assert ("auditor-tests", "packet-html", "annual review preparation") in reads
    assert reads[-1] == ("auditor-tests", "subject-access",
                         "subject access request (UK GDPR Article 15)")  # this read, first
    assert doc["erasure"] is None

    page = html.fromstring((out / "subject-access.html").read_text())
    assert page.get("lang") == "en-GB"
    headings = [h.text_content() for h in page.xpath("//h2")]
    assert "The SEN history" in headings and "Who has looked at this record" in headings
    assert len(page.xpath("//h3[starts-with(., 'Amendment to a transfer packet')]")) == 1
    assert all(th.get("scope") in ("col", "row") for th in page.xpath("//th"))
    (history_table,) = page.xpath("//table[starts-with(caption, 'Every entry in the pupil')]")
    assert len(history_table.xpath("./tbody/tr")) == 3
    body = page.text_content()
    assert "The receiving setting rejected it" in body and "not on our roll yet" in body
    assert "Anxious at drop-off." in body
    assert "everything the hub holds (a subject access request)" in body

    log = cli("access-log", upn, *AUDITOR).stdout
    assert "subject-access" in log


def test_an_unknown_pupil_and_an_unwritable_folder_are_refused_clearly(
    services: RunningServices, cli: CLI, tmp_path: Path,
) -> None:
    nobody = random_upn()
    unknown = cli("subject-access", nobody, "-o", str(tmp_path / "none"), check=False)
    assert unknown.returncode == 1
    assert f"holds no SEN history and no packets for UPN {nobody}" in unknown.stderr
    assert not list((tmp_path / "none").iterdir())
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    refused = cli("subject-access", nobody, "-o", str(a_file / "answer"), check=False)
    assert refused.returncode == 2 and "Cannot create the folder" in refused.stderr
    not_a_folder = cli("subject-access", nobody, "-o", str(a_file), check=False)
    assert not_a_folder.returncode == 2 and "is not a folder" in not_a_folder.stderr
    assert "subject-access" in cli("access-log", nobody, *AUDITOR).stdout  # the look-up
    no_reason = cli("subject-access", nobody, "-o", str(tmp_path), "--reason", " ", check=False)
    assert no_reason.returncode == 2 and "needs a reason" in no_reason.stderr


def assert_in(item: str, found: list[str]) -> None:
    assert item in found, f"{item} not yet in {found}"


def test_an_erased_pupils_answer_says_what_was_erased_and_who_had_received_packets(
    services: RunningServices, settings: HubSettings, cli: CLI, tmp_path: Path,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Gwen")
    send(settings, school_event(pupil=who, source=OAKFIELD),
         school_event("pupil_moved", pupil=who, source=OAKFIELD, payload={
             "destination": {"kind": "school", "urn": "131002"}, "move_kind": "in_year",
             "effective_date": "2026-01-12"}))

    def sent() -> None:
        found = packets_for(settings, "urn-131002", upn)
        assert len(found) == 1, "no packet yet"
        assert_in("sent", states(settings, found[0].packet_id))

    eventually(sent)
    cli("history", upn, *AUDITOR)
    cli("erase", upn, "--reason", "court order CO-2026-81", "--authorised-by", "J. Patel, DPO")

    out = tmp_path / "erased"
    result = cli("subject-access", upn, "-o", str(out))
    assert "and the erasure" in result.stdout
    doc = json.loads((out / "subject-access.json").read_text())
    erasure = doc["erasure"]
    assert erasure["authorised_by"] == "J. Patel, DPO"
    assert erasure["reason"] == "court order CO-2026-81"
    assert erasure["erased_by"].startswith("operator")
    assert [r["receiver"] for r in erasure["received_before_erasure"]] == ["urn-131002"]
    assert doc["history"] == []  # the key is gone: nobody can read it
    assert len(doc["packets"]) == 1 and doc["packets"][0]["receiver"] == "urn-131002"
    assert {"sent"} <= {e["state"] for e in doc["packets"][0]["delivery_events"]}
    reads = [a["what"] for a in doc["access_log"]]  # found under the pseudonym
    assert reads[:1] == ["history"] and "erase" in reads and reads[-1] == "subject-access"
    page = (out / "subject-access.html").read_text()
    assert "This record was erased" in page and "court order CO-2026-81" in page
    with psycopg.connect(settings.database_conninfo) as sql:
        plain = sql.execute("SELECT count(*) FROM access_log WHERE upn = %s", (upn,)).fetchone()
    assert plain == (0,)  # this read was logged under the pseudonym, not the UPN
