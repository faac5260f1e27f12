"""The oversight pages' pure rules (sendhub.web.oversight_view): whose figures a principal
sees, the GET form's filters, each figure's cell, the CSV export (figures only, never a
pupil, never a formula) and two charts' SVG on one page without an id in common."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from sendhub.oversight import (
    MEASURES,
    MovedPacket,
    Oversight,
    Scope,
    Window,
    academic_year,
    document,
    oversee,
    withhold_pupils,
)
from sendhub.web.oversight_view import (
    FilterError,
    Filters,
    OverseenScope,
    cell_text,
    csv_filename,
    csv_header,
    csv_rows,
    csv_text,
    has_list,
    months_table,
    needs_attention,
    parse_filters,
    scope_of_principal,
    with_own_ids,
)
from services.shared.access import Kind, Principal
from services.shared.clocks import ClockResult, ClockStatus, LocalPolicy
from services.transfers.domain import DeliveryEvent, PacketRecord
from services.transfers.registry import RegisteredSetting

TODAY = date(2026, 12, 2)
YEAR = academic_year(TODAY)
TRUST = Scope("trust", "Severn Vale Learning Trust", "Severn Vale Learning Trust")
ASH = RegisteredSetting("131001", "Ash Primary", "Primary", "801", "Bristol", "2001",
                        trust=TRUST.name)
BIRCH = RegisteredSetting("131002", "=Birch Academy", "Secondary", "801", "Bristol", "4001",
                          trust=TRUST.name)
TRANSFERS = "transfers_sent_within_15_school_days"
POLICY = LocalPolicy(concern_open_weeks=6)


def clock(rule: str, upn: str, urn: str, started: str, status: ClockStatus) -> ClockResult:
    return ClockResult(rule=rule, title=rule, source="test", statutory=True, upn=upn,
                       setting_urn=urn, la_code="801", started_on=date.fromisoformat(started),
                       due_on=date.fromisoformat(started), ended_on=None, status=status)


def unacknowledged(upn: str, urn: str, effective: str) -> MovedPacket:
    at = datetime(2026, 11, 2, 10, tzinfo=UTC)
    record = PacketRecord(packet_id=uuid4(), upn=upn, pupil="A Pupil", receiver="urn-137003",
                          receiver_name=None, receiver_la_code=None, kind="first",
                          built_at=at, supersedes=None,
                          events=(DeliveryEvent("pending", at), DeliveryEvent("sent", at)))
    return MovedPacket(record, urn, 3, date.fromisoformat(effective))


def figures(policy: LocalPolicy = POLICY) -> Oversight:
    clocks = [clock("file_sent_15_school_days", "P001", ASH.urn, "2026-09-14", "met"),
              clock("file_sent_15_school_days", "P002", ASH.urn, "2026-09-21", "late"),
              clock("file_sent_15_school_days", "P003", BIRCH.urn, "2026-10-05", "met"),
              clock("ehc_final_plan_20_weeks", "P004", BIRCH.urn, "2026-09-07", "exception")]
    packets = [unacknowledged("P001", ASH.urn, "2026-09-14")]
    return oversee(TRUST, [BIRCH, ASH], clocks, packets, names={}, window=YEAR, today=TODAY,
                   policy=policy)


# -- whose figures ------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "scope"), [
    (Principal(Kind.trust, "severn-vale-learning-trust"),
     OverseenScope(None, "severn-vale-learning-trust")),
    (Principal(Kind.la, "801"), OverseenScope("801", None)),
    (Principal(Kind.school, "131001"), None),
    (Principal(Kind.auditor, "ofsted"), None),
    (Principal(Kind.connector, "arbor"), None),
    (Principal(Kind.operator, "operator"), None),
])
def test_a_trust_sees_its_own_trust_an_la_its_own_area_and_no_one_else_has_a_scope(
        who: Principal, scope: OverseenScope | None) -> None:
    assert scope_of_principal(who) == scope


# -- the filters --------------------------------------------------------------------------------

def test_with_no_filter_the_window_is_the_academic_year_and_every_school() -> None:
    assert parse_filters(None, None, None, today=TODAY) == Filters(
        Window(date(2026, 9, 1), date(2027, 8, 31)), None)
    # An empty field of the GET form is the default, as a missing one.
    assert parse_filters("", " ", "", today=date(2027, 3, 1)) == Filters(
        Window(date(2026, 9, 1), date(2027, 8, 31)), None)
    assert parse_filters(None, None, None, today=date(2027, 9, 1)).window == Window(
        date(2027, 9, 1), date(2028, 8, 31))


def test_dates_and_a_school_narrow_the_figures() -> None:
    chosen = parse_filters("2025-12-01", "2026-11-30", "131002", today=TODAY)
    assert chosen == Filters(Window(date(2025, 12, 1), date(2026, 11, 30)), "131002")
    # One end alone: the other is the academic year's.
    assert parse_filters("2026-10-01", None, None, today=TODAY).window == Window(
        date(2026, 10, 1), date(2027, 8, 31))
    assert parse_filters(None, "2026-12-31", None, today=TODAY).window == Window(
        date(2026, 9, 1), date(2026, 12, 31))
    assert chosen.query() == "from=2025-12-01&to=2026-11-30&school=131002"
    assert parse_filters(None, None, None, today=TODAY).query(figure=TRANSFERS) == (
        f"from=2026-09-01&to=2027-08-31&figure={TRANSFERS}")


@pytest.mark.parametrize(("start", "end", "school", "says"), [
    ("2026-13-01", None, None, "From '2026-13-01' is not a date"),
    (None, "yesterday", None, "To 'yesterday' is not a date"),
    ("2026-12-02", "2026-12-01", None, "From (2026-12-02) is after To (2026-12-01)"),
    (None, None, "13100", "is not a URN"),
    (None, None, "131001' OR 1=1", "is not a URN"),
])
def test_filters_the_page_cannot_use_say_what_to_put_right(
        start: str | None, end: str | None, school: str | None, says: str) -> None:
    with pytest.raises(FilterError, match=re.escape(says)):
        parse_filters(start, end, school, today=TODAY)


# -- the cells ----------------------------------------------------------------------------------

def test_each_cell_says_its_figure_in_words_and_marks_what_needs_attention() -> None:
    result = figures()
    by_urn = {s.urn: s for s in result.schools}
    ash, birch = by_urn[ASH.urn], by_urn[BIRCH.urn]
    transfers = ash.figure(TRANSFERS)
    assert cell_text(transfers) == "1 of 2 (50%)" and needs_attention(transfers)
    assert cell_text(birch.figure(TRANSFERS)) == "1 of 1 (100%)"
    assert not needs_attention(birch.figure(TRANSFERS))
    waiting = ash.figure("packets_unacknowledged")
    assert cell_text(waiting) == "1 of 1" and needs_attention(waiting)
    assert cell_text(birch.figure("packets_unacknowledged")) == "none"
    assert not has_list(birch.figure("packets_unacknowledged"))
    plans = birch.figure("ehc_plans_within_20_weeks")
    assert cell_text(plans) == "0 of 0, 1 exception(s)" and has_list(plans)
    assert not needs_attention(plans)
    unset = figures(LocalPolicy()).schools[0].figure("concerns_open_beyond_policy")
    assert cell_text(unset) == "no policy set" and not has_list(unset)
    assert not needs_attention(unset)


# -- the CSV ------------------------------------------------------------------------------------

def test_the_csv_has_a_row_per_school_and_the_total_with_every_figure() -> None:
    result = withhold_pupils(figures())
    rows = csv_rows(result)
    header = rows[0]
    assert header[:4] == ["from", "to", "urn", "school"] and header == csv_header()
    for m in MEASURES:
        assert {f"{m.key}_count", f"{m.key}_of", f"{m.key}_percent"} <= set(header)
    assert "ehc_plans_within_20_weeks_exceptions" in header
    assert "packets_unacknowledged_exceptions" not in header
    table = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    # In name order (as the page), the name made safe from spreadsheets' formulas.
    assert [(r["urn"], r["school"]) for r in table] == [
        (BIRCH.urn, "'=Birch Academy"), (ASH.urn, "Ash Primary"), ("", "Total")]
    assert {(r["from"], r["to"]) for r in table} == {("2026-09-01", "2027-08-31")}
    birch, ash, total = table
    assert (ash[f"{TRANSFERS}_count"], ash[f"{TRANSFERS}_of"], ash[f"{TRANSFERS}_percent"]) == (
        "1", "2", "50")
    assert (total[f"{TRANSFERS}_count"], total[f"{TRANSFERS}_of"]) == ("2", "3")
    assert total[f"{TRANSFERS}_percent"] == "66.7"
    assert birch["ehc_plans_within_20_weeks_exceptions"] == "1"
    assert birch["packets_unacknowledged_percent"] == ""  # 0 of 0: no share


def test_the_csv_names_no_pupil_even_when_the_figures_carry_them() -> None:
    result = figures()
    assert result.pupils_shown()  # P001..P004 are behind the figures
    text = csv_text(result)
    assert not re.search(r"P00[0-9]", text)
    parsed = list(csv.reader(io.StringIO(text)))
    assert len(parsed) == 1 + len(result.schools) + 1 and text.endswith("\r\n")


def test_an_unset_policy_leaves_the_concern_figure_empty_not_zero() -> None:
    header, *rows = csv_rows(withhold_pupils(figures(LocalPolicy())))
    at = header.index("concerns_open_beyond_policy_count")
    assert {r[at] for r in rows} == {""}


def test_the_csv_file_is_named_by_scope_school_and_window() -> None:
    result = figures()
    assert csv_filename(result) == (
        "oversight-trust-severn-vale-learning-trust-2026-09-01-2027-08-31.csv")
    assert csv_filename(result, "131001") == (
        "oversight-trust-severn-vale-learning-trust-131001-2026-09-01-2027-08-31.csv")


# -- the charts ---------------------------------------------------------------------------------

def test_two_charts_on_one_page_have_no_id_in_common_and_keep_their_labels() -> None:
    svg = ('<svg role="img" aria-labelledby="chart-a-title"><title id="chart-a-title">T'
           '</title><g id="figure_1"><clipPath id="p1"/><use xlink:href="#m1"/>'
           '<path id="m1" clip-path="url(#p1)"/><a href="#elsewhere">x</a></g></svg>')
    first, second = with_own_ids(svg, "one", ["chart-a-title"]), with_own_ids(svg, "two")
    ids = [re.findall(r'\sid="([^"]+)"', str(s)) for s in (first, second)]
    assert ids[0] == ["chart-a-title", "one-figure_1", "one-p1", "one-m1"]
    assert not set(ids[0]) & set(ids[1])
    assert 'xlink:href="#one-m1"' in first and 'clip-path="url(#one-p1)"' in first
    assert 'href="#elsewhere"' in first  # not one of the chart's own: left alone
    assert 'aria-labelledby="chart-a-title"' in first


def test_the_months_chart_has_its_figures_as_table_rows() -> None:
    months = document(figures())["months"]
    rows = months_table(months)
    assert rows[0]["month"] == "September 2026"
    assert rows[0][TRANSFERS] == "1 of 2 (50%)"
    assert rows[1][TRANSFERS] == "1 of 1 (100%)"
    assert rows[2]["ehc_plans_within_20_weeks"] == "none measured"
    assert len(rows) == 4  # September to December, as on 2 December
