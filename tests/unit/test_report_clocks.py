"""The auditor's report shows the statutory clocks, each with its source, and labels the
intervals that have no statutory limit (sendhub.report)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import lxml.html

from sendhub.report import ChainCheck, render_report
from services.shared.clocks import LocalPolicy, SchoolDays, WeekdaysOnly
from services.shared.sen_record import HistoryEntry
from tests.factories import history_entries, la_event, school_event

SIX_WEEKS = LocalPolicy(concern_open_weeks=6)


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return history_entries(*events, recorded_at=datetime(2025, 7, 1, tzinfo=UTC))


def at(day: str) -> str:
    return f"{day}T10:00:00+00:00"


def page(*events: dict[str, Any], policy: LocalPolicy = SIX_WEEKS,
         calendar: SchoolDays | None = None) -> Any:
    html = render_report(history(*events), today=date(2025, 7, 1),
                         generated_at=datetime(2025, 7, 1, 9, tzinfo=UTC), actor="auditor-test",
                         chain=ChainCheck(len(events), "0" * 64, None), calendar=calendar,
                         policy=policy)
    return lxml.html.fromstring(html)


def table_after(doc: Any, heading: str) -> list[list[str]]:
    (h2,) = doc.xpath(f"//h2[text()='{heading}']")
    table = h2.getnext()
    return [[" ".join(td.text_content().split()) for td in tr.xpath("td")]
            for tr in table.xpath("tbody/tr")]


def test_the_report_lists_each_clock_with_its_source_and_status() -> None:
    doc = page(school_event(occurred_at=at("2025-01-06")),
               la_event("ehc_request_received", occurred_at=at("2025-01-13"),
                        payload={"received_on": "2025-01-13"}),
               la_event("ehc_assessment_decision", occurred_at=at("2025-03-03"),
                        payload={"decided_on": "2025-03-03", "decision": "assess"}),
               calendar=WeekdaysOnly())
    rows = table_after(doc, "Statutory clocks")
    by_title = {r[0].split(" (")[0]: r for r in rows}
    concern = by_title["Concern followed through by an assessment"]
    assert "local policy, not statute" in concern[0] and concern[5] == "OVERDUE"
    decided = by_title["Decision whether to carry out an EHC needs assessment"]
    assert decided[1:6] == ["SEND Regulations 2014, reg. 4 and 5(1)", "13 Jan 2025", "24 Feb 2025",
                            "3 Mar 2025", "LATE"]
    assert decided[6:] == ["100001", "801"]
    plan = by_title["Final EHC plan issued"]
    assert plan[1] == "SEND Regulations 2014, reg. 13(2)" and plan[4:6] == ["not yet", "OVERDUE"]
    # The LA's events name the LA as the setting that recorded them.
    assert any(r[2] == "la-801" for r in table_after(doc, "Every event, in the order it happened"))


def test_without_an_la_or_a_policy_no_clock_runs_and_nothing_unsourced_is_overdue() -> None:
    doc = page(school_event(occurred_at=at("2025-01-06")),
               school_event("assessment_completed", occurred_at=at("2025-04-07")),
               policy=LocalPolicy())
    (only,) = table_after(doc, "Statutory clocks")
    assert only[0].startswith("No clock runs")
    intervals = table_after(doc, "Measured intervals")
    concern = next(r for r in intervals if r[0].startswith("Concern to first assessment"))
    assert concern[4:6] == ["none", "measured, no statutory limit"] and concern[-1] == "measured"
    assert not [r for r in intervals if r[-1] == "OVERDUE"]
