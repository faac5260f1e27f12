"""The oversight pages in Chromium, through the real broker, the running services and a
`sendhub serve gateway` process: a small trust whose figures are known by construction
(as tests/e2e/test_oversight.py builds a larger one), seen by its SEND lead signed in
with a hub token, filtered by dates and school, one figure's pupils opened with a
reason that the access log records, the CSV export, another trust's lead refused and
the LA seeing its own area. Every distinct page passes axe-core (WCAG 2.2 A/AA).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from contracts.receipts import PacketReceiptV1
from sendhub.oversight import Window, academic_year
from sendhub.publishing import publish_lines, publish_receipts
from services.shared.settings import HubSettings
from tests.browser_support import check_page
from tests.conftest import ARTIFACTS, CLI, ROOT
from tests.e2e.conftest import RunningServices, eventually
from tests.factories import pupil, random_upn, school_event
from tests.gateway_support import GatewayProcess

pytestmark = pytest.mark.e2e

TRUST, TRUST_PRINCIPAL = "Severn Web Trust", "severn-web-trust"
OTHER_TRUST, OTHER_PRINCIPAL = "Wye Web Trust", "wye-web-trust"
LA, ELSEWHERE_LA = "874", "875"
ALDER, BIRCH, CEDAR = "170001", "170002", "170003"  # the trust's, in name order
DUNMORE, ELM, FARLEIGH = "170004", "170005", "170006"  # the other trust's; the LA's; LA 875's
TODAY = datetime.now(UTC).date()
WIDE = Window(TODAY - timedelta(days=370), TODAY + timedelta(days=30))
LATE, RECENT, FUTURE = (TODAY - timedelta(days=100), TODAY - timedelta(days=2),
                        TODAY + timedelta(days=10))
"""Effective dates: 100 days ago is past 15 school days on any calendar (the packet goes
out today: late); two days ago or ahead of the move is in time."""
REASON = "termly review of transfers with the heads of school"
TRANSFERS, UNACKNOWLEDGED, LOST, CONCERNS = (
    "transfers_sent_within_15_school_days", "packets_unacknowledged", "lost_pupils_open",
    "concerns_open_beyond_policy")
COLUMN = {TRANSFERS: 1, UNACKNOWLEDGED: 2, LOST: 3, CONCERNS: 4}
"""The figures table's columns (after the school's): `sendhub.oversight.MEASURES` order."""


@dataclass(frozen=True)
class Item:
    """One thing a figure counts, as the test built it."""

    urn: str
    figure: str
    upn: str
    counted: bool
    when: date


def tally(items: list[Item], figure: str, window: Window, urn: str | None = None
          ) -> tuple[int, int]:
    chosen = [i for i in items if i.figure == figure and i.when in window
              and (urn is None or i.urn == urn)]
    return sum(i.counted for i in chosen), len(chosen)


def shown(counted: int, of: int, good: bool) -> str:
    """A figure as the page writes it (README: oversight)."""
    if not of:
        return "none"
    share = f" ({round(100 * counted / of, 1):g}%)" if good else ""
    return f"{counted} of {of}{share}"


def registry_csv(path: Path) -> Path:
    rows = [(ALDER, LA, 5001, "Alder Primary", "Primary", TRUST),
            (BIRCH, LA, 5002, "Birch Academy", "Secondary", TRUST),
            (CEDAR, LA, 5003, "Cedar School", "Secondary", TRUST),
            (DUNMORE, LA, 5004, "Dunmore School", "Secondary", OTHER_TRUST),
            (ELM, LA, 5005, "Elm Primary", "Primary", ""),
            (FARLEIGH, ELSEWHERE_LA, 5006, "Farleigh School", "Secondary", "")]
    lines = ["URN,LA (code),LA (name),EstablishmentNumber,EstablishmentName,"
             "PhaseOfEducation (name),UKPRN,Trusts (name)"]
    lines += [f"{urn},{la},Testshire {la},{number},{name},{phase},,{trust}"
              for urn, la, number, name, phase, trust in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def source(urn: str) -> dict[str, str]:
    return {"urn": urn, "system": "Arbor"}


def move(upn: str, name: str, urn: str, effective: date, to: str | None) -> list[dict[str, Any]]:
    """The pupil known to the school long ago, then leaving it (`to` None: for an unknown
    destination)."""
    who = pupil(upn, name)
    destination = {"kind": "unknown"} if to is None else {"kind": "school", "urn": to}
    return [school_event("assessment_completed", pupil=who, source=source(urn),
                         occurred_at=f"{(TODAY - timedelta(days=400)).isoformat()}T10:00:00Z"),
            school_event("pupil_moved", pupil=who, source=source(urn),
                         occurred_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(
                             timespec="seconds"),
                         payload={"destination": destination, "move_kind": "in_year",
                                  "effective_date": effective.isoformat()})]


def token_of(cli: CLI, kind: str, identifier: str) -> str:
    return str(cli("principals", "add", kind, identifier, "--token").stdout.splitlines()[-1])


def transfers_rows(cli: CLI) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cli("transfers", "--json").stdout.splitlines()]


@pytest.fixture(scope="module")
def trust(services: RunningServices, settings: HubSettings, cli: CLI,
          tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    """The trust's pupils sent through the hub, every packet out and one acknowledged;
    what each figure counts, by construction."""
    path = registry_csv(tmp_path_factory.mktemp("web-oversight") / "registry.csv")
    assert "Imported 6 setting(s)" in cli("settings", "import", str(path)).stdout
    upn = {key: random_upn() for key in ("a1", "a2", "a3", "b1", "b2", "c1", "c2")}
    events = [*move(upn["a1"], "Ada", ALDER, LATE, DUNMORE),
              *move(upn["a2"], "Amir", ALDER, LATE, ELM),
              *move(upn["a3"], "Anna", ALDER, RECENT, DUNMORE),
              *move(upn["b1"], "Ben", BIRCH, RECENT, ELM),
              *move(upn["b2"], "Bea", BIRCH, RECENT, None),
              school_event("concern_raised", pupil=pupil(upn["c1"], "Cal"), source=source(CEDAR),
                           occurred_at=f"{LATE.isoformat()}T10:00:00Z"),
              *move(upn["c2"], "Cleo", CEDAR, FUTURE, DUNMORE)]
    publish_lines(settings, [json.dumps(e).encode() for e in events])
    moves = {"a1": (ALDER, LATE), "a2": (ALDER, LATE), "a3": (ALDER, RECENT),
             "b1": (BIRCH, RECENT), "b2": (BIRCH, RECENT), "c2": (CEDAR, FUTURE)}
    ours = {upn[k] for k in moves}

    def all_sent() -> dict[str, dict[str, Any]]:
        rows = {r["upn"]: r for r in transfers_rows(cli) if r["upn"] in ours}
        assert len(rows) == len(moves) and all(r["attempts"] >= 1 for r in rows.values()), (
            f"{len(rows)} of {len(moves)} packets so far")
        return rows

    packets = eventually(all_sent, seconds=90)
    answered = packets[upn["a3"]]
    publish_receipts(settings, [PacketReceiptV1(
        packet_id=UUID(answered["packet_id"]), receiver=answered["receiver"],
        status="received", at=datetime.now(UTC))])
    eventually(lambda: _state_is(cli, answered["packet_id"], "received"))

    items = [Item(CEDAR, CONCERNS, upn["c1"], True, LATE)]  # open 100 days, policy 6 weeks
    for key, (urn, effective) in moves.items():
        items.append(Item(urn, TRANSFERS, upn[key], effective >= RECENT, effective))
        items.append(Item(urn, UNACKNOWLEDGED, upn[key], key != "a3", effective))
    items.append(Item(BIRCH, LOST, upn["b2"], True, RECENT))
    return items


def _state_is(cli: CLI, packet_id: str, state: str) -> None:
    assert next(r for r in transfers_rows(cli) if r["packet_id"] == packet_id)["state"] == state


@pytest.fixture(scope="module")
def gateway(trust: list[Item], hub_env: dict[str, str]) -> Iterator[GatewayProcess]:
    log = ROOT / "test-artifacts" / "service-logs" / "gateway-web-oversight.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    running = GatewayProcess({**hub_env, "SENDHUB_POLICY_CONCERN_OPEN_WEEKS": "6"}, log)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def sign_in(browser: Browser, gateway: GatewayProcess, token: str, path: str
            ) -> tuple[BrowserContext, Page]:
    """Open `path`, be sent to sign in, sign in with the hub token, and be brought back."""
    context = browser.new_context(ignore_https_errors=True,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(gateway.url + path)
    assert urlsplit(page.url).path == "/sign-in"
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(gateway.url + path)
    return context, page


def row_cells(page: Page, school: str) -> list[str]:
    row = page.locator("table#figures tbody tr").filter(
        has=page.locator("th", has_text=school))
    return [" ".join(c.split()) for c in row.locator("td").all_inner_texts()]


def test_a_trusts_send_lead_sees_filters_and_opens_its_figures_and_no_one_elses(
        gateway: GatewayProcess, trust: list[Item], settings: HubSettings, cli: CLI,
        chromium: Browser) -> None:
    year = academic_year(TODAY)
    context, page = sign_in(chromium, gateway, token_of(cli, "trust", TRUST_PRINCIPAL),
                            "/oversight")
    try:
        # The whole trust this academic year: its three schools and the total.
        assert page.locator("h1").inner_text() == f"Oversight: {TRUST}"
        assert page.locator("#from").input_value() == year.start.isoformat()
        assert page.locator("#to").input_value() == year.end.isoformat()
        schools = page.locator("table#figures tbody th[scope=row]").all_inner_texts()
        assert schools == [f"Alder Primary ({ALDER})", f"Birch Academy ({BIRCH})",
                           f"Cedar School ({CEDAR})", "Total"]
        for urn, name in ((ALDER, "Alder Primary"), (BIRCH, "Birch Academy"), (None, "Total")):
            cells = row_cells(page, name)
            for figure, good in ((TRANSFERS, True), (UNACKNOWLEDGED, False)):
                assert cells[COLUMN[figure] - 1].startswith(
                    shown(*tally(trust, figure, year, urn), good)), (name, figure, cells)
        titles = [t.text_content() for t in page.locator("figure.chart svg[role=img] > title").all()]
        assert titles == ["Compliance over time, by the month each clock started",
                          "Compliance per school"]
        assert page.locator("table#months caption").is_visible()
        check_page(page, "oversight")

        # One school, a wider window: every item built counts.
        page.fill("#from", WIDE.start.isoformat())
        page.fill("#to", WIDE.end.isoformat())
        page.select_option("#school", ALDER)
        page.get_by_role("button", name="Show figures").click()
        page.wait_for_url("**school=170001**")
        assert parse_qs(urlsplit(page.url).query) == {
            "from": [WIDE.start.isoformat()], "to": [WIDE.end.isoformat()], "school": [ALDER]}
        assert page.locator("table#figures tbody th[scope=row]").all_inner_texts() == [
            f"Alder Primary ({ALDER})", "Total"]
        alder = row_cells(page, "Alder Primary")  # each a link, then its mark
        assert alder[COLUMN[TRANSFERS] - 1].startswith("1 of 3 (33.3%)")
        assert alder[COLUMN[UNACKNOWLEDGED] - 1].startswith("2 of 3")
        assert all(alder[COLUMN[f] - 1].endswith("attention") for f in (TRANSFERS, UNACKNOWLEDGED))
        assert alder[COLUMN[LOST] - 1] == "none"
        check_page(page, "oversight-filtered")

        # Print: no navigation, no forms.
        page.emulate_media(media="print")
        assert not page.locator("form.oversight-filters").is_visible()
        assert not page.locator(".masthead nav").is_visible()
        page.screenshot(path=ARTIFACTS / "web-oversight-print.png", full_page=True)
        assert page.pdf(format="A4", landscape=True).startswith(b"%PDF")
        page.emulate_media(media="screen")

        # The pupils behind a figure: a reason first, then the list, recorded.
        page.locator("table#figures tbody tr").first.locator("td").nth(
            COLUMN[TRANSFERS] - 1).get_by_role("link").click()
        assert urlsplit(page.url).path == f"/oversight/schools/{ALDER}"
        assert page.locator("h1").inner_text() == "Why you need the pupils behind this figure"
        check_page(page, "oversight-reason")
        page.locator("#reason").evaluate("field => field.removeAttribute('required')")
        page.fill("#reason", "   ")
        page.get_by_role("button", name="Show the pupils").click()
        assert page.locator(".error-summary").is_visible()
        assert page.locator("#reason").get_attribute("aria-invalid") == "true"
        page.fill("#reason", REASON)
        page.get_by_role("button", name="Show the pupils").click()
        assert page.locator("h1").inner_text() == (
            "Transfers sent within 15 school days: Alder Primary")
        behind = {i.upn for i in trust if i.urn == ALDER and i.figure == TRANSFERS}
        listed = page.locator("table#pupils tbody tr")
        assert listed.count() == 3
        assert {t.split()[0] for t in listed.all_inner_texts()} == behind
        assert page.locator("table#pupils .tag", has_text="attention").count() == 2  # late
        check_page(page, "oversight-list")
        with psycopg.connect(settings.database_conninfo) as sql:
            logged = sql.execute(
                "SELECT upn, route, detail FROM access_log WHERE actor = %s AND reason = %s "
                "AND action = 'oversight'", (f"trust-{TRUST_PRINCIPAL}", REASON)).fetchall()
        assert {upn for upn, _, _ in logged} == behind and len(logged) == 3
        assert {route for _, route, _ in logged} == {"web"}
        assert all(f"{ALDER} {TRANSFERS}" in detail for _, _, detail in logged)
        access = cli("access-log", next(iter(behind)), "--reason", "web oversight test").stdout
        assert REASON.split()[0] in access

        # The CSV: the figures per school and in total, no pupil.
        exported = context.request.get(
            f"{gateway.url}/oversight.csv?from={WIDE.start}&to={WIDE.end}")
        assert exported.status == 200
        assert exported.headers["content-disposition"].startswith("attachment; filename=")
        text = exported.text()
        assert not any(i.upn in text for i in trust)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["urn"] for r in rows] == [ALDER, BIRCH, CEDAR, ""]
        for r in rows:
            for figure in (TRANSFERS, UNACKNOWLEDGED, LOST, CONCERNS):
                assert (int(r[f"{figure}_count"]), int(r[f"{figure}_of"])) == tally(
                    trust, figure, WIDE, r["urn"] or None), (r["urn"], figure)
        assert rows[-1][f"{TRANSFERS}_percent"] == "66.7"
    finally:
        context.close()

    # Another trust's lead: its own trust, and a 403 page for a school of this one.
    context, page = sign_in(chromium, gateway, token_of(cli, "trust", OTHER_PRINCIPAL),
                            "/oversight")
    try:
        assert page.locator("h1").inner_text() == f"Oversight: {OTHER_TRUST}"
        assert page.locator("table#figures tbody th[scope=row]").all_inner_texts() == [
            f"Dunmore School ({DUNMORE})", "Total"]
        refused = page.goto(f"{gateway.url}/oversight/schools/{ALDER}?figure={TRANSFERS}")
        assert refused is not None and refused.status == 403
        assert page.locator("h1").inner_text() == "Forbidden"
        assert "Alder" not in page.locator("main").inner_text()
        check_page(page, "oversight-forbidden")
        assert context.request.get(f"{gateway.url}/oversight.csv?school={ALDER}").status == 403
    finally:
        context.close()

    # The LA: the settings in its area, and not another LA's.
    context, page = sign_in(chromium, gateway, token_of(cli, "la", LA), "/oversight")
    try:
        assert page.locator("table#figures tbody th[scope=row]").all_inner_texts() == [
            f"Alder Primary ({ALDER})", f"Birch Academy ({BIRCH})", f"Cedar School ({CEDAR})",
            f"Dunmore School ({DUNMORE})", f"Elm Primary ({ELM})", "Total"]
        assert row_cells(page, "Total")[COLUMN[TRANSFERS] - 1].startswith(
            shown(*tally(trust, TRANSFERS, year), True))
        assert page.goto(f"{gateway.url}/oversight/schools/{FARLEIGH}?figure={TRANSFERS}"
                         ).status == 403  # type: ignore[union-attr]
    finally:
        context.close()
