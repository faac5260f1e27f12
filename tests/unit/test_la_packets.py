"""The local authority as a receiver (issue 13): an EHC plan that follows the pupil into
another LA, a possible child missing education for the leaving school's LA, and who may
read and answer for those notices. Pure: the policies, the packet parts, the forms and
the access rules, with no I/O (the use cases on both stores: tests/transfers_cases.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import pytest
from lxml import etree

from contracts.packet import Setting, TransferPacketV1
from contracts.receipts import PacketReceiptV1
from contracts.school_events import PupilMovedV1
from contracts.topics import Topics
from sendhub.gateway.store import inboxes_filter
from sendhub.summaries import packet_summary
from services.shared.access import (
    Kind,
    Principal,
    PrincipalError,
    may_receive_for,
    packet_inbox,
    receivers_of,
)
from services.shared.kafka_grants import Grant, grants, topics_to_create
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import (
    Issue,
    when_late_entry_recorded_amend_packet,
    when_plan_moves_to_another_la_notify_both_las,
    when_pupil_moved_issue_packet,
)
from services.transfers.forms import CTFRefused, read_ctf, render_ctf, render_html
from services.transfers.handlers import writer_inboxes
from services.transfers.packet_parts import add_months, clocks_for_new_la
from services.transfers.packets import (
    build_transfer_packet,
    differences,
    is_late_entry,
    packet_id_for,
    rebuild_transfer_packet,
)
from services.transfers.registry import RegisteredSetting
from tests.factories import history_entries, la_event, school_event

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
UPN = "H801200001001"
OAKFIELD, RIVERSIDE, BROOK_LANE = "131001", "131002", "131005"  # LA 801, 801, 803
AVON_VALLEY = "10045678"  # a sixth form college in LA 803
REGISTRY = {
    OAKFIELD: RegisteredSetting(urn=OAKFIELD, name="Oakfield Primary School", phase="Primary",
                                la_code="801", la_name="Bristol, City of",
                                establishment_number="2001"),
    RIVERSIDE: RegisteredSetting(urn=RIVERSIDE, name="Riverside Primary School",
                                 phase="Primary", la_code="801", la_name="Bristol, City of",
                                 establishment_number="2002"),
    BROOK_LANE: RegisteredSetting(urn=BROOK_LANE, name="Brook Lane Infant School",
                                  phase="Primary", la_code="803",
                                  la_name="South Gloucestershire", establishment_number="2005"),
    "130998": RegisteredSetting(urn="130998", name="Avon Valley Sixth Form College",
                                phase="16 plus", la_code="803", la_name="South Gloucestershire",
                                ukprn=AVON_VALLEY),
}
AT_OAKFIELD = {"urn": OAKFIELD, "system": "SIMS"}


def registry(setting: Setting) -> RegisteredSetting | None:
    if setting.kind == "school":
        return REGISTRY.get(setting.urn or "")
    return next((s for s in REGISTRY.values() if s.ukprn == setting.ukprn), None)


def la_names(code: str) -> str | None:
    return next((s.la_name for s in REGISTRY.values() if s.la_code == code), None)


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return history_entries(*events, upn=UPN, recorded_at=NOW)


def on(day: str) -> str:
    return f"{day}T10:00:00+00:00"


LA_801_PLAN = (
    la_event("ehc_request_received", occurred_at=on("2025-01-13"),
             payload={"requesting_urn": OAKFIELD}),
    la_event("ehc_assessment_decision", occurred_at=on("2025-02-17")),
    la_event("ehc_plan_decision", occurred_at=on("2025-04-28")),
    la_event("ehc_plan_issued", occurred_at=on("2025-05-26"),
             payload={"named_setting_urn": OAKFIELD}),
)
REVIEWED = la_event("ehc_annual_review", occurred_at=on("2025-11-03"),
                    payload={"held_on": "2025-11-03"})


def move(to: dict[str, str], effective: str = "2026-01-12", kind: str = "in_year"
         ) -> dict[str, Any]:
    return school_event("pupil_moved", source=AT_OAKFIELD, occurred_at=on("2026-01-05"),
                        payload={"destination": to, "move_kind": kind,
                                 "effective_date": effective})


TO_BROOK_LANE = {"kind": "school", "urn": BROOK_LANE}
TO_RIVERSIDE = {"kind": "school", "urn": RIVERSIDE}


def issued(*events: dict[str, Any]) -> tuple[Issue, list[Issue]]:
    """The setting's packet for the last event (a move) and the LA notices beside it."""
    h = history(*events)
    issue = when_pupil_moved_issue_packet(h, h[-1], None, NOW, registry, la_names=la_names)
    return issue, when_plan_moves_to_another_la_notify_both_las(issue, NOW, registry)


# -- the policy -------------------------------------------------------------------------

def test_a_plan_moving_to_another_la_sends_both_las_the_packet_with_the_plan_and_clocks() -> None:
    setting, notices = issued(*LA_801_PLAN, REVIEWED, move(TO_BROOK_LANE))
    packet = setting.issued.packet
    assert [(n.issued.packet.receiver, n.issued.packet.la_notice, n.issued.kind)
            for n in notices] == [("la-803", "ehc_plan_transfer_in", "la_notice"),
                                  ("la-801", "ehc_plan_transfer_out", "la_notice")]
    into = notices[0].issued.packet
    # The whole packet, the plan with it, and the clocks that now run for LA 803.
    assert into.timeline == packet.timeline and into.current_needs == packet.current_needs
    assert into.ehc_plan == packet.ehc_plan and into.to_setting == packet.to_setting
    assert [(c.rule, c.due_on, c.la_code, c.source) for c in into.clocks_now_running] == [
        ("ehc_transfer_tell_parent_6_weeks", date(2026, 2, 23), "803",
         "SEND Regulations 2014, reg. 15"),
        # 12 months from the last review (3 November 2026) is later than 3 months from
        # the transfer (12 April 2026).
        ("ehc_transfer_review_12_months_or_3_months", date(2026, 11, 3), "803",
         "SEND Regulations 2014, reg. 15")]
    assert "reassess" in into.clocks_now_running[0].title
    assert notices[1].issued.packet.clocks_now_running == into.clocks_now_running
    # Stored beside the setting's packet, never as it: pending, no step of another packet.
    assert all([s.event.state for s in n.steps] == ["pending"] for n in notices)
    assert packet.la_notice is None and packet.addressed_to is None


def test_the_review_clock_runs_3_months_from_the_transfer_when_that_is_later() -> None:
    _, [into, _] = issued(*LA_801_PLAN, move(TO_BROOK_LANE, effective="2026-05-20"))
    review = into.issued.packet.clocks_now_running[1]
    assert review.due_on == date(2026, 8, 20)  # not 26 May 2026 (12 months from issue)


def test_a_post16_providers_la_counts_as_the_destination_la() -> None:
    _, notices = issued(*LA_801_PLAN, move({"kind": "post16_provider", "ukprn": AVON_VALLEY},
                                           kind="post16"))
    assert [n.issued.packet.receiver for n in notices] == ["la-803", "la-801"]
    assert notices[0].issued.packet.policy == "post16"  # the post-16 form, in full (reg. 15)


@pytest.mark.parametrize("events", [
    pytest.param((*LA_801_PLAN, move(TO_RIVERSIDE)), id="within-the-LA"),
    pytest.param((school_event(source=AT_OAKFIELD), move(TO_BROOK_LANE)), id="no-plan"),
    pytest.param((*LA_801_PLAN, move({"kind": "unknown"})), id="destination-unknown"),
    pytest.param((*LA_801_PLAN, move({"kind": "school", "urn": "100009"})),
                 id="destination-not-in-registry"),
    pytest.param((*LA_801_PLAN, la_event("ehc_plan_ceased", occurred_at=on("2025-09-01")),
                  move(TO_BROOK_LANE)), id="plan-ceased"),
])
def test_no_la_notice_without_an_la_plan_moving_to_another_la(events: tuple[dict[str, Any], ...]
                                                              ) -> None:
    _, notices = issued(*events)
    assert notices == []


def test_a_plan_only_a_school_reported_is_marked_so_and_no_la_is_told() -> None:
    reported = school_event("assessment_completed", source=AT_OAKFIELD,
                            occurred_at=on("2025-05-20"), payload={
                                "assessor_role": "educational_psychologist",
                                "assessment_kind": "ehc_needs_assessment",
                                "identified_needs": [{"code": "SPLD", "rank": 1}],
                                "outcome": "ehc_plan_issued", "summary": "Plan issued."})
    setting, notices = issued(reported, move(TO_BROOK_LANE))
    plan = setting.issued.packet.ehc_plan
    assert notices == [] and plan is not None and setting.issued.packet.sen_status == "ehc_plan"
    assert not plan.confirmed_by_la and plan.maintaining_la is None
    assert plan.issued_on == date(2025, 5, 20) and plan.next_annual_review_due == date(2026, 5, 20)
    page = render_html(setting.issued.packet)
    assert "Reported by the school, not confirmed by the LA" in page


def test_the_plan_in_the_packet_is_the_las_with_its_next_annual_review() -> None:
    setting, _ = issued(*LA_801_PLAN, REVIEWED, move(TO_RIVERSIDE))
    plan = setting.issued.packet.ehc_plan
    assert plan is not None and plan.confirmed_by_la
    assert (plan.maintaining_la, plan.maintaining_la_name) == ("801", "Bristol, City of")
    assert plan.issued_on == date(2025, 5, 26) and plan.last_reviewed_on == date(2025, 11, 3)
    assert plan.next_annual_review_due == date(2026, 11, 3)
    assert plan.case_officer is not None and plan.case_officer.role == "EHC case officer"
    assert [n.code.value for n in plan.needs] == ["ASD", "SLCN"]
    assert plan.named_setting_urn == OAKFIELD and plan.outcomes


def test_la_notice_ids_are_deterministic_per_pupil_move_and_receiver() -> None:
    events = (*LA_801_PLAN, move(TO_BROOK_LANE))
    setting, notices = issued(*events)
    _, again = issued(*events)
    move_id = setting.issued.packet.move.event_id
    assert [n.issued.packet.packet_id for n in notices] == [
        packet_id_for(UPN, move_id, receiver="la-803"),
        packet_id_for(UPN, move_id, receiver="la-801")] == [
        n.issued.packet.packet_id for n in again]
    assert setting.issued.packet.packet_id == packet_id_for(UPN, move_id)  # unchanged
    assert len({setting.issued.packet.packet_id, *(n.issued.packet.packet_id for n in notices)}
               ) == 3


def test_a_rebuilt_la_notice_matches_the_one_sent() -> None:
    h = history(*LA_801_PLAN, REVIEWED, move(TO_BROOK_LANE))
    issue = when_pupil_moved_issue_packet(h, h[-1], None, NOW, registry, la_names=la_names)
    for notice in when_plan_moves_to_another_la_notify_both_las(issue, NOW, registry):
        sent = notice.issued.packet
        assert differences(sent, rebuild_transfer_packet(sent, h)) == []
    sent = issue.issued.packet
    assert differences(sent, rebuild_transfer_packet(sent, h)) == []


@pytest.mark.parametrize("day, months, expected", [
    (date(2025, 5, 26), 12, date(2026, 5, 26)),
    (date(2025, 11, 30), 3, date(2026, 2, 28)),
    (date(2023, 11, 30), 3, date(2024, 2, 29)),
    (date(2025, 5, 31), 3, date(2025, 8, 31)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)),
])
def test_months_are_calendar_months_ending_on_the_months_last_day(day: date, months: int,
                                                                  expected: date) -> None:
    assert add_months(day, months) == expected


def test_the_clocks_need_no_plan_date_to_run_from_the_transfer() -> None:
    setting, _ = issued(*LA_801_PLAN, move(TO_BROOK_LANE))
    plan = setting.issued.packet.ehc_plan
    assert plan is not None
    clocks = clocks_for_new_la(plan.model_copy(update={"issued_on": None}), date(2026, 1, 12),
                               "803")
    assert [c.due_on for c in clocks] == [date(2026, 2, 23), date(2026, 4, 12)]


# -- children missing education ---------------------------------------------------------

def test_a_move_to_an_unknown_destination_is_a_cme_notice_for_the_leaving_schools_la() -> None:
    lost, notices = issued(school_event(source=AT_OAKFIELD), move({"kind": "unknown"}))
    packet = lost.issued.packet
    assert notices == [] and packet.la_notice == "children_missing_education"
    assert packet_inbox(packet) == "lost-pupils.la-801"
    page = render_html(packet)
    for words in ("Possible child missing education", "Education Act 1996, s.436A",
                  "Children missing education", "for LA 801"):
        assert words in page, words
    summary = _text(packet_summary(packet))
    assert "Possible child missing education" in summary and "s.436A" in summary


def test_a_rerouted_packet_is_no_longer_a_cme_notice() -> None:
    h = history(school_event(source=AT_OAKFIELD), move({"kind": "unknown"}),
                move(TO_RIVERSIDE, effective="2026-02-02"))
    lost = when_pupil_moved_issue_packet(h[:2], h[1], None, NOW, registry).issued
    found = when_pupil_moved_issue_packet(h, h[2], lost, NOW, registry).issued
    assert found.kind == "reroute" and found.packet.la_notice is None
    assert found.packet.supersedes == lost.packet.packet_id


# -- the readable packet and the CTF ----------------------------------------------------

def test_the_readable_notice_says_what_it_is_and_shows_the_plan_and_clocks() -> None:
    setting, [into, out_of] = issued(*LA_801_PLAN, REVIEWED, move(TO_BROOK_LANE))
    page = render_html(into.issued.packet)
    for fact in ("EHC plan transfer: a plan moves into your care", "Bristol, City of (LA 801)",
                 "ehc.team@bristol.example.gov.uk", "26 May 2025", "3 November 2026",
                 "Speech and language therapy", "23 February 2026", "reassess",
                 "Now running for LA 803"):
        assert fact in page, fact
    assert "not confirmed" not in page
    assert "a plan you maintain moves to another local authority" in render_html(
        out_of.issued.packet)
    setting_page = render_html(setting.issued.packet)
    assert "EHC plan" in setting_page and "EHC plan transfer" not in setting_page
    summary = _text(packet_summary(into.issued.packet))
    assert "Notice to the local authority" in summary and "due 23 February 2026" in summary
    assert "EHC plan: Maintained by" in summary


def test_a_ctf_for_a_pupil_whose_plan_comes_from_la_events_is_valid_and_says_e() -> None:
    setting, _ = issued(school_event("assessment_completed", source=AT_OAKFIELD,
                                     occurred_at=on("2024-11-20")),
                        *LA_801_PLAN, move(TO_RIVERSIDE))
    packet = setting.issued.packet
    document = render_ctf(packet)
    root = etree.fromstring(document)
    assert root.findtext("Header/SourceSchool/LEA") == "801"
    assert root.findtext("Header/DestSchool/Estab") == "2002"
    (pupil,) = read_ctf(document)
    assert pupil.first_provision == "E"
    assert pupil.episodes == [(date(2024, 11, 20), "K"), (date(2025, 5, 26), "E")]
    assert pupil.needs == [(1, "ASD"), (2, "SLCN")]  # the plan's section B


def test_an_la_notice_gets_no_ctf() -> None:
    _, [into, _] = issued(*LA_801_PLAN, move(TO_BROOK_LANE))
    with pytest.raises(CTFRefused, match="notice to the local authority"):
        render_ctf(into.issued.packet)


# -- who reads and answers for what -----------------------------------------------------

LA_801 = Principal(Kind.la, "801")


def test_an_la_reads_two_inboxes_and_answers_for_packets_in_either() -> None:
    assert receivers_of(LA_801) == ("lost-pupils.la-801", "la-801")
    assert receivers_of(Principal(Kind.school, OAKFIELD)) == (f"urn-{OAKFIELD}",)
    assert receivers_of(Principal(Kind.auditor, "j-smith")) == ()
    assert may_receive_for(LA_801, "la-801") and may_receive_for(LA_801, "lost-pupils.la-801")
    assert not may_receive_for(LA_801, "la-803")
    assert not may_receive_for(LA_801, "lost-pupils.la-803")
    _, [into, out_of] = issued(*LA_801_PLAN, move(TO_BROOK_LANE))
    assert packet_inbox(into.issued.packet) == "la-803"
    assert packet_inbox(out_of.issued.packet) == "la-801"
    assert not may_receive_for(Principal(Kind.school, BROOK_LANE), packet_inbox(into.issued.packet))


def test_a_receipt_written_on_an_las_topic_comes_from_both_its_inboxes() -> None:
    topics = Topics("ns.")
    assert writer_inboxes(topics.packet_receipts_from("la-801"), [], topics) == (
        "lost-pupils.la-801", "la-801")
    assert writer_inboxes(topics.packet_receipts_from(f"urn-{OAKFIELD}"), [], topics) == (
        f"urn-{OAKFIELD}",)
    assert writer_inboxes(topics.packet_receipts_from("acme-mis"), [], topics) == (
        "(sender acme-mis)",)
    assert writer_inboxes(topics.packet_receipts_from("gateway"),
                          [("sendhub-principal", b"la-803")], topics) == (
        "lost-pupils.la-803", "la-803")
    assert writer_inboxes(topics.packet_receipts, [], topics) is None
    # An LA names itself as the receiver of its notices.
    receipt = PacketReceiptV1.model_validate({"packet_id": str(uuid4()), "receiver": "la-803",
                                              "status": "received", "at": NOW.isoformat()})
    assert receipt.receiver == "la-803"


def test_an_la_may_read_both_inboxes_and_write_its_own_events_and_receipts_on_kafka() -> None:
    topics = Topics("ns.")
    found = grants(LA_801, topics, "ns.la-801")
    assert found == sorted({
        Grant("topic", "ns.sen.inbox.lost-pupils.la-801", False, "READ"),
        Grant("topic", "ns.sen.inbox.lost-pupils.la-801", False, "DESCRIBE"),
        Grant("topic", "ns.sen.inbox.la-801", False, "READ"),
        Grant("topic", "ns.sen.inbox.la-801", False, "DESCRIBE"),
        Grant("topic", "ns.sen.school-events.v1.la-801", False, "WRITE"),
        Grant("topic", "ns.sen.school-events.v1.la-801", False, "DESCRIBE"),
        Grant("topic", "ns.sen.packet-receipts.v1.la-801", False, "WRITE"),
        Grant("topic", "ns.sen.packet-receipts.v1.la-801", False, "DESCRIBE"),
        Grant("group", "ns.la-801", True, "READ"),
    })
    assert all(not g.prefixed for g in found if g.resource == "topic")  # nothing wider
    assert topics_to_create(LA_801, topics) == [
        "ns.sen.school-events.v1.la-801", "ns.sen.packet-receipts.v1.la-801",
        "ns.sen.inbox.lost-pupils.la-801", "ns.sen.inbox.la-801"]


def test_other_principals_grants_are_as_before() -> None:
    topics = Topics()
    school = grants(Principal(Kind.school, OAKFIELD), topics, "school-131001")
    assert {(g.name, g.operation) for g in school if g.resource == "topic"} == {
        (f"sen.school-events.v1.urn-{OAKFIELD}", "WRITE"),
        (f"sen.school-events.v1.urn-{OAKFIELD}", "DESCRIBE"),
        (f"sen.packet-receipts.v1.urn-{OAKFIELD}", "WRITE"),
        (f"sen.packet-receipts.v1.urn-{OAKFIELD}", "DESCRIBE"),
        (f"sen.inbox.urn-{OAKFIELD}", "READ"), (f"sen.inbox.urn-{OAKFIELD}", "DESCRIBE")}
    college = grants(Principal(Kind.post16, AVON_VALLEY), topics, "post16-10045678")
    assert not any("school-events" in g.name for g in college)
    assert grants(Principal(Kind.trust, "severn-vale"), topics, "trust-severn-vale") == []
    connector = Principal(Kind.connector, "acme-mis", frozenset({OAKFIELD}))
    assert topics_to_create(connector, topics) == ["sen.school-events.v1.acme-mis"]


def test_a_connector_may_not_take_a_name_that_reads_as_an_las_topic() -> None:
    with pytest.raises(PrincipalError, match="another sender's topic"):
        Principal(Kind.connector, "la-801")


def test_the_gateway_reads_an_las_two_inboxes_in_one_query() -> None:
    where, params = inboxes_filter(receivers_of(LA_801))
    assert where == ("(p.receiver = 'lost-pupils' AND p.body->'from_setting'->>'la_code' = %s)"
                     " OR (p.receiver = %s)")
    assert params == ["801", "la-801"]
    assert inboxes_filter([]) == ("false", [])


def _text(panel: Any) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(panel)
    return console.export_text()


def test_packets_from_before_the_las_notices_still_read() -> None:
    """A packet stored by an older hub (no `ehc_plan`, `la_notice`, `addressed_to`)."""
    old = build_transfer_packet(history(school_event(source=AT_OAKFIELD), move(TO_RIVERSIDE)),
                                2, NOW).model_dump(mode="json")
    for field in ("ehc_plan", "la_notice", "clocks_now_running", "addressed_to"):
        old.pop(field)
    packet = TransferPacketV1.model_validate(old)
    assert packet.receiver == f"urn-{RIVERSIDE}" and packet_inbox(packet) == f"urn-{RIVERSIDE}"


def test_moving_on_within_the_other_la_is_not_a_plan_moving_la_again() -> None:
    """A pupil with LA 801's plan already at Brook Lane (LA 803) moves on within 803:
    the settings' LAs stand for the areas, and the plan did not leave 801 here."""
    within_803 = school_event("pupil_moved", source={"urn": BROOK_LANE, "system": "Arbor"},
                              occurred_at=on("2026-01-05"), payload={
                                  "destination": {"kind": "school", "urn": "131006"},
                                  "move_kind": "in_year", "effective_date": "2026-01-12"})
    _, notices = issued(*LA_801_PLAN, within_803)
    assert notices == []


def test_the_las_plan_decided_before_the_pupil_arrives_amends_the_schools_packet() -> None:
    """The move is recorded in January for September; the LA amends the plan to name the
    new school before 15 February: the receiving school gets an amendment."""
    phase = move(TO_RIVERSIDE, effective="2026-09-01", kind="phase_transfer")
    amended = la_event("ehc_plan_amended", occurred_at=on("2026-02-10"),
                       payload={"named_setting_urn": RIVERSIDE, "for_phase_transfer": True})
    h = history(*LA_801_PLAN, phase, amended)
    first = when_pupil_moved_issue_packet(h[:-1], h[-2], None, NOW, registry)
    assert is_late_entry(h[-1], PupilMovedV1.model_validate(phase, context={"trusted": True}))
    amendment = when_late_entry_recorded_amend_packet(h, first.issued, NOW, registry)
    assert amendment is not None
    packet = amendment.issued.packet
    assert packet.ehc_plan is not None and packet.ehc_plan.named_setting_urn == RIVERSIDE
    assert any("LA 801 amended the EHC plan" in c for c in packet.changes)
