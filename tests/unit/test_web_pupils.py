"""The auditor's pupil pages without a database: the form's checks (UPN, reason, the two
time axes), the late-entry marks, the per-pupil anchor check, and the routes on a bare
app (auditors only, nothing read before the form is valid, the read's reason passed on)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import lxml.html
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from sendhub.access_log import Access, Reader
from sendhub.gateway.context import gateway
from sendhub.gateway.problems import Problem
from sendhub.web import pupils
from sendhub.web.pages import problem_page
from sendhub.web.pupil_audit import ChainStatus, PupilAudit, audit_of, rows_of
from sendhub.web.pupil_forms import (
    FIELDS,
    FormProblems,
    HistoryAsk,
    Point,
    form_values,
    read_ask,
    read_point,
    read_upn,
)
from sendhub.web.security import Viewer, viewer
from sendhub.web.sessions import WebSession
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_school_event_record
from services.shared.access import Kind, Principal
from services.shared.clocks import LocalPolicy, WeekdaysOnly
from services.shared.sen_record import HistoryEntry
from tests.factories import history_entries, school_event

UPN = "H801200001001"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def values(**given: str) -> dict[str, str]:
    return dict.fromkeys(FIELDS, "") | {"upn": UPN, "reason": "tribunal bundle TB-1"} | given


def problems_of(**given: str) -> dict[str, str]:
    with pytest.raises(FormProblems) as refused:
        read_ask(values(**given), NOW)
    return refused.value.problems


# -- the form ---------------------------------------------------------------------------

def test_a_upn_is_checked_and_forgiven_its_spaces_and_case() -> None:
    assert read_upn(" h801 2000 0100 1 ") == UPN
    for wrong, says in (("", "Enter the pupil's UPN"), ("H80120000100", "13 characters"),
                        ("A801200001001", "check letter"), ("H8012000010O1", "is not a UPN")):
        with pytest.raises(ValueError, match=says):
            read_upn(wrong)


def test_the_reason_is_required_and_every_problem_is_named_in_the_forms_order() -> None:
    found = problems_of(reason="", upn="X1", point="known", known_date="2027-01-01")
    assert list(found) == ["upn", "reason", "known_date"]
    assert "access log" in found["reason"] and "in the future" in found["known_date"]
    assert "500 characters" in problems_of(reason="x" * 501)["reason"]


def test_now_as_known_at_an_instant_in_utc_and_as_of_a_date() -> None:
    assert read_point(values(point="now", known_date="2026-01-01"), NOW) == Point()
    known = read_point(values(point="known", known_date="2026-03-01", known_time="14:30:05"),
                       NOW)
    assert known.known_at == datetime(2026, 3, 1, 14, 30, 5, tzinfo=UTC)
    assert known.words == "as the hub knew it at 14:30:05 UTC on 1 March 2026"
    assert read_point(values(point="known", known_date="2026-03-01"), NOW).known_at == \
        datetime(2026, 3, 1, tzinfo=UTC)
    as_of = read_point(values(point="asof", as_of="2025-04-01", known_date="2026-01-01"), NOW)
    assert as_of == Point(as_of=date(2025, 4, 1))  # the radio chooses; the rest is ignored
    assert as_of.measured_to(NOW) == date(2025, 4, 1)
    assert Point().measured_to(NOW) == NOW.date() and known.measured_to(NOW) == date(2026, 3, 1)


def test_without_a_choice_the_axis_is_the_one_filled_and_both_are_refused() -> None:
    assert read_point(values(as_of="2025-04-01"), NOW) == Point(as_of=date(2025, 4, 1))
    assert read_point(values(known_date="2026-03-01"), NOW).kind == "known"
    assert read_point(values(), NOW) == Point()
    both = problems_of(known_date="2026-03-01", known_time="10:00", as_of="2025-04-01")
    assert list(both) == ["point"] and "not both" in both["point"]


@pytest.mark.parametrize(("given", "field", "says"), [
    ({"point": "known"}, "known_date", "Enter the date"),
    ({"point": "known", "known_date": "1/3/2026"}, "known_date", "must be a date"),
    ({"point": "known", "known_date": "2026-03-01", "known_time": "2pm"}, "known_time",
     "time of day"),
    ({"point": "known", "known_date": "2026-03-10", "known_time": "12:00:01"}, "known_date",
     "in the future"),
    ({"point": "asof"}, "as_of", "Enter the date"),
    ({"point": "asof", "as_of": "2026-03-11"}, "as_of", "after today"),
    ({"point": "yesterday"}, "point", "Choose now"),
])
def test_a_point_that_cannot_be_used_is_named(given: dict[str, str], field: str,
                                              says: str) -> None:
    found = problems_of(**given)
    assert list(found) == [field] and says in found[field]


def test_the_form_reads_only_its_own_fields_and_an_ask_shows_again_as_it_was() -> None:
    posted = {"upn": f" {UPN} ", "reason": " audit ", "csrf_token": "t", "point": None}
    assert form_values(posted) == dict.fromkeys(FIELDS, "") | {"upn": UPN, "reason": "audit"}
    ask = read_ask(values(point="known", known_date="2026-03-01", known_time="14:30:05"), NOW)
    assert read_ask(ask.values(), NOW) == ask
    assert ask.values()["known_time"] == "14:30:05"


# -- what the page shows -------------------------------------------------------------------

def entries(*events: dict[str, Any]) -> list[HistoryEntry]:
    found = history_entries(*events, upn=UPN)
    return [replace(h, recorded_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=h.version))
            for h in found]


def test_an_entry_recorded_after_one_about_something_later_is_marked_late() -> None:
    rows = rows_of(entries(school_event(occurred_at="2025-01-10T09:00:00+00:00"),
                           school_event("plan_reviewed", occurred_at="2025-06-02T16:00:00+01:00"),
                           school_event("assessment_completed",
                                        occurred_at="2025-03-03T11:00:00+00:00")))
    assert [(r.entry.version, r.late) for r in rows] == [(1, False), (2, False), (3, True)]
    assert rows[2].what.startswith("Screening assessment") and rows[2].setting == "100001"


def recorded(*events: dict[str, Any]) -> RecordsApplication:
    app = RecordsApplication()
    for n, e in enumerate(events):
        accepted = AcceptedSchoolEventV1(
            accepted_at=datetime.now(UTC), upn_is_temporary=False,
            received_from=Position(topic="t", partition=0, offset=n),
            event=SCHOOL_EVENT.validate_python(e))
        app.record_school_events([(to_school_event_record(accepted),
                                   ConsumedPosition("t", 0, n))])
    return app


def test_one_pupils_chain_is_compared_with_the_heads_anchored_for_them() -> None:
    app = recorded(school_event(), school_event("assessment_completed"))
    first, second = app.history_events(UPN)
    assert app.verify_pupil_against_anchors(UPN, {1: (first.event_hash, "a"),
                                                   2: (second.event_hash, "b")}) == (2, None)
    checked, rewritten = app.verify_pupil_against_anchors(UPN, {1: ("f" * 64, "2026-01-01")})
    assert checked == 1 and rewritten is not None and "history rewritten" in rewritten.problem
    _, gone = app.verify_pupil_against_anchors(UPN, {3: ("f" * 64, "2026-01-02")})
    assert gone is not None and "no longer in the store" in gone.problem
    _, nobody = app.verify_pupil_against_anchors("H801200002002", {1: ("f" * 64, "x")})
    assert nobody is not None and "whole history is gone" in nobody.problem


# -- the routes, on a bare app with the session and the hub stood in for ---------------------

AUDITOR = Principal(Kind.auditor, "ofsted")
CSRF = "csrf-of-the-session"


class Stage:
    """Who is signed in, and what the pages read (`read_pupil` stood in for)."""

    def __init__(self) -> None:
        self.principal = AUDITOR
        self.reads: list[tuple[Reader, HistoryAsk]] = []
        self.history = entries(school_event(occurred_at="2025-01-10T09:00:00+00:00"),
                               school_event("assessment_completed",
                                            occurred_at="2025-03-03T11:00:00+00:00"))

    def read(self, hub: Any, reader: Reader, ask: HistoryAsk, now: datetime) -> PupilAudit:
        self.reads.append((reader, ask))
        chosen = [h for h in self.history
                  if not ask.point.known_at or h.recorded_at <= ask.point.known_at]
        access = Access(now, reader.actor, reader.reason, "history", ask.upn, None, "now", "web")
        return audit_of(ask, "now", chosen, ChainStatus(2, "ab" * 32, anchor_messages=3,
                                                        anchored={2: ("ab" * 32, "2026-01-03")}),
                        [access], now=now, calendar=WeekdaysOnly(), policy=LocalPolicy())


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    found = Stage()
    monkeypatch.setattr(pupils, "read_pupil", found.read)
    yield found


@pytest.fixture
def browser(stage: Stage) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(pupils.router)
    session = WebSession(stage.principal.name, "token", None, CSRF, NOW + timedelta(hours=1))
    app.dependency_overrides[viewer] = lambda: Viewer(stage.principal, session, "cookie")
    app.dependency_overrides[gateway] = lambda: SimpleNamespace(
        settings=SimpleNamespace(anchor_interval_seconds=60.0))

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return problem_page(request, exc)

    with TestClient(app, headers={"Origin": "http://testserver"}) as client:
        yield client


def post(browser: TestClient, **given: str) -> Any:
    return browser.post("/pupils/view", data={"csrf_token": CSRF, **given})


def doc(answer: Any) -> Any:
    return lxml.html.fromstring(answer.text)


def test_the_form_shows_no_pupil_and_every_error_takes_the_reader_to_its_field(
        browser: TestClient, stage: Stage) -> None:
    form = doc(browser.get("/pupils"))
    assert form.xpath("//h1/text()") == ["Pupil history"]
    assert form.xpath("//input[@id='point-now']/@checked")
    refused = post(browser, upn="H80120000100", reason="", point="known")
    assert refused.status_code == 400 and stage.reads == []
    page = doc(refused)
    links = page.xpath("//div[@class='error-summary']//a/@href")
    assert links == ["#upn", "#reason", "#known_date"]
    for target in links:
        (field,) = page.xpath(f"//*[@id='{target[1:]}']")
        assert field.get("aria-invalid") == "true"
        assert f"{target[1:]}-error" in field.get("aria-describedby")
    assert page.xpath("//input[@id='upn']/@value") == ["H80120000100"]  # kept to correct
    assert page.xpath("//title/text()")[0].startswith("Error: ")


def test_the_history_is_read_with_the_reason_by_the_web_route_and_shown(
        browser: TestClient, stage: Stage) -> None:
    answer = post(browser, upn=UPN.lower(), reason="tribunal bundle TB-1", point="known",
                  known_date="2026-01-02", known_time="12:00")
    assert answer.status_code == 200
    [(reader, ask)] = stage.reads
    assert reader == Reader("auditor-ofsted", "tribunal bundle TB-1", "web")
    assert ask.upn == UPN and ask.point.known_at == datetime(2026, 1, 2, 12, tzinfo=UTC)
    page = doc(answer)
    rows = page.xpath("//table[contains(@class, 'pupil-history')]/tbody/tr")
    assert len(rows) == 1 and "Concern raised" in rows[0].text_content()
    assert "Intact" in page.xpath("//section[@aria-labelledby='chain-title']")[0].text_content()
    assert page.xpath("//div[@role='img']/svg")  # the report's timeline
    hidden = {i.get("name"): i.get("value") for i in page.xpath("//input[@type='hidden']")}
    assert hidden["upn"] == UPN and hidden["reason"] == "tribunal bundle TB-1"
    assert page.xpath("//input[@id='known_time']/@value") == ["12:00:00"]
    log = page.xpath("//table[contains(@class, 'access-log')]/tbody/tr")[0].text_content()
    assert "auditor-ofsted" in log and "tribunal bundle TB-1" in log and "web" in log


def test_a_pupil_with_no_history_at_that_point_is_told_so(browser: TestClient,
                                                          stage: Stage) -> None:
    answer = post(browser, upn=UPN, reason="check", point="known", known_date="2025-12-01")
    assert answer.status_code == 404 and len(stage.reads) == 1  # still read and logged
    page = doc(answer)
    assert "No SEN history is recorded for UPN" in page.xpath("//p[@class='lead']")[0].text
    assert page.xpath("//form[@action='/pupils/view']")


def test_only_auditors_have_the_pages_and_the_refusal_names_no_pupil(
        browser: TestClient, stage: Stage) -> None:
    stage.principal = Principal(Kind.school, "100001")
    assert browser.get("/pupils").status_code == 403
    refused = post(browser, upn=UPN, reason="curious")
    assert refused.status_code == 403 and stage.reads == []
    assert UPN not in refused.text and "only auditors" in refused.text


def test_a_form_without_the_sessions_token_does_nothing(browser: TestClient,
                                                        stage: Stage) -> None:
    answer = browser.post("/pupils/view", data={"csrf_token": "forged", "upn": UPN,
                                                "reason": "x"})
    assert answer.status_code == 403 and stage.reads == []
