"""The forms say what the packet says, in a form the receiver uses: a CTF a MIS imports
correctly (one rule a test) and a readable packet in the receiving setting's words."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from lxml import etree

from contracts.packet import EHCRequest, Setting, TransferPacketV1
from contracts.school_events import SCHOOL_EVENT
from sendhub.summaries import packet_summary
from services.shared.sen_record import HistoryEntry
from services.transfers.forms import (
    CTFRefused,
    ctf_files,
    ctf_refusal,
    ctf_version,
    current_packets,
    read_ctf,
    render,
    render_ctf,
    render_ctf_file,
    render_html,
)
from services.transfers.packets import amendment_changes, build_transfer_packet
from tests.factories import post16_sharing, school_event
from tests.unit.test_packet_rules import EHC, SUPPORT

GENERATED = datetime(2026, 1, 5, tzinfo=UTC)
UPN = "H801200001001"
OAKFIELD = Setting(kind="school", urn="100001", name="Oakfield Primary School", la_code="801",
                   establishment_number="2001", in_registry=True)
BROOK = Setting(kind="school", urn="100003", name="Brook Lane Primary", la_code="801",
                establishment_number="2003", in_registry=True)
RIVERSIDE = Setting(kind="school", urn="100002", name="Riverside Academy", la_code="801",
                    establishment_number="4002", in_registry=True)


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return [HistoryEntry(upn=UPN, version=i, recorded_at=GENERATED, upn_is_temporary=False,
                         event=SCHOOL_EVENT.validate_python(e), event_hash=f"{i:064x}")
            for i, e in enumerate(events, start=1)]


def moved(effective: str = "2025-11-10", kind: str = "in_year",
          to: dict[str, str] | None = None, **payload: Any) -> dict[str, Any]:
    return school_event("pupil_moved", occurred_at="2025-10-20T09:00:00+01:00", payload={
        "destination": to or {"kind": "school", "urn": "100002"}, "move_kind": kind,
        "effective_date": effective, **payload})


def registered(packet: TransferPacketV1, origin: Setting = OAKFIELD,
               to: Setting = RIVERSIDE) -> TransferPacketV1:
    """As the transfers service sends it once the registry knows both settings."""
    return packet.model_copy(update={"from_setting": origin, "to_setting": to})




def first_sen_only(document: bytes) -> list[tuple[str, str]]:
    """An importer that reads one SEN element per pupil: the first."""
    root = etree.fromstring(document)
    return [(p.findtext("UPN") or "", p.findtext("SENhistory/SEN/SENprovision") or "")
            for p in root.iterfind("CTFpupilData/Pupil")]


# -- CTF ---------------------------------------------------------------------------


def test_ctf_puts_the_current_sen_episode_first_for_an_importer_that_reads_one() -> None:
    packet = registered(build_transfer_packet(history(SUPPORT, EHC, moved()), 3, GENERATED))
    assert [e.provision for e in packet.sen_provision_history] == ["K", "E"]
    document = render_ctf(packet)
    assert first_sen_only(document) == [(UPN, "E")]  # on an EHC plan, not K
    (read_back,) = read_ctf(document)
    assert read_back.first_provision == "E"
    assert read_back.episodes == [(date(2024, 11, 20), "K"), (date(2025, 5, 20), "E")]
    assert read_back.needs == [(1, "SPLD"), (2, "SEMH")]


@pytest.mark.parametrize(("day", "version"), [
    (date(2020, 9, 1), "20.0"),    # CTF 20: from September 2020
    (date(2021, 8, 31), "20.0"),
    (date(2021, 9, 1), "21.0"),    # CTF 21: from September 2021
    (date(2023, 9, 4), "23.0"),    # CTF 23: valid from September 2023
    (date(2025, 9, 1), "25.0"),
    (date(2026, 1, 5), "25.0"),
    (date(2026, 8, 31), "25.0"),
    (date(2026, 9, 1), "26.0"),
    (date(2030, 10, 1), "30.0"),
])
def test_ctf_version_follows_the_academic_year(day: date, version: str) -> None:
    assert ctf_version(day) == version


def test_the_ctf_header_carries_the_version_of_the_year_it_was_generated() -> None:
    packet = build_transfer_packet(history(SUPPORT, moved()), 2,
                                   datetime(2026, 9, 2, tzinfo=UTC))
    root = etree.fromstring(render_ctf(registered(packet)))
    assert root.findtext("Header/CTFversion") == "26.0"


def test_ctf_carries_gender_when_the_sender_gave_it() -> None:
    move = moved()
    move["pupil"] = {**move["pupil"], "gender": "F"}
    packet = registered(build_transfer_packet(history(SUPPORT, move), 2, GENERATED))
    pupil = etree.fromstring(render_ctf(packet)).find("CTFpupilData/Pupil")
    assert pupil is not None
    assert [c.tag for c in pupil][:6] == ["UPN", "Surname", "Forename", "DOB", "Sex",
                                          "SENhistory"]
    assert pupil.findtext("Sex") == "F"
    without = registered(build_transfer_packet(history(SUPPORT, moved()), 2, GENERATED))
    assert read_ctf(render_ctf(without))[0].gender is None


@pytest.mark.parametrize("which", ["sending", "receiving"])
def test_no_ctf_when_a_setting_is_not_in_the_registry(which: str) -> None:
    packet = registered(build_transfer_packet(history(SUPPORT, moved()), 2, GENERATED))
    unknown = Setting(kind="school", urn="100009", in_registry=False)
    packet = packet.model_copy(update={
        "from_setting" if which == "sending" else "to_setting": unknown})
    with pytest.raises(CTFRefused) as refused:
        render(packet, "ctf")
    message = str(refused.value)
    assert f"the {which} school (URN 100009) is not in the settings registry" in message
    assert "sendhub settings import" in message


def test_no_ctf_for_a_post16_provider() -> None:
    move = moved("2026-09-01", "post16", {"kind": "post16_provider", "ukprn": "10034567"})
    packet = build_transfer_packet(history(SUPPORT, move), 2, GENERATED)
    packet = registered(packet, to=packet.to_setting.model_copy(update={"name": "Northgate"}))
    reason = ctf_refusal(packet)
    assert reason is not None and "post-16 providers do not import CTFs" in reason
    with pytest.raises(CTFRefused):
        render_ctf(packet)


def test_an_inbox_makes_one_ctf_per_sending_school_without_superseded_packets() -> None:
    late = school_event("assessment_completed", occurred_at="2025-11-07T11:00:00+00:00")
    h = history(SUPPORT, moved(), late)
    first = registered(build_transfer_packet(h, 2, GENERATED))
    amended = registered(build_transfer_packet(
        h, 2, GENERATED, up_to_version=3, supersedes=first.packet_id,
        changes=amendment_changes(first, h)))
    other_upn = "X801200001002"
    other_move = moved()
    other_move["pupil"] = {**other_move["pupil"], "upn": other_upn}
    other = build_transfer_packet([HistoryEntry(
        upn=other_upn, version=1, recorded_at=GENERATED, upn_is_temporary=False,
        event=SCHOOL_EVENT.validate_python({**other_move, "source": {
            "urn": "100003", "system": "Arbor"}}), event_hash="f" * 64)], 1, GENERATED)
    other = registered(other, origin=BROOK)
    inbox = [first, other, amended]
    assert current_packets(inbox) == [other, amended]
    files, refused = ctf_files(inbox)
    assert refused == []
    assert [(f.from_urn, f.name, f.pupils) for f in files] == [
        ("100001", "8012001_CTF_8014002_001.XML", 1), ("100003", "8012003_CTF_8014002_001.XML", 1)]
    oakfield = etree.fromstring(files[0].body)
    assert oakfield.findtext("Header/SourceSchool/URN") == "100001"
    assert [p.upn for p in read_ctf(files[0].body)] == [UPN]
    assert [p.upn for p in read_ctf(files[1].body)] == [other_upn]
    with pytest.raises(CTFRefused, match="one sending school"):
        render_ctf_file([amended, other])


def test_an_inbox_ctf_names_the_packets_it_leaves_out_and_why() -> None:
    packet = build_transfer_packet(history(SUPPORT, moved()), 2, GENERATED)  # not registered
    files, refused = ctf_files([packet])
    assert files == [] and len(refused) == 1 and "sendhub settings import" in refused[0]


# -- the readable packet -------------------------------------------------------------

CONCERN = school_event(occurred_at="2025-03-01T10:00:00+00:00",
                       payload={"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
                                "summary": "Anxious on Monday mornings."})
SCREEN = school_event("assessment_completed", occurred_at="2025-04-01T10:00:00+01:00",
                      payload={"assessor_role": "senco", "assessment_kind": "screening",
                               "identified_needs": [], "outcome": "no_sen",
                               "areas_assessed": ["SPLD"], "summary": "Dyslexia screen: clear."})
REFERRAL = school_event("assessment_completed", occurred_at="2025-06-10T10:00:00+01:00",
                        payload={"assessor_role": "senco", "assessment_kind": "screening",
                                 "identified_needs": [], "outcome": "refer_to_specialist",
                                 "referred_to": "NHS speech and language therapy",
                                 "areas_assessed": ["SLCN"],
                                 "summary": "Unclear speech; referred."})
REVIEW = school_event("plan_reviewed", occurred_at="2025-02-10T16:00:00+00:00", payload={
    **school_event("plan_reviewed")["payload"],
    "provision": [{"description": "Phonics 1:1", "kind": "intervention",
                   "frequency": "3 x weekly", "started_on": "2024-12-02",
                   "ended_on": "2025-02-07"},
                  {"description": "25% extra time, separate room",
                   "kind": "exam_access_arrangements", "frequency": "in every test",
                   "started_on": "2025-01-06"}],
    "what_did_not_work": "Group sessions after lunch."})
CONTACT = {"role": "SENCO", "work_email": "senco@oakfield.example.org",
           "work_telephone": "01632 960 123"}


def readable(*events: dict[str, Any], move: dict[str, Any] | None = None) -> TransferPacketV1:
    h = history(*events, move or moved(sen_contact=CONTACT))
    return registered(build_transfer_packet(h, len(h), GENERATED))


def test_still_open_at_the_move_names_concerns_and_referrals_in_words() -> None:
    packet = readable(SUPPORT, CONCERN, SCREEN, REFERRAL)
    page = render_html(packet)
    section = page[page.index("Still open at the move"):page.index("Current needs")]
    assert "Open concerns: not yet followed up" in section
    assert "Anxious on Monday mornings." in section
    assert "at Oakfield Primary School" in section
    assert "Referred to NHS speech and language therapy (SLCN) on 10 June 2025" in section
    assert "still waiting at the move" in section
    summary = _text(packet_summary(packet))
    assert "NHS speech and language therapy" in summary and "Anxious on Monday" in summary


def test_an_ehc_request_and_an_overdue_review_are_open_items() -> None:
    packet = readable(SUPPORT).model_copy(update={
        "ehc_request_open": EHCRequest(event_id=SUPPORT["event_id"],
                                       requested_on=date(2025, 9, 1), setting_urn="100001"),
        "review_overdue_since": date(2025, 10, 1)})
    page = render_html(packet)
    assert "EHC needs assessment requested, not concluded" in page
    assert "Requested on 1 September 2025 by Oakfield Primary School" in page
    assert "was due on 1 October 2025 and was not held before the move" in page


def test_nothing_open_is_said_plainly() -> None:
    page = render_html(readable(SUPPORT))
    assert "Nothing open at the move" in page
    assert "Nothing open at the move" in _text(packet_summary(readable(SUPPORT)))


def test_what_has_been_tried_lists_every_provision_with_where_when_and_results() -> None:
    packet = readable(SUPPORT, REVIEW)
    page = render_html(packet)
    tried = page[page.index("What has been tried"):]
    assert "Phonics 1:1" in tried
    assert "from 2 December 2024 to 7 February 2025" in tried
    assert "until the move (provided by Oakfield Primary School)" in tried
    assert "Group sessions after lunch." in tried and "Short daily sessions." in tried
    assert "Provision at the move" in page  # not "current provision" at the new school


def test_exam_access_arrangements_come_first_for_a_secondary_school_or_college() -> None:
    to_secondary = moved("2027-09-01", "phase_transfer", sen_contact=CONTACT)
    to_secondary["pupil"] = {**to_secondary["pupil"], "date_of_birth": "2016-05-14"}
    page = render_html(readable(SUPPORT, REVIEW, move=to_secondary))
    assert page.index("Exam access arrangements") < page.index("Still open at the move")
    in_year = render_html(readable(SUPPORT, REVIEW))
    assert in_year.index("What has been tried") < in_year.index("Exam access arrangements")
    college = moved("2026-09-01", "post16", {"kind": "post16_provider", "ukprn": "10034567"},
                    sen_contact=CONTACT, post16_sharing=post16_sharing())
    h = history(SUPPORT, REVIEW, college)
    post16 = build_transfer_packet(h, 3, GENERATED)
    page = render_html(registered(post16, to=post16.to_setting))
    assert page.index("Exam access arrangements") < page.index("Still open at the move")
    assert "25% extra time, separate room" in page


def test_the_sending_schools_sen_contact_is_near_the_top() -> None:
    page = render_html(readable(SUPPORT))
    top = page[:page.index("SEN status")]
    assert "SEN contact at Oakfield Primary School" in top
    assert "senco@oakfield.example.org" in top and "01632 960 123" in top
    assert "senco@oakfield.example.org" in _text(packet_summary(readable(SUPPORT)))


def test_the_upn_is_for_matching_not_beside_the_name() -> None:
    move = moved(sen_contact=CONTACT)
    move["pupil"] = {**move["pupil"], "gender": "F", "uln": "9276308686"}
    page = render_html(readable(SUPPORT, move=move))
    heading = page[page.index("<h1>"):page.index("</h1>")]
    assert UPN not in heading and "Amira Khan" in heading
    matching = page[page.index("Details for matching"):page.index("SEN status")]
    for fact in (UPN, "14 May 2016", "Female", "9276308686"):
        assert fact in matching, fact


def test_an_amendment_says_in_words_what_it_replaces_and_why() -> None:
    after = school_event("assessment_completed", occurred_at="2025-12-01T10:00:00+00:00")
    h = history(SUPPORT, moved(sen_contact=CONTACT), after)
    first = registered(build_transfer_packet(h, 2, datetime(2025, 12, 1, 9, tzinfo=UTC)))
    amended = registered(build_transfer_packet(
        h, 2, GENERATED, up_to_version=3, supersedes=first.packet_id,
        changes=amendment_changes(first, h)))
    page = render_html(amended, replaced=first)
    sentence = ("Replaces the packet sent on 1 December 2025 because Oakfield Primary School "
                "recorded an assessment after Amira left.")
    assert sentence in page
    assert str(first.packet_id) not in page and "history version" not in page
    assert sentence in _text(packet_summary(amended, first))
    without_date = render_html(amended)
    assert "Replaces the packet sent earlier for Amira because Oakfield" in without_date


def test_settings_are_named_not_numbered() -> None:
    page = render_html(readable(SUPPORT, CONCERN))
    timeline = page[page.index("Timeline across every previous setting"):]
    assert "Oakfield Primary School" in timeline and "URN 100001" not in timeline
    assert "URN " not in page[:page.index("Timeline")]


def test_the_page_prints_and_needs_no_script() -> None:
    page = render_html(readable(SUPPORT, CONCERN, REVIEW))
    assert "@media print" in page and "@page" in page
    assert "<script" not in page.lower() and "http" not in page.replace("https://", "")


def _text(panel: Any) -> str:
    from rich.console import Console

    console = Console(width=400, record=True)
    console.print(panel)
    return " ".join(console.export_text().split())


def test_earlier_settings_in_the_timeline_are_named_from_the_registry() -> None:
    from services.transfers.domain import with_registry
    from services.transfers.registry import RegisteredSetting
    from services.transfers.wording import described

    names = {"100001": "Oakfield Primary School", "100002": "Riverside Primary School"}
    packet = with_registry(
        build_transfer_packet(history(SUPPORT, moved()), 2, GENERATED),
        lambda s: RegisteredSetting(urn=s.urn or "", name=names[s.urn or ""], phase="Primary")
        if s.urn in names else None)
    assert packet.setting_names == {"100001": "Oakfield Primary School"}
    assert described(packet, "Moved (in year) to school URN 100002") == (
        "Moved (in year) to Riverside Primary School")
    assert described(packet, "Moved to school URN 199999") == "Moved to school URN 199999"
