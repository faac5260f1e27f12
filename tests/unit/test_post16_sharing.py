"""Post-16 packets by consent or basis (issue 14): the `post16_sharing` contract, the rule
that decides a full or a minimal packet, old concerns summarised by the stated month
rule, the ULN first, and the three forms following the same rule. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from rich.console import Console

from contracts.packet import TransferPacketV1
from contracts.post16 import Post16Sharing
from contracts.school_events import SCHOOL_EVENT
from sendhub.summaries import packet_summary
from sendhub.web.inbox_view import open_flags
from services.shared.settings import HubSettings
from services.transfers.domain import (
    IssuedPacket,
    when_late_entry_recorded_amend_packet,
    when_plan_moves_to_another_la_notify_both_las,
    when_pupil_moved_issue_packet,
)
from services.transfers.forms import CTFRefused, render_ctf, render_html
from services.transfers.packets import build_transfer_packet, differences, rebuild_transfer_packet
from services.transfers.post16 import (
    DEFAULT_RULES,
    FOR_LOCAL_AUTHORITY,
    MINIMAL_CHANGE,
    Post16Rules,
    concerns_cutoff,
    decide,
)
from tests.factories import history_entries, post16_sharing, school_event
from tests.unit.test_la_packets import LA_801_PLAN, la_names, registry

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
UPN = "H801200001001"
CHLOE = {"upn": UPN, "given_name": "Chloe", "family_name": "Evans",
         "date_of_birth": "2009-01-22", "uln": "9276308686"}
HILLCREST = {"urn": "131001", "system": "Bromcom"}
COLLEGE = {"kind": "post16_provider", "ukprn": "10045678"}
CONTACT = {"role": "SENCO", "work_email": "senco@hillcrest.example.org"}
SECRET = "Self-harm disclosed to form tutor"  # an old concern's words: never in a minimal packet


def at(day: str) -> str:
    return f"{day}T10:00:00+00:00"


def concern(day: str, areas: list[str], summary: str = "Worried about reading.") -> dict[str, Any]:
    return school_event(pupil=CHLOE, source=HILLCREST, occurred_at=at(day),
                        payload={"raised_by": "teacher", "areas_of_need": areas,
                                 "summary": summary})


def assessed(day: str, needs: list[str], addresses: list[str] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "assessor_role": "senco", "assessment_kind": "screening", "outcome": "sen_support",
        "identified_needs": [{"code": c, "rank": i} for i, c in enumerate(needs, start=1)],
        "summary": "Screening."}
    if addresses:
        payload["addresses_concerns"] = addresses
    return school_event("assessment_completed", pupil=CHLOE, source=HILLCREST,
                        occurred_at=at(day), payload=payload)


def reviewed(day: str) -> dict[str, Any]:
    payload = {**school_event("plan_reviewed")["payload"], "next_review_due": "2026-12-01",
               "pupil_views": "I want to do animal care.",
               "provision": [{"description": "25% extra time, separate room",
                              "kind": "exam_access_arrangements", "frequency": "all exams",
                              "started_on": "2024-11-01"}]}
    return school_event("plan_reviewed", pupil=CHLOE, source=HILLCREST, occurred_at=at(day),
                        payload=payload)


def to_college(sharing: dict[str, Any] | None = None, effective: str = "2026-09-01",
               pupil: dict[str, str] = CHLOE) -> dict[str, Any]:
    payload: dict[str, Any] = {"destination": COLLEGE, "move_kind": "post16",
                               "effective_date": effective, "sen_contact": CONTACT}
    if sharing is not None:
        payload["post16_sharing"] = sharing
    return school_event("pupil_moved", pupil=pupil, source=HILLCREST,
                        occurred_at=at("2026-05-15"), payload=payload)


OLD = concern("2021-10-05", ["SEMH"], SECRET)
ANSWERED = assessed("2022-01-18", ["SEMH"], addresses=[OLD["event_id"]])
OLD_OPEN = concern("2022-03-02", ["VI"], "Squints at the board.")  # never answered
RECENT = concern("2025-11-04", ["SLCN", "SEMH"], "Struggles with group work.")
LIFE = (OLD, ANSWERED, OLD_OPEN, assessed("2024-11-20", ["SEMH", "SLCN"]), RECENT,
        assessed("2025-12-01", ["SEMH", "SLCN"], addresses=[RECENT["event_id"]]),
        reviewed("2026-02-09"))


def packet(*events: dict[str, Any], rules: Post16Rules = DEFAULT_RULES) -> TransferPacketV1:
    h = history_entries(*events, upn=UPN, recorded_at=NOW)
    return build_transfer_packet(h, len(h), NOW, post16=rules)


# -- the contract ------------------------------------------------------------------------

@pytest.mark.parametrize(("block", "problem"), [
    ({"lawful_basis": "consent"}, "agreement, agreed_by, agreed_on must be given"),
    ({"lawful_basis": "consent", "agreement": "agreed", "agreed_by": "young_person"},
     "agreed_on must be given"),
    (post16_sharing(agreed_by="parent"), "lacks capacity"),
    (post16_sharing(lacks_capacity=True), "cannot be the one who decided"),
    ({"lawful_basis": "public_task", "agreement": "refused"}, "applies only when lawful_basis is consent"),
    ({"lawful_basis": "legitimate_interests"}, "lawful_basis"),
    (post16_sharing(agreement="maybe"), "agreement"),
])
def test_a_sharing_block_that_does_not_hold_together_is_refused(
        block: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Post16Sharing.model_validate(block)


def test_sharing_is_recorded_only_on_a_move_to_a_post16_provider() -> None:
    move = to_college(post16_sharing())
    move["payload"]["destination"] = {"kind": "school", "urn": "100002"}
    with pytest.raises(ValidationError, match="post16_sharing is for a move to a post-16"):
        SCHOOL_EVENT.validate_python(move)


def test_an_agreement_dated_after_the_move_was_recorded_is_refused() -> None:
    with pytest.raises(ValidationError, match="agreed_on is after the move was recorded"):
        SCHOOL_EVENT.validate_python(to_college(post16_sharing(agreed_on="2026-05-16")))


def test_a_parent_may_decide_for_a_young_person_who_lacks_capacity() -> None:
    event = SCHOOL_EVENT.validate_python(to_college(post16_sharing(agreed_by="parent",
                                                                   lacks_capacity=True)))
    assert event.event_type == "pupil_moved" and event.payload.post16_sharing is not None
    assert event.payload.post16_sharing.young_person_lacks_capacity is True


# -- the rule: full or minimal -----------------------------------------------------------

@pytest.mark.parametrize(("block", "form", "words"), [
    pytest.param(None, "minimal", "no lawful basis", id="nothing-recorded"),
    pytest.param(post16_sharing("public_task"), "full", "Article 6(1)(e)", id="public-task"),
    pytest.param(post16_sharing("vital_interests"), "full", "Article 6(1)(d)", id="vital-interests"),
    pytest.param(post16_sharing(), "full", "the young person agreed on 2 June 2025",
                 id="consent-agreed-by-the-young-person"),
    pytest.param(post16_sharing(agreed_by="parent", lacks_capacity=True), "full",
                 "the parent (the young person lacks capacity to decide) agreed",
                 id="consent-agreed-by-the-parent"),
    pytest.param(post16_sharing(agreement="refused"), "minimal", "the young person refused",
                 id="consent-refused"),
    pytest.param(post16_sharing(agreement="withdrawn"), "minimal", "withdrew agreement",
                 id="consent-withdrawn"),
    pytest.param(post16_sharing(agreement="refused", agreed_by="parent", lacks_capacity=True),
                 "minimal", "the parent", id="consent-refused-by-the-parent"),
])
def test_every_basis_and_agreement_gives_its_form(block: dict[str, Any] | None, form: str,
                                                  words: str) -> None:
    sharing = Post16Sharing.model_validate(block) if block else None
    decided, reason = decide(sharing)
    assert (decided, words in reason) == (form, True), reason
    built = packet(*LIFE, to_college(block))
    assert built.post16_basis is not None and built.post16_basis.packet_form == form
    assert built.post16_basis.recorded is (block is not None)
    assert (built.minimal_packet is not None) is (form == "minimal")


def test_a_minimal_packet_says_a_history_exists_the_status_and_whom_to_ask_and_nothing_else() -> None:
    built = packet(*LIFE, to_college(post16_sharing(agreement="refused")))
    assert built.has_sen_history and built.sen_status == "sen_support"
    assert built.sending_contact is not None and built.sending_contact.role == "SENCO"
    assert built.minimal_packet and "the young person refused" in built.minimal_packet
    assert built.policy == "post16" and built.learner_identifier is not None
    nothing = {k: getattr(built, k) for k in (
        "current_needs", "concerns_open", "assessments", "timeline", "sen_provision_history",
        "history_summary", "concerns_summary", "referrals_pending", "ehc_request_open",
        "review_overdue_since", "interventions", "exam_access_arrangements", "ehc_plan",
        "setting_names", "changes")}
    assert all(not v for v in nothing.values()), nothing
    assert built.plans.current is None and built.plans.reviews == []
    dumped = built.model_dump_json()
    for hidden in (SECRET, "Squints", "SEMH", "SLCN", "VI", "animal care", "extra time"):
        assert hidden not in dumped, hidden


def test_all_three_forms_follow_the_rule() -> None:
    minimal = packet(*LIFE, to_college())
    full = packet(*LIFE, to_college(post16_sharing()))
    small, whole = render_html(minimal), render_html(full)
    assert "Minimal packet" in small and "senco@hillcrest.example.org" in small
    for hidden in ("Squints", "Still open at the move", "Nothing open at the move",
                   "Timeline across", "Exam access arrangements", "Current needs"):
        assert hidden not in small, hidden
    assert "Squints at the board." in whole and "Still open at the move" in whole
    assert "the young person agreed on 2 June 2025" in whole
    assert SECRET not in whole  # old, answered: counted, not itemised
    assert "Older concerns, summarised" in whole
    assert "SEMH: 1 concern(s) raised on 5 October 2021" in whole
    assert "VI: 1 concern(s) raised on 2 March 2022 (1 still open, listed in full)" in whole
    for form in (minimal, full):  # colleges do not import CTFs, full or minimal
        with pytest.raises(CTFRefused, match="post-16 provider"):
            render_ctf(form)
    assert open_flags(minimal) == ["Minimal packet: history not shared"]
    assert open_flags(full) == ["1 open concern"]


def test_the_terminal_summary_of_a_minimal_packet_shows_no_needs() -> None:
    console = Console(width=200, record=True)
    console.print(packet_summary(packet(*LIFE, to_college())))
    text = console.export_text()
    assert "Minimal packet" in text and "senco@hillcrest.example.org" in text
    assert "Squints" not in text and "Current needs" not in text


# -- old concerns: summarised by the stated month rule -----------------------------------

def test_concerns_older_than_the_stated_months_are_counted_per_area_open_ones_still_listed() -> None:
    built = packet(*LIFE, to_college(post16_sharing()))
    assert built.post16_basis is not None and built.post16_basis.concerns_itemised_months == 24
    summary = [(s.area_of_need.value, s.concerns, s.first_raised_on.isoformat(),
                s.last_raised_on.isoformat(), s.still_open) for s in built.concerns_summary]
    assert summary == [("SEMH", 1, "2021-10-05", "2021-10-05", 0),
                       ("VI", 1, "2022-03-02", "2022-03-02", 1)]
    assert [c.summary for c in built.concerns_open] == ["Squints at the board."]  # never hidden
    itemised = [t for t in built.timeline if t.event_type == "concern_raised"]
    assert [t.occurred_at.date().isoformat() for t in itemised] == ["2025-11-04"]
    assert SECRET not in built.model_dump_json()


@pytest.mark.parametrize(("months", "raised", "itemised"), [
    (24, "2024-09-01", True),   # exactly 24 months before the move: itemised
    (24, "2024-08-31", False),  # a day earlier: summarised
    (12, "2025-09-01", True),
    (12, "2025-08-31", False),
    (36, "2023-09-01", True),   # a longer window itemises what the 2-year history rule drops
    (36, "2023-08-31", False),
])
def test_the_month_boundary_of_old_concerns(months: int, raised: str, itemised: bool) -> None:
    rules = Post16Rules(concerns_itemised_months=months)
    one = concern(raised, ["SPLD"])
    built = packet(one, assessed("2025-12-01", ["SPLD"], addresses=[one["event_id"]]),
                   to_college(post16_sharing()), rules=rules)
    listed = [t for t in built.timeline if t.event_type == "concern_raised"]
    assert bool(listed) is itemised
    assert bool(built.concerns_summary) is not itemised
    assert concerns_cutoff(built.move.effective_date, rules).isoformat() == (
        {24: "2024-09-01", 12: "2025-09-01", 36: "2023-09-01"}[months])


def test_a_window_other_than_two_years_says_both_cut_offs_in_the_history_summary() -> None:
    built = packet(*LIFE, to_college(post16_sharing()), rules=Post16Rules(12))
    assert built.history_summary == [
        "Not itemised here, at URN 131001 (October 2021 to March 2022): 2 concern(s) raised "
        "before 1 September 2025; from before 1 September 2024, 1 assessment(s), 0 plan "
        "review(s); itemised in the school's own records."]
    assert packet(*LIFE, to_college(post16_sharing())).history_summary == [
        "Before 1 September 2024 at URN 131001 (October 2021 to March 2022): 2 concern(s), "
        "1 assessment(s), 0 plan review(s); itemised in the school's own records."]
    assert "raised more than 12 months before the move" in render_html(built)


# -- the ULN first -----------------------------------------------------------------------

def test_a_post16_packet_names_the_learner_by_uln_first_where_known() -> None:
    with_uln = packet(*LIFE, to_college(post16_sharing()))
    assert with_uln.learner_identifier is not None
    assert (with_uln.learner_identifier.scheme, with_uln.learner_identifier.value) == (
        "ULN", "9276308686")
    assert list(json.loads(with_uln.model_dump_json())).index("learner_identifier") < list(
        json.loads(with_uln.model_dump_json())).index("pupil")
    page = render_html(with_uln)
    matching = page[page.index("Details for matching"):page.index("SEN status")]
    assert matching.index("ULN") < matching.index("Date of birth") < matching.index("UPN")
    console = Console(width=200, record=True)
    console.print(packet_summary(with_uln))
    assert "ULN 9276308686, born 22 January 2009" in console.export_text()
    for uln in (None, "9999999999"):  # unknown, or the temporary ULN: the UPN
        pupil = {k: v for k, v in CHLOE.items() if k != "uln"}
        if uln:
            pupil["uln"] = uln
        without = packet(to_college(post16_sharing(), pupil=pupil))
        assert without.learner_identifier is not None
        assert (without.learner_identifier.scheme, without.learner_identifier.value) == ("UPN", UPN)
    school = build_transfer_packet(history_entries(school_event("pupil_moved")), 1, NOW)
    assert school.learner_identifier is None and school.post16_basis is None


# -- rebuilds, amendments and the LA's notices -------------------------------------------

@pytest.mark.parametrize("block", [None, post16_sharing()], ids=["minimal", "full"])
def test_a_post16_packet_rebuilds_by_the_rule_it_states(block: dict[str, Any] | None) -> None:
    h = history_entries(*LIFE, to_college(block), upn=UPN, recorded_at=NOW)
    sent = build_transfer_packet(h, len(h), NOW, post16=Post16Rules(12))
    assert differences(sent, rebuild_transfer_packet(sent, h)) == []


def test_an_amendment_to_a_minimal_packet_does_not_say_what_was_added() -> None:
    h = history_entries(*LIFE, to_college(), upn=UPN, recorded_at=NOW)
    issue = when_pupil_moved_issue_packet(h, h[-1], None, NOW, registry)
    late = history_entries(*LIFE, to_college(), concern("2026-05-01", ["SEMH"], "Late worry."),
                           upn=UPN, recorded_at=NOW)
    amended = when_late_entry_recorded_amend_packet(
        late, IssuedPacket(issue.issued.packet, len(h), "first"), NOW, registry)
    assert amended is not None
    assert amended.issued.packet.changes == [MINIMAL_CHANGE]
    assert "Late worry" not in amended.issued.packet.model_dump_json()


def test_an_ehc_plan_still_follows_the_young_person_when_the_college_gets_a_minimal_packet() -> None:
    plan = [{**e, "pupil": CHLOE} for e in LA_801_PLAN]
    h = history_entries(*plan, to_college(), upn=UPN, recorded_at=NOW)
    issue = when_pupil_moved_issue_packet(h, h[-1], None, NOW, registry, la_names=la_names)
    assert issue.issued.packet.minimal_packet and issue.issued.packet.ehc_plan is None
    notices = when_plan_moves_to_another_la_notify_both_las(issue, NOW, registry)
    assert [n.issued.packet.receiver for n in notices] == ["la-803", "la-801"]
    notice = notices[0].issued.packet
    assert notice.ehc_plan is not None and notice.minimal_packet is None
    assert notice.post16_basis is not None and notice.post16_basis.reason == FOR_LOCAL_AUTHORITY
    assert notice.post16_basis.recorded is False  # what was recorded, still said
    assert differences(notice, rebuild_transfer_packet(notice, h)) == []


def test_the_concerns_window_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HubSettings().post16_concerns_itemised_months == 24
    monkeypatch.setenv("SENDHUB_POST16_CONCERNS_ITEMISED_MONTHS", "36")
    assert HubSettings().post16_concerns_itemised_months == 36
    monkeypatch.setenv("SENDHUB_POST16_CONCERNS_ITEMISED_MONTHS", "0")
    with pytest.raises(ValidationError):
        HubSettings()
