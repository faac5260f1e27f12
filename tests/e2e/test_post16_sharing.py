"""Post-16 packets by consent or basis (issue 14), on the real broker and database with the
services running: a move to a college with no agreement recorded (or consent refused)
delivers a minimal packet; the same history with the young person's agreement, or
under public task, delivers the full post-16 packet. The CLI's forms follow the rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.packet import TransferPacketV1
from sendhub.publishing import publish_lines
from services.shared.settings import HubSettings
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, eventually, packets_for
from tests.factories import post16_sharing, pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

HILLCREST = {"urn": "137003", "system": "Bromcom"}
NORTHGATE = {"kind": "post16_provider", "ukprn": "10034567"}
READER = ("--reason", "preparing for enrolment")  # as the session's auditor
OLD_WORRY = "Told her tutor about trouble at home"


@pytest.fixture(scope="module", autouse=True)
def registry(cli: CLI) -> None:
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))


def life(who: dict[str, str], sharing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Five years at Hillcrest, then college: an old concern answered, an old one still
    open, a recent review with the pupil's views."""
    old = school_event(pupil=who, source=HILLCREST, occurred_at="2021-10-05T15:00:00+01:00",
                       payload={"raised_by": "teacher", "areas_of_need": ["SEMH"],
                                "summary": OLD_WORRY})
    payload: dict[str, Any] = {
        "destination": NORTHGATE, "move_kind": "post16", "effective_date": "2026-09-01",
        "sen_contact": {"role": "SENCO", "work_email": "senco@hillcrest.example.org"}}
    if sharing is not None:
        payload["post16_sharing"] = sharing
    return [
        old,
        school_event("assessment_completed", pupil=who, source=HILLCREST,
                     occurred_at="2022-01-18T11:00:00+00:00",
                     payload={"assessor_role": "senco", "assessment_kind": "screening",
                              "identified_needs": [{"code": "SEMH", "rank": 1}],
                              "outcome": "sen_support", "summary": "Screening.",
                              "addresses_concerns": [old["event_id"]]}),
        school_event(pupil=who, source=HILLCREST, occurred_at="2022-03-02T10:00:00+00:00",
                     payload={"raised_by": "teacher", "areas_of_need": ["VI"],
                              "summary": "Squints at the board."}),
        school_event("plan_reviewed", pupil=who, source=HILLCREST,
                     occurred_at="2026-02-09T14:00:00+00:00",
                     payload={**school_event("plan_reviewed")["payload"],
                              "next_review_due": "2026-12-01",
                              "pupil_views": "I want to study animal care."}),
        school_event("pupil_moved", pupil=who, source=HILLCREST,
                     occurred_at="2026-05-15T10:00:00+01:00", payload=payload),
    ]


def delivered(settings: HubSettings, upn: str) -> TransferPacketV1:
    def check() -> TransferPacketV1:
        found = packets_for(settings, "ukprn-10034567", upn)
        assert found, f"no packet for {upn} yet"
        return found[0]
    result: TransferPacketV1 = eventually(check)
    return result


def test_a_college_gets_a_minimal_packet_without_agreement_and_the_full_one_with_it(
    services: RunningServices, settings: HubSettings, cli: CLI, tmp_path: Path,
) -> None:
    cases = {"none": None, "refused": post16_sharing(agreement="refused"),
             "agreed": post16_sharing(), "public_task": post16_sharing("public_task")}
    upns = {name: random_upn() for name in cases}
    events = [e for name, sharing in cases.items()
              for e in life(pupil(upns[name], name.title(), uln="9276308686"), sharing)]
    publish_lines(settings, [json.dumps(e).encode() for e in events])
    packets = {name: delivered(settings, upn) for name, upn in upns.items()}

    for name in ("none", "refused"):
        minimal = packets[name]
        assert minimal.minimal_packet and minimal.post16_basis is not None, name
        assert minimal.post16_basis.packet_form == "minimal"
        assert minimal.post16_basis.recorded is (name == "refused")
        assert minimal.has_sen_history and minimal.sen_status == "sen_support"
        assert minimal.sending_contact is not None
        assert minimal.sending_contact.work_email == "senco@hillcrest.example.org"
        assert not (minimal.concerns_open or minimal.timeline or minimal.assessments
                    or minimal.plans.reviews or minimal.current_needs or minimal.interventions)
        body = minimal.model_dump_json()
        assert OLD_WORRY not in body and "Squints" not in body and "animal care" not in body

    for name in ("agreed", "public_task"):
        full = packets[name]
        assert full.minimal_packet is None and full.post16_basis is not None, name
        assert full.post16_basis.packet_form == "full"
        assert full.post16_basis.concerns_itemised_months == 24
        assert [c.summary for c in full.concerns_open] == ["Squints at the board."]
        assert full.plans.reviews[-1].pupil_views == "I want to study animal care."
        assert [(s.area_of_need.value, s.concerns, s.still_open)
                for s in full.concerns_summary] == [("SEMH", 1, 0), ("VI", 1, 1)]
        assert OLD_WORRY not in full.model_dump_json()  # old, answered: counted only
        assert full.learner_identifier is not None
        assert full.learner_identifier.scheme == "ULN"
    assert "the young person agreed" in (packets["agreed"].post16_basis.reason
                                         if packets["agreed"].post16_basis else "")

    # The CLI's forms follow the same rule: HTML minimal or full, and no CTF for a college.
    for name, expected, absent in (("none", "Minimal packet", "Squints"),
                                   ("agreed", "Squints at the board.", "Minimal packet")):
        page = tmp_path / f"{name}.html"
        cli("packet", str(packets[name].packet_id), "--format", "html", "-o", str(page), *READER)
        text = page.read_text()
        assert expected in text and absent not in text, name
    refused = cli("packet", str(packets["none"].packet_id), "--format", "ctf", *READER,
                  check=False)
    assert refused.returncode == 1 and "post-16 provider" in refused.stdout + refused.stderr
