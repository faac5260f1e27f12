"""Packet rules added for receiving settings: provision history, post-16 policy,
amendments, lost pupils, delivery states, school days; and the CTF and HTML forms."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from contracts.school_events import SCHOOL_EVENT
from services.shared.school_days import SchoolCalendar, TermPeriod
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import DeliveryEvent, delivery_of, school_days_between
from services.transfers.forms import read_ctf, render_ctf, render_html
from services.transfers.packets import (
    amendment_changes,
    build_transfer_packet,
    differences,
    is_late_entry,
    rebuild_transfer_packet,
)
from tests.factories import post16_sharing, school_event

GENERATED = datetime(2026, 1, 5, tzinfo=UTC)


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return [
        HistoryEntry(upn="H801200001001", version=i, recorded_at=GENERATED,
                            upn_is_temporary=False, event=SCHOOL_EVENT.validate_python(e),
                            event_hash=f"{i:064x}")
        for i, e in enumerate(events, start=1)
    ]


def moved(to: dict[str, str], effective: str = "2025-11-10", **changes: Any) -> dict[str, Any]:
    return school_event("pupil_moved", occurred_at="2025-10-20T09:00:00+01:00",
                        payload={"destination": to, "move_kind": "in_year",
                                 "effective_date": effective}, **changes)


SCHOOL = {"kind": "school", "urn": "100002"}
SUPPORT = school_event("assessment_completed", occurred_at="2024-11-20T11:00:00+00:00")
EHC = school_event("assessment_completed", occurred_at="2025-05-20T11:00:00+01:00",
                   payload={"assessor_role": "educational_psychologist",
                            "assessment_kind": "ehc_needs_assessment",
                            "identified_needs": [{"code": "SPLD", "rank": 1},
                                                 {"code": "SEMH", "rank": 2}],
                            "outcome": "ehc_plan_issued", "summary": "Plan issued."})


def test_the_packet_carries_the_census_provision_history_and_its_chain_head() -> None:
    h = history(SUPPORT, EHC, moved(SCHOOL))
    packet = build_transfer_packet(h, 3, GENERATED)
    assert [(e.start_date, e.provision) for e in packet.sen_provision_history] == [
        (date(2024, 11, 20), "K"), (date(2025, 5, 20), "E")]
    assert packet.history_chain_head == h[-1].event_hash


def test_ctf_is_well_formed_and_reads_back_as_the_same_episodes_and_ranked_needs() -> None:
    packet = build_transfer_packet(history(SUPPORT, EHC, moved(SCHOOL)), 3, GENERATED)
    packet = packet.model_copy(update={
        "from_setting": packet.from_setting.model_copy(update={
            "name": "Oakfield Primary School", "la_code": "801", "establishment_number": "2001"}),
        "to_setting": packet.to_setting.model_copy(update={
            "la_code": "801", "establishment_number": "2002"})})
    document = render_ctf(packet)
    root = etree.fromstring(document)
    assert root.tag == "CTfile"
    assert root.findtext("Header/DocumentName") == "Common Transfer File"
    assert root.findtext("Header/CTFversion") == "25.0"
    assert root.findtext("Header/DocumentQualifier") == "partial"
    assert root.findtext("Header/SourceSchool/LEA") == "801"
    assert root.findtext("Header/SourceSchool/Estab") == "2001"
    assert root.findtext("Header/SourceSchool/AcademicYear") == "2025"
    assert root.findtext("Header/DestSchool/URN") == "100002"
    assert [c.tag for c in root.find("CTFpupilData/Pupil")] == [
        "UPN", "Surname", "Forename", "DOB", "SENhistory"]
    (pupil,) = read_ctf(document)
    assert pupil.upn == packet.pupil.upn
    assert pupil.episodes == [(e.start_date, e.provision) for e in packet.sen_provision_history]
    assert pupil.needs == [(1, "SPLD"), (2, "SEMH")]


def test_a_lost_pupil_is_addressed_like_the_lost_pupil_database() -> None:
    packet = build_transfer_packet(history(SUPPORT, moved({"kind": "unknown"})), 2, GENERATED)
    packet = packet.model_copy(update={"from_setting": packet.from_setting.model_copy(
        update={"la_code": "801", "establishment_number": "2001"})})
    assert packet.to_setting.receiver == "lost-pupils"
    root = etree.fromstring(render_ctf(packet))
    assert (root.findtext("Header/DestSchool/LEA"), root.findtext("Header/DestSchool/Estab")) == (
        "XXX", "XXXX")


def test_post16_packet_keeps_the_current_picture_and_summarises_old_history() -> None:
    old_concern = school_event(occurred_at="2021-10-05T15:00:00+01:00")
    old_review = school_event("plan_reviewed", occurred_at="2022-02-10T16:00:00+00:00")
    open_concern = school_event(occurred_at="2021-11-05T15:00:00+00:00",
                                payload={"raised_by": "teacher", "areas_of_need": ["VI"],
                                         "summary": "Squints at the board."})
    recent_review = school_event("plan_reviewed", occurred_at="2025-02-10T16:00:00+00:00",
                                 payload={**school_event("plan_reviewed")["payload"],
                                          "pupil_views": "I want to do animal care."})
    move = moved({"kind": "post16_provider", "ukprn": "10034567"}, effective="2026-09-01",
                 pupil={"upn": "H801200001001", "given_name": "Chloe", "family_name": "Evans",
                        "date_of_birth": "2009-01-22", "uln": "9276308686"})
    move["payload"]["move_kind"] = "post16"
    move["payload"]["post16_sharing"] = post16_sharing()
    packet = build_transfer_packet(
        history(old_concern, open_concern, SUPPORT, old_review, EHC, recent_review, move), 7,
        GENERATED)
    assert packet.policy == "post16"
    assert packet.pupil.uln == "9276308686"
    assert all(t.occurred_at.date() >= date(2024, 9, 1) for t in packet.timeline)
    assert len(packet.history_summary) == 1 and "2 concern(s)" in packet.history_summary[0]
    assert [a.completed_on for a in packet.assessments] == [date(2024, 11, 20), date(2025, 5, 20)]
    assert [r.reviewed_on for r in packet.plans.reviews] == [date(2025, 2, 10)]
    assert packet.plans.reviews[0].pupil_views == "I want to do animal care."
    assert packet.plans.current is not None and packet.sen_status == "ehc_plan"
    assert [c.areas_of_need for c in packet.concerns_open] == [["VI"]]  # open: always kept


def test_a_late_entry_from_the_former_school_makes_an_amendment_that_names_the_change() -> None:
    move = moved(SCHOOL, effective="2025-11-10")
    late = school_event("assessment_completed", occurred_at="2025-11-07T11:00:00+00:00")
    after = school_event(occurred_at="2025-12-01T10:00:00+00:00")  # former school, after leaving
    by_receiver = school_event(occurred_at="2025-11-20T10:00:00+00:00",
                               source={"urn": "100002", "system": "Arbor"})
    h = history(school_event(), move, late, after, by_receiver)
    first = build_transfer_packet(h, 2, GENERATED)
    assert is_late_entry(h[2], h[1].event) and not is_late_entry(h[3], h[1].event)  # type: ignore[arg-type]
    assert not is_late_entry(h[4], h[1].event)  # type: ignore[arg-type]
    changes = amendment_changes(first, h)
    amended = build_transfer_packet(h, 2, GENERATED, up_to_version=5,
                                    supersedes=first.packet_id, changes=changes)
    assert amended.packet_id != first.packet_id and amended.supersedes == first.packet_id
    assert len(changes) == 2 and "recorded late, history version 3" in changes[0]
    assert "recorded after the pupil had left, history version 4" in changes[1]
    assert [t.history_version for t in amended.timeline] == [1, 2, 3, 4]  # not the receiver's own
    marked = {t.history_version: t.recorded_after_leaving for t in amended.timeline}
    assert marked == {1: False, 2: False, 3: False, 4: True}
    assert amended.sen_status == "sen_support"


def test_a_rebuilt_packet_matches_the_one_sent_and_a_changed_history_does_not() -> None:
    move = moved(SCHOOL)
    h = history(SUPPORT, EHC, move)
    sent = build_transfer_packet(h, 3, GENERATED)
    assert differences(sent, rebuild_transfer_packet(sent, h)) == []
    altered = history(SUPPORT, {**EHC, "payload": {**EHC["payload"], "summary": "Changed."}},
                      move)
    assert differences(sent, rebuild_transfer_packet(sent, altered)) == ["assessments"]


def test_delivery_state_follows_the_furthest_receipt_and_resends_after_15_school_days() -> None:
    sent_at = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday
    events = [DeliveryEvent("pending", sent_at), DeliveryEvent("sent", sent_at)]
    d = delivery_of(events)
    assert d.state == "sent" and d.attempts == 1
    assert not d.resend_due(date(2026, 1, 23), 15)  # 14 weekdays later
    assert d.resend_due(date(2026, 1, 26), 15) and d.is_overdue(date(2026, 1, 26), 15)
    accepted = delivery_of([*events, DeliveryEvent("accepted", sent_at),
                            DeliveryEvent("received", sent_at)])
    assert accepted.state == "accepted" and not accepted.resend_due(date(2026, 3, 1), 15)
    rejected = delivery_of([*events, DeliveryEvent("rejected", sent_at, "not our pupil")])
    assert (rejected.state, rejected.reason) == ("rejected", "not our pupil")
    assert delivery_of([*events, DeliveryEvent("superseded", sent_at, "amended")]).state == (
        "superseded")


def test_school_days_count_weekdays_less_bank_holidays_by_default() -> None:
    assert school_days_between(date(2026, 1, 2), date(2026, 1, 5)) == 1  # Friday to Monday
    assert school_days_between(date(2026, 1, 5), date(2026, 1, 26)) == 15
    assert school_days_between(date(2026, 1, 5), date(2026, 1, 5)) == 0
    assert school_days_between(date(2026, 5, 22), date(2026, 5, 26)) == 1  # spring bank holiday


def test_the_resend_window_is_counted_in_the_receiving_las_school_days() -> None:
    sent_at = datetime(2025, 10, 10, 9, tzinfo=UTC)  # a Friday, two weeks before half-term
    d = delivery_of([DeliveryEvent("pending", sent_at), DeliveryEvent("sent", sent_at)])
    bristol = SchoolCalendar([TermPeriod("801", "Autumn 1", date(2025, 9, 3), date(2025, 10, 24)),
                              TermPeriod("801", "Autumn 2", date(2025, 11, 3), date(2025, 12, 19)),
                              TermPeriod("801", "Summer 2", date(2026, 6, 8), date(2026, 7, 22))])
    assert d.resend_due(date(2025, 10, 31), 15)  # 15 weekdays
    assert d.school_days_waiting(date(2025, 10, 31), bristol, "801") == 10  # half-term
    assert not d.resend_due(date(2025, 10, 31), 15, bristol, "801")
    assert d.resend_due(date(2025, 11, 7), 15, bristol, "801")
    assert d.is_overdue(date(2025, 11, 7), 15, bristol, "801")
    assert d.resend_due(date(2025, 10, 31), 15, bristol, "803")  # no term dates: weekdays


def test_html_packet_puts_the_facts_a_senco_needs_first_and_says_what_was_not_recorded() -> None:
    review = school_event("plan_reviewed", occurred_at="2025-02-10T16:00:00+00:00")
    open_concern = school_event(occurred_at="2025-03-01T10:00:00+00:00",
                                payload={"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
                                         "summary": "Anxious <b>mornings</b>."})
    packet = build_transfer_packet(history(SUPPORT, review, open_concern, moved(SCHOOL)), 4,
                                   GENERATED)
    page = render_html(packet)
    first_screen = page[:page.index("Timeline across every previous setting")]
    for fact in ("SEN support (K)", "Open concerns", "SPLD", "Short daily sessions.",
                 "Read 40 words", "Phonics 1:1", "Happier at home.", "Pupil's views",
                 "Not recorded"):
        assert fact in first_screen, fact
    assert "Anxious &lt;b&gt;mornings&lt;/b&gt;." in page  # escaped, never markup
    assert "http" not in page.replace("https://", "")  # no external assets
