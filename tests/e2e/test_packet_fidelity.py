"""What the packet must never hide (issue 12), through the running services on the real
broker and database: one pupil for each case, each packet checked as JSON (as sent), as
CTF read the way an importer that takes only the first `SEN` element reads it, and as
HTML rendered in Chromium (screenshots in test-artifacts/)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from contracts.packet import TransferPacketV1
from sendhub.publishing import publish_lines
from services.shared.settings import HubSettings
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

OAKFIELD = {"urn": "131001", "system": "SIMS"}
RIVERSIDE = "131002"
READER = ("--reason", "preparing for admission")
CENSUS = {"none": "N", "sen_support": "K", "ehc_plan": "E"}


@pytest.fixture(scope="module", autouse=True)
def registry(cli: CLI) -> None:
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))


def concern(who: dict[str, str], areas: list[str], on: str) -> dict[str, Any]:
    return school_event(pupil=who, source=OAKFIELD, occurred_at=on, payload={
        "raised_by": "parent_carer", "areas_of_need": areas,
        "summary": f"Parents worried about {', '.join(areas)}."})


def assessed(who: dict[str, str], outcome: str, needs: list[str], on: str,
             kind: str = "screening", **more: Any) -> dict[str, Any]:
    return school_event("assessment_completed", pupil=who, source=OAKFIELD, occurred_at=on,
                        payload={"assessor_role": "senco", "assessment_kind": kind,
                                 "outcome": outcome, "summary": f"{outcome} ({kind}).",
                                 "identified_needs": [{"code": c, "rank": i} for i, c in
                                                      enumerate(needs, start=1)], **more})


def reviewed(who: dict[str, str], on: str, provision: list[tuple[str, str, str | None]],
             **more: Any) -> dict[str, Any]:
    return school_event("plan_reviewed", pupil=who, source=OAKFIELD, occurred_at=on, payload={
        "plan_kind": "sen_support_plan", "decision": "continue", "what_worked": "Routine.",
        "targets": [{"description": "Settle within 10 minutes", "progress": "partly_met"}],
        "provision": [{"description": d, "kind": k, "frequency": "daily", "started_on": s}
                      for d, s, k in provision], **more})


def moved(who: dict[str, str], on: str = "2025-11-03T09:00:00+00:00") -> dict[str, Any]:
    return school_event("pupil_moved", pupil=who, source=OAKFIELD, occurred_at=on, payload={
        "destination": {"kind": "school", "urn": RIVERSIDE}, "move_kind": "in_year",
        "effective_date": "2025-11-03",
        "sen_contact": {"role": "SENCO", "work_email": "senco@oakfield.example"}})


def scenario() -> dict[str, tuple[dict[str, str], list[dict[str, Any]]]]:
    """Each case: a pupil and the events Oakfield sends before the pupil moves."""
    cases: dict[str, tuple[dict[str, str], list[dict[str, Any]]]] = {}

    def case(name: str, *events: Any) -> None:
        who = pupil(random_upn(), name.title())
        cases[name] = (who, [e(who) for e in events] + [moved(who)])

    case("unrelated", lambda w: concern(w, ["SEMH"], "2025-01-10T10:00:00+00:00"),
         lambda w: assessed(w, "no_sen", [], "2025-02-10T10:00:00+00:00",
                            areas_assessed=["SPLD"]))
    case("referral", lambda w: concern(w, ["SLCN"], "2025-01-10T10:00:00+00:00"),
         lambda w: assessed(w, "refer_to_specialist", [], "2025-03-10T10:00:00+00:00",
                            referred_to="NHS speech and language therapy",
                            areas_assessed=["SLCN"]))
    case("request", lambda w: assessed(w, "sen_support", ["ASD"], "2025-01-10T10:00:00+00:00"),
         lambda w: assessed(w, "request_ehc_needs_assessment", [], "2025-06-10T10:00:00+01:00"))
    case("nsa", lambda w: assessed(w, "sen_support", ["NSA"], "2025-01-10T10:00:00+00:00"))
    case("ceased", lambda w: assessed(w, "ehc_plan_issued", ["PD"], "2024-01-10T10:00:00+00:00",
                                      kind="ehc_needs_assessment"),
         lambda w: school_event("plan_reviewed", pupil=w, source=OAKFIELD,
                                occurred_at="2025-07-01T10:00:00+01:00", payload={
                                    "plan_kind": "ehc_plan", "decision": "cease",
                                    "what_worked": "Adapted PE.", "targets": [],
                                    "provision": []}))
    case("reviews", lambda w: assessed(w, "sen_support", ["SPLD"], "2024-10-01T10:00:00+01:00"),
         lambda w: reviewed(w, "2024-12-01T10:00:00+00:00",
                            [("Phonics group", "2024-10-05", "intervention")]),
         lambda w: reviewed(w, "2025-05-01T10:00:00+01:00",
                            [("25% extra time", "2025-05-01", "exam_access_arrangements"),
                             ("Reading pen", "2025-05-01", "equipment")],
                            what_did_not_work="Withdrawal from class."))
    return cases


def first_sen_status(ctf: bytes) -> str | None:
    """What an importer that reads one `SEN` element takes: the first."""
    root = etree.fromstring(ctf)
    first = root.find(".//SENhistory/SEN")
    return None if first is None else first.findtext("SENprovision")


def test_each_case_reaches_the_next_school_in_every_form(
        services: RunningServices, settings: HubSettings, cli: CLI, chromium: Any,
        artifacts: Path, tmp_path: Path) -> None:
    cases = scenario()
    publish_lines(settings, [json.dumps(e).encode() for _, events in cases.values()
                             for e in events])
    packets: dict[str, TransferPacketV1] = {}
    for name, (who, _) in cases.items():
        packets[name] = eventually(lambda w=who: _one(packets_for(
            settings, f"urn-{RIVERSIDE}", w["upn"])))[-1]

    assert [c.areas_of_need[0].value for c in packets["unrelated"].concerns_open] == ["SEMH"]
    [referral] = packets["referral"].referrals_pending
    assert referral.referred_to == "NHS speech and language therapy"
    assert len(packets["referral"].concerns_open) == 1
    assert packets["referral"].sen_status == "none"  # a referral alone changes no status
    assert packets["request"].ehc_request_open is not None
    assert packets["request"].ehc_request_open.requested_on == date(2025, 6, 10)
    assert [n.code.value for n in packets["nsa"].current_needs] == ["NSA"]
    assert (packets["ceased"].sen_status, packets["ceased"].current_needs[0].code.value) == (
        "sen_support", "PD")
    tried = packets["reviews"].interventions
    assert [i.description for i in tried] == ["Phonics group", "25% extra time", "Reading pen"]
    assert [i.open_at_move for i in tried] == [True, True, True]
    assert [i.description for i in packets["reviews"].exam_access_arrangements] == [
        "25% extra time"]
    assert packets["reviews"].sending_contact is not None

    for name, sent in packets.items():
        ctf = tmp_path / f"{name}.xml"
        cli("packet", str(sent.packet_id), "--format", "ctf", "-o", str(ctf), *READER)
        # a pupil never on SEN support has no SEN episode at all: nothing to read is N
        allowed = {CENSUS[sent.sen_status]} | ({None} if sent.sen_status == "none" else set())
        assert first_sen_status(ctf.read_bytes()) in allowed, name
        html = tmp_path / f"{name}.html"
        cli("packet", str(sent.packet_id), "--format", "html", "-o", str(html), *READER)
        page = chromium.new_page(viewport={"width": 794, "height": 1123})
        try:
            page.goto(html.as_uri())
            page.screenshot(path=str(artifacts / f"fidelity-{name}.png"), full_page=True)
            text = page.inner_text("body")
        finally:
            page.close()
        assert "SEMH" in text if name == "unrelated" else True
        if name == "referral":
            assert "NHS speech and language therapy" in text
        if name == "reviews":
            assert "25% extra time" in text and "Withdrawal from class." in text


def test_a_late_entry_amends_the_packet_and_keeps_what_is_open(
        services: RunningServices, settings: HubSettings) -> None:
    who = pupil(random_upn(), "Late")
    publish_lines(settings, [json.dumps(e).encode() for e in (
        concern(who, ["SEMH"], "2025-01-10T10:00:00+00:00"), moved(who))])
    eventually(lambda: _one(packets_for(settings, f"urn-{RIVERSIDE}", who["upn"])))
    late = assessed(who, "refer_to_specialist", [], "2025-10-20T10:00:00+01:00",
                    referred_to="CAMHS", areas_assessed=["SEMH"])
    publish_lines(settings, [json.dumps(late).encode()])

    def amended() -> TransferPacketV1:
        found = [p for p in packets_for(settings, f"urn-{RIVERSIDE}", who["upn"])
                 if p.supersedes is not None]
        assert found, "no amendment yet"
        return found[-1]
    amendment = eventually(amended)
    assert [r.referred_to for r in amendment.referrals_pending] == ["CAMHS"]
    assert len(amendment.concerns_open) == 1 and amendment.changes


def _one(found: list[Any]) -> list[Any]:
    assert found, "no packet yet"
    return found
