"""Oversight for trusts and LAs (sendhub.oversight): figures per school and in total from
hand-made clocks and packets, the window, the pupils shown only where allowed, and who
may oversee and see pupils (services.shared.access)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.inbound import INBOUND_EVENT
from sendhub.oversight import (
    MEASURES,
    MovedPacket,
    Scope,
    Window,
    academic_year,
    document,
    first_sent,
    moves_from,
    oversee,
    pupil_names,
    pupils_of_scope,
    scope_clocks,
    withhold_pupils,
)
from services.shared.access import (
    Kind,
    Principal,
    may_oversee_la,
    may_oversee_trust,
    may_see_pupils,
)
from services.shared.clocks import ClockResult, ClockStatus, LocalPolicy
from services.shared.school_days import BANK_HOLIDAYS_ONLY
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import DeliveryEvent, PacketRecord
from services.transfers.registry import RegisteredSetting
from tests.factories import la_event, pupil, school_event

TODAY = date(2026, 12, 2)
YEAR = academic_year(TODAY)
TRUST = Scope("trust", "Severn Vale Learning Trust", "Severn Vale Learning Trust")
ASH = RegisteredSetting("131001", "Ash Primary", "Primary", "801", "Bristol", "2001",
                        trust="Severn Vale Learning Trust")
BIRCH = RegisteredSetting("131002", "Birch Academy", "Secondary", "801", "Bristol", "4001",
                          trust="Severn Vale Learning Trust")
POLICY = LocalPolicy(concern_open_weeks=8)


def clock(rule: str, upn: str, urn: str | None, started: str, due: str, status: ClockStatus,
          ended: str | None = None, note: str = "") -> ClockResult:
    return ClockResult(rule=rule, title=rule.replace("_", " "), source="test", statutory=True,
                       upn=upn, setting_urn=urn, la_code="801",
                       started_on=date.fromisoformat(started), due_on=date.fromisoformat(due),
                       ended_on=date.fromisoformat(ended) if ended else None, status=status,
                       note=note)


def sent_on(day: str, *more: tuple[str, str]) -> tuple[DeliveryEvent, ...]:
    at = datetime.fromisoformat(f"{day}T10:00:00+00:00")
    return (DeliveryEvent("pending", at), DeliveryEvent("sent", at),
            *(DeliveryEvent(state, datetime.fromisoformat(f"{d}T12:00:00+00:00"))
              for state, d in more))


def packet(upn: str, from_urn: str, effective: str, events: tuple[DeliveryEvent, ...],
           receiver: str = "urn-137003", kind: str = "first", move_version: int = 3,
           supersedes: UUID | None = None) -> MovedPacket:
    record = PacketRecord(packet_id=uuid4(), upn=upn, pupil="A Pupil", receiver=receiver,
                          receiver_name=None, receiver_la_code=None, kind=kind,
                          built_at=datetime(2026, 11, 2, tzinfo=UTC), supersedes=supersedes,
                          events=events)
    return MovedPacket(record, from_urn, move_version, date.fromisoformat(effective))


def figures(row: dict[str, Any], key: str) -> dict[str, Any]:
    result: dict[str, Any] = row["figures"][key]
    return result


def run(clocks: list[ClockResult], packets: list[MovedPacket] = [],  # noqa: B006
        window: Window = YEAR, policy: LocalPolicy = POLICY, **kw: Any) -> dict[str, Any]:
    names = {c.upn: f"Pupil {c.upn[-3:]}" for c in clocks} | {
        p.record.upn: f"Pupil {p.record.upn[-3:]}" for p in packets}
    return document(oversee(TRUST, [BIRCH, ASH], clocks, packets, names=names, window=window,
                            today=TODAY, policy=policy, **kw))


def test_transfers_sent_in_time_are_counted_per_school_and_in_total_out_of_those_due() -> None:
    doc = run([
        clock("file_sent_15_school_days", "P001", "131001", "2026-09-14", "2026-10-05", "met"),
        clock("file_sent_15_school_days", "P002", "131001", "2026-09-21", "2026-10-12", "late"),
        clock("file_sent_15_school_days", "P003", "131001", "2026-10-01", "2026-10-22", "overdue"),
        clock("file_sent_15_school_days", "P004", "131001", "2026-11-30", "2026-12-21", "open"),
        clock("file_sent_15_school_days", "P005", "131002", "2026-10-05", "2026-10-26", "met"),
    ])
    # Schools come in name order, each by URN and name.
    assert [(s["urn"], s["name"]) for s in doc["schools"]] == [
        ("131001", "Ash Primary"), ("131002", "Birch Academy")]
    ash, birch = doc["schools"]
    key = "transfers_sent_within_15_school_days"
    assert figures(ash, key) | {"pupils": None} == {"count": 1, "of": 3, "percent": 33.3,
                                                    "pupils": None}
    assert [(p["upn"], p["status"], p["counted"]) for p in figures(ash, key)["pupils"]] == [
        ("P001", "met", True), ("P002", "late", False), ("P003", "overdue", False)]
    assert (figures(birch, key)["count"], figures(birch, key)["of"]) == (1, 1)
    total = figures(doc["total"], key)
    assert (total["count"], total["of"], total["percent"]) == (2, 4, 50.0)
    assert len(total["pupils"]) == 4


def test_the_window_counts_items_whose_clock_started_in_it() -> None:
    clocks = [
        clock("file_sent_15_school_days", "P001", "131001", "2026-08-28", "2026-09-18", "met"),
        clock("file_sent_15_school_days", "P002", "131001", "2026-09-01", "2026-09-22", "late"),
        clock("file_sent_15_school_days", "P003", "131001", "2026-10-31", "2026-11-21", "met"),
        clock("file_sent_15_school_days", "P004", "131001", "2026-11-01", "2026-11-22", "met"),
    ]
    key = "transfers_sent_within_15_school_days"
    whole_year = figures(run(clocks)["total"], key)
    assert (whole_year["count"], whole_year["of"]) == (2, 3)  # P001 is last year's
    autumn = figures(run(clocks, window=Window(date(2026, 9, 1), date(2026, 10, 31)))["total"], key)
    assert [p["upn"] for p in autumn["pupils"]] == ["P002", "P003"]
    assert academic_year(date(2026, 8, 31)) == Window(date(2025, 9, 1), date(2026, 8, 31))
    assert academic_year(date(2026, 9, 1)) == Window(date(2026, 9, 1), date(2027, 8, 31))


def test_packets_unacknowledged_are_those_sent_with_no_receipt_and_not_replaced() -> None:
    first = packet("P001", "131001", "2026-10-01", sent_on("2026-10-01", ("superseded", "2026-10-09")))
    doc = run([], [
        first,
        packet("P001", "131001", "2026-10-01", sent_on("2026-10-09"), kind="amendment",
               supersedes=first.record.packet_id),
        packet("P002", "131001", "2026-10-02", sent_on("2026-10-02", ("received", "2026-10-05"))),
        packet("P003", "131001", "2026-10-03", sent_on("2026-10-03", ("accepted", "2026-10-06"))),
        packet("P004", "131001", "2026-10-04", (DeliveryEvent(
            "pending", datetime(2026, 10, 4, tzinfo=UTC)),)),  # never sent: not counted at all
        packet("P005", "131001", "2026-10-05", sent_on("2026-10-05"), receiver="la-803",
               kind="la_notice"),  # an LA's notice is not the setting's packet
        packet("P006", "131002", "2026-10-06", sent_on("2026-10-06")),
    ])
    ash, birch = doc["schools"]
    key = "packets_unacknowledged"
    assert (figures(ash, key)["count"], figures(ash, key)["of"]) == (1, 4)
    assert [(p["upn"], p["counted"]) for p in figures(ash, key)["pupils"]] == [
        ("P001", False), ("P001", True), ("P002", False), ("P003", False)]
    assert (figures(doc["total"], key)["count"], figures(doc["total"], key)["of"]) == (2, 5)


def test_lost_pupils_stay_open_until_their_packet_is_rerouted() -> None:
    doc = run([], [
        packet("P001", "131001", "2026-10-01", sent_on("2026-10-01"), receiver="lost-pupils"),
        packet("P002", "131001", "2026-10-02", sent_on("2026-10-02", ("rerouted", "2026-10-20")),
               receiver="lost-pupils"),
        packet("P002", "131001", "2026-10-20", sent_on("2026-10-20"), kind="reroute",
               move_version=5),
        packet("P003", "131002", "2026-10-03", sent_on("2026-10-03", ("received", "2026-10-04")),
               receiver="lost-pupils"),  # the LA has it; the pupil is still not found
    ])
    ash, birch = doc["schools"]
    lost = figures(ash, "lost_pupils_open")
    assert (lost["count"], lost["of"]) == (1, 2)
    assert [(p["upn"], p["status"]) for p in lost["pupils"]] == [
        ("P001", "destination not known"), ("P002", "re-routed")]
    assert figures(birch, "lost_pupils_open")["count"] == 1
    assert figures(doc["total"], "lost_pupils_open")["count"] == 2


def test_concerns_are_measured_only_when_a_local_policy_is_set() -> None:
    clocks = [
        clock("concern_open_policy", "P001", "131001", "2026-09-07", "2026-11-02", "overdue"),
        clock("concern_open_policy", "P002", "131001", "2026-09-08", "2026-11-03", "met"),
        clock("concern_open_policy", "P003", "131001", "2026-11-20", "2027-01-15", "open"),
    ]
    measured = figures(run(clocks)["total"], "concerns_open_beyond_policy")
    assert (measured["count"], measured["of"]) == (1, 3)
    assert json.loads(json.dumps(run(clocks)))["policy"] == {"concern_open_weeks": 8}
    unset = run(clocks, policy=LocalPolicy())
    for row in (*unset["schools"], unset["total"]):
        figure = figures(row, "concerns_open_beyond_policy")
        assert figure["count"] is None and figure["of"] is None
        assert figure["note"].startswith("no policy set")
    assert unset["policy"] == {"concern_open_weeks": None}


def test_ehc_figures_count_published_exceptions_apart() -> None:
    doc = run([
        clock("ehc_assessment_decision_6_weeks", "P001", "131001", "2026-09-07", "2026-10-19", "met"),
        clock("ehc_assessment_decision_6_weeks", "P002", "131001", "2026-09-07", "2026-10-19", "late"),
        clock("ehc_assessment_decision_6_weeks", "P003", "131001", "2026-09-07", "2026-10-19",
              "exception", note="school closure"),
        clock("ehc_decision_not_to_issue_16_weeks", "P001", "131001", "2026-09-07", "2026-12-28", "open"),
        clock("ehc_final_plan_20_weeks", "P004", "131002", "2026-09-01", "2027-01-19", "stopped"),
        clock("ehc_final_plan_20_weeks", "P005", "131002", "2026-09-01", "2026-11-20", "overdue"),
        clock("ehc_final_plan_20_weeks", "P006", "131002", "2026-09-01", "2026-11-20", "exception"),
    ])
    six = figures(doc["total"], "ehc_decisions_within_6_weeks")
    assert (six["count"], six["of"], six["exceptions"]) == (1, 2, 1)
    assert [p["status"] for p in six["pupils"]] == ["met", "late", "exception (school closure)"]
    sixteen = figures(doc["total"], "ehc_decisions_within_16_weeks")
    assert (sixteen["count"], sixteen["of"], sixteen["percent"]) == (0, 0, None)
    twenty = figures(doc["schools"][1], "ehc_plans_within_20_weeks")
    assert (twenty["count"], twenty["of"], twenty["exceptions"]) == (0, 1, 1)
    assert "exceptions" not in figures(doc["total"], "packets_unacknowledged")


def test_reviews_count_by_the_day_they_fell_due() -> None:
    doc = run([
        # Started last year, due (and missed) this year: counted.
        clock("ehc_annual_review_12_months", "P001", "131001", "2025-10-01", "2026-10-01", "overdue"),
        clock("ehc_annual_review_12_months", "P002", "131001", "2025-11-01", "2026-11-01", "met"),
        clock("ehc_annual_review_12_months", "P003", "131001", "2026-09-10", "2027-09-10", "open"),
        clock("ehc_phase_transfer_review", "P004", "131002", "2026-09-01", "2027-02-15", "open"),
        clock("ehc_phase_transfer_review", "P005", "131002", "2025-09-01", "2026-02-15", "late"),
        clock("ehc_phase_transfer_review", "P006", "131002", "2026-01-01", "2027-03-31", "late"),
    ])
    reviews = figures(doc["total"], "annual_reviews_overdue")
    assert (reviews["count"], reviews["of"]) == (1, 2)
    phase = figures(doc["total"], "phase_transfer_reviews_late")
    assert (phase["count"], phase["of"]) == (1, 1)
    assert [p["upn"] for p in phase["pupils"]] == ["P006"]


def test_clocks_of_schools_outside_the_scope_are_left_out() -> None:
    doc = run([
        clock("file_sent_15_school_days", "P001", "999999", "2026-09-14", "2026-10-05", "met"),
        clock("ehc_final_plan_20_weeks", "P002", None, "2026-09-14", "2027-02-01", "open"),
    ])
    assert all(figures(doc["total"], m.key).get("of") in (0, None) for m in MEASURES)


def test_pupils_are_left_out_where_the_caller_may_not_see_them() -> None:
    clocks = [
        clock("file_sent_15_school_days", "P001", "131001", "2026-09-14", "2026-10-05", "met"),
        clock("file_sent_15_school_days", "P002", "131002", "2026-09-14", "2026-10-05", "late"),
    ]
    doc = run(clocks, shows_pupils=lambda urn: urn == "131002")
    ash, birch = doc["schools"]
    key = "transfers_sent_within_15_school_days"
    assert "pupils" not in figures(ash, key) and figures(ash, key)["count"] == 1
    assert [p["upn"] for p in figures(birch, key)["pupils"]] == ["P002"]
    assert "pupils" not in figures(doc["total"], key)
    assert doc["pupils_withheld"] is True
    assert "P001" not in json.dumps(doc)

    names = {"P001": "Amira Khan", "P002": "Ben Test"}
    shown = oversee(TRUST, [ASH, BIRCH], clocks, [], names=names, window=YEAR, today=TODAY,
                    policy=POLICY)
    assert {p.upn for p in shown.pupils_shown()} == {"P001", "P002"}
    hidden = withhold_pupils(shown)
    assert hidden.pupils_shown() == [] and hidden.pupils_withheld
    text = json.dumps(document(hidden))
    assert "Amira" not in text and "P002" not in text
    assert figures(document(hidden)["total"], key)["count"] == 1


def test_the_document_has_its_documented_layout() -> None:
    doc = run([clock("ehc_final_plan_20_weeks", "P001", "131001", "2026-09-07", "2027-01-25",
                     "met", ended="2026-12-01")],
              calendar_basis={"801": BANK_HOLIDAYS_ONLY.basis("801")})
    assert list(doc) == ["document_version", "scope", "window", "today", "calendar_basis",
                         "policy", "pupils_withheld", "schools", "total", "months"]
    assert doc["scope"] == {"kind": "trust", "identifier": "Severn Vale Learning Trust",
                            "name": "Severn Vale Learning Trust"}
    assert doc["window"] == {"from": "2026-09-01", "to": "2027-08-31"}
    assert list(doc["total"]["figures"]) == [m.key for m in MEASURES]
    assert doc["total"]["name"] == "Total" and "urn" not in doc["total"]
    (item,) = figures(doc["total"], "ehc_plans_within_20_weeks")["pupils"]
    assert item == {"upn": "P001", "name": "Pupil 001", "urn": "131001",
                    "what": "ehc final plan 20 weeks", "started_on": "2026-09-07",
                    "due_on": "2027-01-25", "status": "met", "counted": True, "reference": None}
    json.dumps(doc)  # plain JSON all through


def test_compliance_by_month_for_the_chart() -> None:
    doc = run([
        clock("file_sent_15_school_days", "P001", "131001", "2026-09-14", "2026-10-05", "met"),
        clock("file_sent_15_school_days", "P002", "131002", "2026-09-21", "2026-10-12", "late"),
        clock("file_sent_15_school_days", "P003", "131001", "2026-11-02", "2026-11-23", "met"),
        clock("file_sent_15_school_days", "P004", "131001", "2026-11-30", "2026-12-21", "open"),
        clock("ehc_final_plan_20_weeks", "P005", "131001", "2026-10-01", "2027-02-18", "met"),
    ])
    months = {m["month"]: m for m in doc["months"]}
    assert list(months) == ["2026-09", "2026-10", "2026-11", "2026-12"]  # up to today
    assert months["2026-09"]["transfers_sent_within_15_school_days"] == {
        "met": 1, "of": 2, "percent": 50.0}
    assert months["2026-11"]["transfers_sent_within_15_school_days"]["of"] == 1
    assert months["2026-10"]["ehc_plans_within_20_weeks"] == {"met": 1, "of": 1, "percent": 100.0}
    assert months["2026-12"]["transfers_sent_within_15_school_days"]["percent"] is None


def _history(upn: str, *events: dict[str, Any]) -> list[HistoryEntry]:
    return [HistoryEntry(upn=upn, version=n, recorded_at=datetime(2026, 11, 1, tzinfo=UTC),
                         upn_is_temporary=False,
                         event=INBOUND_EVENT.validate_python(e, context={"trusted": True}))
            for n, e in enumerate(events, start=1)]


def test_the_pupils_of_a_scope_their_moves_and_when_each_move_was_first_sent() -> None:
    amira = pupil("H801200001001", "Amira")
    at_ash = _history("H801200001001",
                      school_event(pupil=amira, source={"urn": "131001", "system": "SIMS"}),
                      school_event("pupil_moved", pupil=amira,
                                   source={"urn": "131001", "system": "SIMS"}))
    elsewhere = _history("B801200005001", school_event(pupil=pupil("B801200005001", "Ben")))
    la_only = _history("G80120000101A", la_event(pupil=pupil("G80120000101A", "Cara")))
    histories = {"H801200001001": at_ash, "B801200005001": elsewhere, "G80120000101A": la_only}
    urns = frozenset({"131001", "131002"})
    assert set(pupils_of_scope(histories, TRUST, urns)) == {"H801200001001"}
    assert set(pupils_of_scope(histories, Scope("la", "801", "Bristol"), urns)) == {
        "H801200001001", "G80120000101A"}
    assert pupil_names(histories)["H801200001001"] == "Amira Test"
    ((entry, move),) = moves_from(at_ash, urns)
    assert entry.version == 2 and move.payload.effective_date == date(2025, 11, 10)

    lost = packet("H801200001001", "131001", "2025-11-10", sent_on("2025-11-12"),
                  receiver="lost-pupils", move_version=2)
    again = packet("H801200001001", "131001", "2025-11-10", sent_on("2025-11-20"),
                   kind="amendment", move_version=2)
    notice = packet("H801200001001", "131001", "2025-11-10", sent_on("2025-11-11"),
                    kind="la_notice", move_version=2)
    assert first_sent([again, lost, notice], "H801200001001", 2) == date(2025, 11, 12)
    assert first_sent([again, lost], "H801200001001", 3) is None


# -- who may see what -----------------------------------------------------------------------

AUDITOR = Principal(Kind.auditor, "j-smith")
SEVERN = Principal(Kind.trust, "severn-vale-learning-trust").with_members({"131001", "131002"})
BRISTOL = Principal(Kind.la, "801").with_members({"131001", "131002", "100001"})


@pytest.mark.parametrize(("who", "la", "allowed"), [
    (BRISTOL, "801", True), (Principal(Kind.la, "803"), "801", False), (AUDITOR, "801", True),
    (SEVERN, "801", False), (Principal(Kind.school, "131001"), "801", False),
    (Principal(Kind.operator, "operator"), "801", False),
])
def test_an_las_figures_are_for_that_la_and_auditors(who: Principal, la: str,
                                                     allowed: bool) -> None:
    assert may_oversee_la(who, la) is allowed


@pytest.mark.parametrize(("who", "allowed"), [
    (SEVERN, True), (AUDITOR, True), (Principal(Kind.trust, "another-trust"), False),
    (BRISTOL, False), (Principal(Kind.school, "131001"), False),
    (Principal(Kind.connector, "severn-vale-learning-trust"), False),
])
def test_a_trusts_figures_are_for_that_trust_by_its_slugged_name_and_auditors(
        who: Principal, allowed: bool) -> None:
    assert may_oversee_trust(who, "Severn Vale Learning Trust") is allowed
    assert may_oversee_trust(who, "severn vale learning trust") is allowed


@pytest.mark.parametrize(("who", "urn", "allowed"), [
    (SEVERN, "131001", True), (SEVERN, "100001", False),
    (BRISTOL, "100001", True), (BRISTOL, "137003", False),
    (AUDITOR, "137003", True),
    (Principal(Kind.school, "131001"), "131001", False),
    (Principal(Kind.trust, "severn-vale-learning-trust"), "131001", False),  # no members known
    (Principal(Kind.operator, "operator"), "131001", False),
])
def test_pupils_behind_a_figure_are_for_the_trusts_members_the_las_area_and_auditors(
        who: Principal, urn: str, allowed: bool) -> None:
    assert may_see_pupils(who, urn) is allowed


def test_the_page_links_each_figure_to_its_pupils_only_when_they_are_shown() -> None:
    from sendhub.oversight_page import render_page

    clocks = [
        clock("file_sent_15_school_days", "P001", "131001", "2026-09-14", "2026-10-05", "met"),
        clock("file_sent_15_school_days", "P002", "131002", "2026-10-14", "2026-11-05", "late"),
        clock("ehc_final_plan_20_weeks", "P003", "131002", "2026-09-14", "2027-02-05", "met"),
    ]
    shown = oversee(TRUST, [ASH, BIRCH], clocks, [], names={"P001": "Amira Khan"}, window=YEAR,
                    today=TODAY, policy=POLICY)
    page = render_page(shown, generated_at=datetime(2026, 12, 2, 9, tzinfo=UTC), actor="auditor-x")
    assert page.count("<svg") == 2 and page.count("<title id=\"chart-") == 2
    assert 'aria-labelledby="chart-months-title chart-months-desc"' in page
    assert "Transfers sent within 15 school days: Sep 2026 100% of 1; Oct 2026 0% of 1." in page
    link = 'href="#pupils-transfers_sent_within_15_school_days-131001"'
    assert link in page and 'id="pupils-transfers_sent_within_15_school_days-131001"' in page
    assert 'href="#pupils-transfers_sent_within_15_school_days"' in page  # the total's
    assert "Amira Khan" in page and "<caption>" in page and 'scope="row"' in page
    # Self-contained: no script, no external asset.
    assert "@media print" in page and "<script" not in page
    assert not re.search(r" src=|<link|url\((?!#)|@import", page)

    hidden = render_page(withhold_pupils(shown), generated_at=datetime(2026, 12, 2, tzinfo=UTC),
                         actor="trust-x", how_to_see_pupils="Figures only: add --reason.")
    assert 'href="#pupils' not in hidden and "P001" not in hidden and "Amira" not in hidden
    assert "Figures only: add --reason." in hidden and "1 of 2 (50.0%)" in hidden


def test_a_scopes_clocks_come_from_each_history_and_each_move_out_of_its_schools() -> None:
    upn = "H801200001001"
    amira = pupil(upn, "Amira")
    ash = {"urn": "131001", "system": "SIMS"}
    history = _history(
        upn,
        school_event(pupil=amira, source=ash, occurred_at="2026-09-02T10:00:00+01:00"),
        la_event(pupil=amira, payload={"received_on": "2026-09-07", "requesting_urn": "131001"}),
        la_event("ehc_assessment_decision", pupil=amira,
                 payload={"decided_on": "2026-10-05", "decision": "assess"}),
        school_event("pupil_moved", pupil=amira, source=ash, occurred_at="2026-09-10T10:00:00+01:00",
                     payload={"destination": {"kind": "school", "urn": "137003"},
                              "move_kind": "in_year", "effective_date": "2026-09-14"}))
    sent = packet(upn, "131001", "2026-09-14", sent_on("2026-10-20"), move_version=4)
    registry = {s.urn: s for s in (ASH, BIRCH)}
    clocks = scope_clocks({upn: history}, [sent], [ASH, BIRCH], registry=registry, today=TODAY,
                          calendar=BANK_HOLIDAYS_ONLY, policy=POLICY)
    by_rule = {c.rule: c for c in clocks}
    assert by_rule["file_sent_15_school_days"].status == "late"
    assert by_rule["file_sent_15_school_days"].due_on == date(2026, 10, 5)
    assert by_rule["ehc_assessment_decision_6_weeks"].status == "met"
    assert by_rule["concern_open_policy"].status == "overdue"  # 8 weeks from 2 September

    doc = document(oversee(TRUST, [ASH, BIRCH], clocks, [sent], names=pupil_names({upn: history}),
                           window=YEAR, today=TODAY, policy=POLICY))
    ash_row = doc["schools"][0]
    assert figures(ash_row, "transfers_sent_within_15_school_days")["count"] == 0
    assert figures(ash_row, "transfers_sent_within_15_school_days")["of"] == 1
    assert figures(ash_row, "ehc_decisions_within_6_weeks")["count"] == 1
    assert figures(ash_row, "concerns_open_beyond_policy")["count"] == 1
    assert figures(ash_row, "packets_unacknowledged")["count"] == 1
    assert figures(ash_row, "ehc_plans_within_20_weeks")["pupils"] == []  # open: not yet due


def test_an_las_figures_count_only_the_ehc_clocks_that_run_for_it() -> None:
    from dataclasses import replace

    from sendhub.oversight import _runs_for
    scope_801 = Scope("la", "801", "LA 801")
    own = clock("ehc_assessment_decision_6_weeks", "H801200001001", "131001", "2025-01-06",
                "2025-02-17", "met", "2025-02-07")
    other = replace(own, la_code="803")
    assert not _runs_for(other, scope_801) and _runs_for(own, scope_801)
    assert _runs_for(other, Scope("trust", "Avon", "Avon"))
