"""A school corrects its own entries, on the running hub (real broker and database):
a retraction after the packet went produces an amendment that says what was withdrawn
without repeating it, in every form; a misfiled entry moves to the right pupil's
history and packet and leaves the wrong one's; the chains verify; a correction sent
again adds nothing; a correction that cannot apply is dead-lettered with its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.packet import TransferPacketV1
from sendhub.publishing import publish_lines
from services.records.application import RecordsApplication
from services.records.domain import EntryMisfiled, EntryRefiled, EntryRetracted
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from tests.conftest import CLI
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import correction, pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = ("--reason", "checking a correction reached the receiver")
OAKFIELD = {"urn": "131001", "system": "SIMS"}
RIVERSIDE = {"urn": "131002", "system": "Arbor"}
SECRET = "Bruising on the left arm noticed in PE; mother says a fall."


def send(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def stored(settings: HubSettings, upn: str, count: int) -> list[Any]:
    events = RecordsApplication(env=settings.eventsourcing_env()).history_events(upn)
    assert len(events) == count, f"{len(events)} of {count} recorded"
    return events


def held_by_transfers(settings: HubSettings, upn: str, count: int) -> None:
    store = TransfersApplication.for_settings(settings)
    try:
        assert len(store.history_of(upn)) == count, "transfers has not caught up"
    finally:
        store.close()


def packets(settings: HubSettings, receiver: str, upn: str, count: int) -> list[TransferPacketV1]:
    found = list({p.packet_id: p for p in packets_for(settings, receiver, upn)}.values())
    assert len(found) == count, f"{len(found)} of {count} packets in {receiver}'s inbox"
    return found


def moved(who: dict[str, str], source: dict[str, str], to: str) -> dict[str, Any]:
    return school_event("pupil_moved", pupil=who, source=source,
                        occurred_at="2025-10-20T09:00:00+01:00", payload={
                            "destination": {"kind": "school", "urn": to},
                            "move_kind": "in_year", "effective_date": "2025-11-10"})


def concern(who: dict[str, str], summary: str = SECRET) -> dict[str, Any]:
    return school_event(pupil=who, source=OAKFIELD, occurred_at="2025-03-03T10:00:00+00:00",
                        payload={"raised_by": "teacher", "areas_of_need": ["SEMH"],
                                 "summary": summary})


@pytest.fixture(scope="module", autouse=True)
def registry(services: RunningServices, cli: CLI) -> None:
    """The CTF needs both schools in the registry."""
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))


def test_a_retraction_after_the_packet_went_amends_it_without_repeating_it(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Amira")
    wrong = concern(who)
    screening = school_event("assessment_completed", pupil=who, source=OAKFIELD,
                             occurred_at="2025-04-01T10:00:00+01:00")
    send(settings, wrong, screening, moved(who, OAKFIELD, "131002"))
    [first] = eventually(lambda: packets(settings, "urn-131002", upn, 1))
    assert [c.summary for c in first.concerns_open] == [SECRET]

    retraction = correction("entry_retracted", wrong, reason="Recorded in error")
    send(settings, retraction)
    amendment = next(p for p in eventually(lambda: packets(settings, "urn-131002", upn, 2))
                     if p.packet_id != first.packet_id)
    assert amendment.supersedes == first.packet_id
    assert amendment.changes == [
        "Withdrawn: the entry of 3 March 2025 recorded by URN 131001 (history version 1) "
        "was withdrawn by that setting: Recorded in error. It is no longer part of this "
        "pupil's record; please remove it from yours (history version 4)"]
    assert amendment.concerns_open == [] and len(amendment.assessments) == 1
    for form in ("json", "ctf", "html"):
        body = cli("packet", str(amendment.packet_id), "--format", form, *AUDITOR).stdout
        assert SECRET not in body and "Bruising" not in body, form
    rebuilt = cli("packet", str(amendment.packet_id), "--rebuild", *AUDITOR).stdout
    assert "it matches what was sent, field for field" in rebuilt

    # The same correction again adds nothing: a later entry lands at version 5, and no
    # third packet follows (the new school's own review is not sent back to it).
    send(settings, retraction,
         school_event("plan_reviewed", pupil=who, source=RIVERSIDE,
                      occurred_at="2025-12-01T15:00:00+00:00"))
    events = eventually(lambda: stored(settings, upn, 5))
    assert isinstance(events[3], EntryRetracted) and events[4].setting_urn == "131002"
    eventually(lambda: held_by_transfers(settings, upn, 5))
    packets(settings, "urn-131002", upn, 2)
    assert "every chain intact" in cli("verify", upn).stdout

    # The auditor still sees what the record said, marked.
    history = json.loads(cli("history", upn, "--json", *AUDITOR).stdout)
    assert history["events"][0]["event"]["payload"]["summary"] == SECRET
    assert history["events"][0]["corrected"]["kind"] == "entry_retracted"
    assert history["open_concerns"] == []


def test_a_misfiled_entry_moves_to_the_right_pupils_history_and_packet(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    wrong_upn, right_upn = random_upn(), random_upn()
    wrong, right = pupil(wrong_upn, "Chloe"), pupil(right_upn, "Dylan")
    theirs = concern(wrong, summary="Struggles to copy from the board; sits at the front.")
    send(settings, theirs, moved(wrong, OAKFIELD, "131002"),
         moved(right, OAKFIELD, "137003"))
    [wrong_first] = eventually(lambda: packets(settings, "urn-131002", wrong_upn, 1))
    [right_first] = eventually(lambda: packets(settings, "urn-137003", right_upn, 1))
    assert len(wrong_first.concerns_open) == 1 and not right_first.has_sen_history

    send(settings, correction("entry_misfiled", theirs, correct_pupil=right,
                              reason=f"This was {right['given_name']}'s, not Chloe's."))
    wrong_amended = next(p for p in eventually(
        lambda: packets(settings, "urn-131002", wrong_upn, 2)) if p.supersedes)
    [withdrawn] = wrong_amended.changes
    assert withdrawn.startswith("Withdrawn: the entry of 3 March 2025 recorded by URN 131001")
    assert "recorded under the wrong pupil" in withdrawn
    text = wrong_amended.model_dump_json()
    assert "copy from the board" not in text and "Dylan" not in text and right_upn not in text
    assert wrong_amended.concerns_open == [] and not wrong_amended.has_sen_history

    right_amended = next(p for p in eventually(
        lambda: packets(settings, "urn-137003", right_upn, 2)) if p.supersedes)
    [added] = right_amended.changes
    assert added.startswith("Added: Concern raised by teacher (SEMH) on 3 March 2025")
    assert "moved here from another pupil's record" in added
    assert [c.summary for c in right_amended.concerns_open] == [
        "Struggles to copy from the board; sits at the front."]
    assert right_amended.pupil.upn == right_upn and right_amended.has_sen_history

    [_, _, mark] = stored(settings, wrong_upn, 3)
    [_, refiled] = stored(settings, right_upn, 2)
    assert isinstance(mark, EntryMisfiled) and isinstance(refiled, EntryRefiled)
    assert refiled.event_id == theirs["event_id"] and refiled.refiled_from_version == 1
    for upn in (wrong_upn, right_upn):
        assert "every chain intact" in cli("verify", upn).stdout


def test_a_correction_of_another_schools_entry_is_dead_lettered_with_its_reason(
    services: RunningServices, settings: HubSettings,
) -> None:
    upn = random_upn()
    who = pupil(upn, "Ella")
    entry = concern(who)
    send(settings, entry, correction("entry_retracted", entry, source=RIVERSIDE))

    def refused() -> Any:
        found = [d for d in dead_letters(settings)
                 if d.key == upn and d.reason == "history_rejected"]
        assert found, "not dead-lettered yet"
        return found[0]

    letter = eventually(refused)
    assert letter.service == "records"
    assert "recorded by 131001, not by 131002" in letter.problems[0].message
    assert len(stored(settings, upn, 1)) == 1
