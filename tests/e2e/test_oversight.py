"""`sendhub oversight` on a generated trust of 20 schools, on the real broker and database
with the services running: every figure checked against one computed by construction
(what the test sent, not the hub's own code), the page in Chromium, and who may see what.

The trust's schools each get a known number of moves whose effective dates put the
packet (sent when the move arrives, today) inside or outside 15 school days: 100 days
ago is late on any school calendar, two days ago or in the future is in time. Some
receivers send receipts, some pupils leave for an unknown destination (one of them is
re-routed), some concerns are old and open under a 6-week policy, and the LA's events
give known 6, 16 and 20-week, annual-review and phase-transfer outcomes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from contracts.receipts import PacketReceiptV1
from sendhub.publishing import publish_lines, publish_receipts
from services.shared.settings import HubSettings
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, eventually
from tests.factories import la_event, pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

TRUST = "Avon Oversight Trust"
TRUST_PRINCIPAL = "avon-oversight-trust"  # access.slug(TRUST)
SCHOOLS = [f"{140001 + n}" for n in range(20)]
RECEIVERS = ("150001", "150002")
TODAY = datetime.now(UTC).date()
WINDOW = (TODAY - timedelta(days=370), TODAY + timedelta(days=30))
POLICY_WEEKS = "6"
REASON = ("--reason", "termly oversight of SEN transfers")

LATE, RECENT, FUTURE = (TODAY - timedelta(days=100), TODAY - timedelta(days=2),
                        TODAY + timedelta(days=10))
"""Effective dates: 100 days ago is more than 15 school days on any calendar (packet
sent today: late); two days ago or ahead of the move is in time (met)."""

TRANSFERS, UNACKNOWLEDGED, LOST = ("transfers_sent_within_15_school_days",
                                   "packets_unacknowledged", "lost_pupils_open")
CONCERNS, SIX, SIXTEEN, TWENTY = ("concerns_open_beyond_policy", "ehc_decisions_within_6_weeks",
                                  "ehc_decisions_within_16_weeks", "ehc_plans_within_20_weeks")
ANNUAL, PHASE = "annual_reviews_overdue", "phase_transfer_reviews_late"
FIGURES = (TRANSFERS, UNACKNOWLEDGED, LOST, CONCERNS, SIX, SIXTEEN, TWENTY, ANNUAL, PHASE)


@dataclass
class Tally:
    count: int = 0
    of: int = 0
    exceptions: int = 0
    upns: set[str] = field(default_factory=set)


@dataclass
class Expected:
    """The figures as the test built them: per school, per figure."""

    schools: dict[str, dict[str, Tally]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Tally)))

    def add(self, urn: str, figure: str, upn: str, *, counted: bool = False,
            measured: bool = True, exception: bool = False, when: date | None = None) -> None:
        if when is not None and not WINDOW[0] <= when <= WINDOW[1]:
            return
        tally = self.schools[urn][figure]
        if exception or measured:
            tally.upns.add(upn)
        if exception:
            tally.exceptions += 1
        elif measured:
            tally.of += 1
            tally.count += counted

    def total(self, figure: str) -> tuple[int, int]:
        tallies = [s[figure] for s in self.schools.values() if figure in s]
        return sum(t.count for t in tallies), sum(t.of for t in tallies)


@dataclass(frozen=True)
class Move:
    upn: str
    urn: str
    effective: date
    to_unknown: bool = False
    receipt: bool = False


def at(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00+00:00"


def now_minus(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")


def weeks(n: int) -> timedelta:
    return timedelta(weeks=n)


def source(urn: str) -> dict[str, str]:
    return {"urn": urn, "system": "Arbor"}


def registry_csv(path: Path) -> Path:
    lines = ["URN,LA (code),LA (name),EstablishmentNumber,EstablishmentName,"
             "PhaseOfEducation (name),UKPRN,Trusts (name)"]
    for n, urn in enumerate(SCHOOLS):
        lines.append(f"{urn},801,\"Bristol, City of\",{3001 + n},Avon School {n + 1:02d},"
                     f"{'Primary' if n % 2 else 'Secondary'},,{TRUST}")
    lines.append(f"{RECEIVERS[0]},801,\"Bristol, City of\",4901,Harbourside Academy,Secondary,,"
                 "Another Learning Trust")
    lines.append(f"{RECEIVERS[1]},801,\"Bristol, City of\",4902,Quayside Primary,Primary,,")
    path.write_text("\n".join(lines) + "\n")
    return path


def move_event(m: Move, who: dict[str, str], minutes_ago: int = 60,
               destination: dict[str, str] | None = None, kind: str = "in_year"
               ) -> dict[str, Any]:
    to = {"kind": "unknown"} if m.to_unknown else destination or {
        "kind": "school", "urn": RECEIVERS[int(m.urn) % 2]}
    return school_event("pupil_moved", pupil=who, source=source(m.urn),
                        occurred_at=now_minus(minutes_ago),
                        payload={"destination": to, "move_kind": kind,
                                 "effective_date": m.effective.isoformat()})


def known_to_school(who: dict[str, str], urn: str, day: date) -> dict[str, Any]:
    """An assessment at the school: the pupil is on its roll from then (no clock)."""
    return school_event("assessment_completed", pupil=who, source=source(urn),
                        occurred_at=at(day))


@pytest.fixture
def term_dates(cli: CLI, settings: HubSettings) -> Iterator[None]:
    """LA 801's term dates (the sample), so school days are counted on its calendar; taken
    out again afterwards, so the session's other tests count as they did."""
    cli("calendar", "import", str(ROOT / "data/term-dates-sample.csv"))
    yield
    with psycopg.connect(settings.database_conninfo) as sql:
        sql.execute("DELETE FROM school_terms WHERE la_code = '801'")


def transfers_rows(cli: CLI) -> dict[str, dict[str, Any]]:
    return {r["packet_id"]: r for r in map(json.loads, cli("transfers", "--json").stdout.splitlines())}


def test_oversight_figures_of_a_generated_trust_match_those_computed_by_construction(
    services: RunningServices, settings: HubSettings, cli: CLI, chromium: Any, artifacts: Path,
    tmp_path: Path, term_dates: None,
) -> None:
    # The registry: 20 schools in one trust in LA 801, and two receiving schools.
    imported = cli("settings", "import", str(registry_csv(tmp_path / "trust.csv"))).stdout
    assert "Imported 22 setting(s)" in imported
    expected = Expected()
    events: list[dict[str, Any]] = []
    moves: list[Move] = []

    # Per school: moves out, in time or late, some acknowledged, some to nowhere known.
    for n, urn in enumerate(SCHOOLS):
        planned = [Move(random_upn(), urn, LATE, receipt=(k == 0 and n % 3 == 2))
                   for k in range(n % 3)]
        planned += [Move(random_upn(), urn, RECENT if k == 0 else FUTURE,
                         receipt=(k == 0 and n % 2 == 0)) for k in range(1 + n % 2)]
        if n % 5 == 0:
            planned.append(Move(random_upn(), urn, RECENT, to_unknown=True))
        for m in planned:
            who = pupil(m.upn, f"Mover{len(moves):03d}")
            events += [known_to_school(who, urn, TODAY - timedelta(days=400)), move_event(m, who)]
            moves.append(m)
    rerouted = next(m for m in moves if m.to_unknown and m.urn == SCHOOLS[0])

    # Concerns under a 6-week policy: one open and overdue, one followed through, one recent.
    for n, urn in enumerate(SCHOOLS):
        if n % 4 == 0:
            continue
        upn = random_upn()
        who = pupil(upn, f"Concern{n:02d}")
        raised = TODAY - timedelta(days=100 if n % 4 in (1, 2) else 10)
        events.append(school_event(pupil=who, source=source(urn), occurred_at=at(raised)))
        if n % 4 == 2:
            events.append(school_event("assessment_completed", pupil=who, source=source(urn),
                                       occurred_at=at(raised + timedelta(days=10))))
        expected.add(urn, CONCERNS, upn, counted=(n % 4 == 1), when=raised)

    # The LA's EHC cases, each at a school of the trust.
    ehc_pupils: dict[str, str] = {}

    def ehc(name: str, urn: str, requested: date, *steps: tuple[str, dict[str, Any]]) -> str:
        upn = random_upn()
        who = pupil(upn, name)
        ehc_pupils[name] = upn
        events.append(known_to_school(who, urn, requested - timedelta(days=30)))
        events.append(la_event(pupil=who, occurred_at=at(requested), payload={
            "received_on": requested.isoformat(), "requesting_urn": urn}))
        for kind, payload in steps:
            day = next(v for k, v in payload.items() if k.endswith("_on"))
            if kind == "ehc_plan_issued":
                payload = {"named_setting_urn": urn, **payload}
            events.append(la_event(kind, pupil=who, occurred_at=at(date.fromisoformat(day)),
                                   payload=payload))
        return upn

    def on(day: date) -> str:
        return day.isoformat()

    r = TODAY - timedelta(days=200)
    e1 = ehc("Ehc1", SCHOOLS[0], r,
             ("ehc_assessment_decision", {"decided_on": on(r + weeks(5)), "decision": "assess"}),
             ("ehc_plan_decision", {"decided_on": on(r + weeks(15)), "decision": "issue"}),
             ("ehc_plan_issued", {"issued_on": on(r + weeks(19))}))
    expected.add(SCHOOLS[0], SIX, e1, counted=True, when=r)
    expected.add(SCHOOLS[0], TWENTY, e1, counted=True, when=r)   # 16 weeks: stopped (issue)
    e2 = ehc("Ehc2", SCHOOLS[1], r,
             ("ehc_assessment_decision", {"decided_on": on(r + weeks(8)), "decision": "assess"}),
             ("ehc_plan_decision", {"decided_on": on(r + weeks(18)), "decision": "not_issue",
                                    "reason": "Needs met from SEN support."}))
    expected.add(SCHOOLS[1], SIX, e2, when=r)                    # late
    expected.add(SCHOOLS[1], SIXTEEN, e2, when=r)                # late; 20 weeks: stopped
    e3 = ehc("Ehc3", SCHOOLS[2], r,
             ("ehc_assessment_decision", {"decided_on": on(r + weeks(4)), "decision": "assess"}))
    expected.add(SCHOOLS[2], SIX, e3, counted=True, when=r)
    expected.add(SCHOOLS[2], SIXTEEN, e3, when=r)                # overdue
    expected.add(SCHOOLS[2], TWENTY, e3, when=r)                 # overdue
    e4 = ehc("Ehc4", SCHOOLS[3], r,
             ("ehc_assessment_decision", {"decided_on": on(r + weeks(7)), "decision": "assess",
                                          "exception": "exceptional_personal_circumstances"}),
             ("ehc_plan_issued", {"issued_on": on(r + weeks(22)),
                                  "exception": "exceptional_personal_circumstances"}))
    expected.add(SCHOOLS[3], SIX, e4, exception=True, when=r)
    expected.add(SCHOOLS[3], TWENTY, e4, exception=True, when=r)
    # Plans issued 500 days ago: the annual review fell due about 135 days ago.
    old = TODAY - timedelta(days=800)
    issued = TODAY - timedelta(days=500)
    e5 = ehc("Ehc5", SCHOOLS[4], old, ("ehc_plan_issued", {"issued_on": on(issued)}))
    expected.add(SCHOOLS[4], ANNUAL, e5, counted=True)           # overdue
    e6 = ehc("Ehc6", SCHOOLS[5], old, ("ehc_plan_issued", {"issued_on": on(issued)}),
             ("ehc_annual_review", {"held_on": on(TODAY - timedelta(days=150)),
                                    "outcome": "maintain"}))
    expected.add(SCHOOLS[5], ANNUAL, e6)                         # met; the next is due next year
    # Phase transfers this calendar year (due before 15 February): one reviewed in time by
    # an amendment, one not; their plans' first annual review falls due on 1 March.
    year = TODAY.year
    phase_due, review_due = date(year, 2, 14), date(year, 3, 1)
    leaving = date(year, 12, 31)
    for name, urn, amended in (("Phase1", SCHOOLS[6], None),
                               ("Phase2", SCHOOLS[7], min(date(year, 1, 10), TODAY - timedelta(days=1)))):
        steps: list[tuple[str, dict[str, Any]]] = [
            ("ehc_plan_issued", {"issued_on": on(date(year - 1, 3, 1))})]
        if amended:
            steps.append(("ehc_plan_amended", {
                "amended_on": on(amended), "for_phase_transfer": True,
                "named_setting_urn": RECEIVERS[0], "summary": "Section I names the next school."}))
        upn = ehc(name, urn, date(year - 2, 11, 1), *steps)
        m = Move(upn, urn, leaving)
        events.append(move_event(m, pupil(upn, name), kind="phase_transfer"))
        moves.append(m)
        expected.add(urn, PHASE, upn, counted=not amended,
                     measured=bool(amended) or TODAY > phase_due, when=phase_due)
        expected.add(urn, ANNUAL, upn, counted=TODAY > review_due, when=review_due)

    # Send it all, in order per pupil, and wait for every packet to go out.
    publish_lines(settings, [json.dumps(e).encode() for e in events])
    ours = {m.upn for m in moves}

    def all_sent() -> dict[str, dict[str, Any]]:
        rows = {k: v for k, v in transfers_rows(cli).items() if v["upn"] in ours}
        assert len(rows) == len(moves), f"{len(rows)} of {len(moves)} packets so far"
        assert all(r["attempts"] >= 1 for r in rows.values()), "not all sent yet"
        return rows

    rows = eventually(all_sent, seconds=120)
    by_upn = {r["upn"]: r for r in rows.values()}

    # The lost pupil whose destination becomes known: re-routed.
    again = Move(rerouted.upn, rerouted.urn, RECENT)
    publish_lines(settings, [json.dumps(move_event(
        again, pupil(again.upn, "Rerouted"), minutes_ago=30,
        destination={"kind": "school", "urn": RECEIVERS[0]})).encode()])

    def rerouted_sent() -> None:
        now = transfers_rows(cli)
        assert now[by_upn[rerouted.upn]["packet_id"]]["state"] == "rerouted"
        assert any(r["upn"] == again.upn and r["kind"] == "reroute" and r["attempts"] >= 1
                   for r in now.values())
    eventually(rerouted_sent)

    # Receipts for some packets.
    acknowledged = [m for m in moves if m.receipt]
    publish_receipts(settings, [PacketReceiptV1(
        packet_id=UUID(by_upn[m.upn]["packet_id"]), receiver=by_upn[m.upn]["receiver"],
        status="received", at=datetime.now(UTC)) for m in acknowledged])

    def receipts_recorded() -> None:
        now = transfers_rows(cli)
        assert all(now[by_upn[m.upn]["packet_id"]]["state"] == "received" for m in acknowledged)
    eventually(receipts_recorded)

    # What is expected of every move and packet, by construction.
    for m in [*moves, again]:
        in_time = m.effective >= RECENT
        expected.add(m.urn, TRANSFERS, m.upn, counted=in_time, when=m.effective)
        is_rerouted = m is rerouted
        expected.add(m.urn, UNACKNOWLEDGED, m.upn, counted=not (m.receipt or is_rerouted),
                     when=m.effective)
        if m.to_unknown:
            expected.add(m.urn, LOST, m.upn, counted=not is_rerouted, when=m.effective)

    # The trust's figures, with the pupils behind them.
    trust_token = tmp_path / "trust.token"
    trust_token.write_text(cli("principals", "add", "trust", TRUST_PRINCIPAL, "--token"
                               ).stdout.splitlines()[-1])
    as_trust = {"SENDHUB_TOKEN_FILE": str(trust_token),
                "SENDHUB_POLICY_CONCERN_OPEN_WEEKS": POLICY_WEEKS}
    window = ("--from", WINDOW[0].isoformat(), "--to", WINDOW[1].isoformat())
    doc = json.loads(cli("oversight", "--trust", TRUST, *window, "--format", "json", *REASON,
                         **as_trust).stdout)
    assert doc["scope"] == {"kind": "trust", "identifier": TRUST, "name": TRUST}
    assert doc["window"] == {"from": WINDOW[0].isoformat(), "to": WINDOW[1].isoformat()}
    assert doc["today"] == TODAY.isoformat() and doc["policy"] == {"concern_open_weeks": 6}
    assert doc["pupils_withheld"] is False and list(doc["calendar_basis"]) == ["801"]
    assert "LA 801's term dates" in doc["calendar_basis"]["801"]
    assert [s["urn"] for s in doc["schools"]] == SCHOOLS  # "Avon School 01" ... in name order

    differences = []
    for row in doc["schools"]:
        for figure in FIGURES:
            want = expected.schools[row["urn"]][figure]
            got = row["figures"][figure]
            if (got["count"], got["of"]) != (want.count, want.of) or got.get(
                    "exceptions", 0) != want.exceptions:
                differences.append(f"{row['urn']} {figure}: got {got['count']}/{got['of']} "
                                   f"(exc {got.get('exceptions', 0)}), built "
                                   f"{want.count}/{want.of} (exc {want.exceptions})")
            shown = {p["upn"] for p in got["pupils"]}
            if shown != want.upns:
                differences.append(f"{row['urn']} {figure}: pupils {sorted(shown)} != "
                                   f"{sorted(want.upns)}")
    for figure in FIGURES:
        got = doc["total"]["figures"][figure]
        if (got["count"], got["of"]) != expected.total(figure):
            differences.append(f"total {figure}: got {got['count']}/{got['of']}, built "
                               f"{expected.total(figure)}")
    assert not differences, "\n".join(differences)
    # The totals of this construction, spelt out: 53 moves (19 late, 30 in time, 4 to an
    # unknown destination, in time), 1 re-route, and the 2 phase transfers ahead.
    phase_moves = 2 if leaving <= WINDOW[1] else 0
    assert expected.total(TRANSFERS) == (35 + phase_moves, 54 + phase_moves)
    assert expected.total(UNACKNOWLEDGED) == (37 + phase_moves, 54 + phase_moves)  # 16 receipts
    assert expected.total(LOST) == (3, 4)
    assert expected.total(CONCERNS) == (5, 15)
    assert (expected.total(SIX), expected.total(SIXTEEN), expected.total(TWENTY)) == (
        (2, 3), (0, 2), (1, 2))
    lost_item = next(p for p in doc["schools"][0]["figures"][LOST]["pupils"]
                     if p["upn"] == rerouted.upn)
    assert lost_item["status"] == "re-routed" and lost_item["counted"] is False

    # Each pupil shown was recorded in the access log, with the reason.
    with psycopg.connect(settings.database_conninfo) as sql:
        logged = {upn for (upn,) in sql.execute(
            "SELECT upn FROM access_log WHERE actor = %s AND action = 'oversight' AND reason = %s",
            (f"trust-{TRUST_PRINCIPAL}", REASON[1])).fetchall()}
    behind = {p["upn"] for row in doc["schools"] for f in row["figures"].values()
              for p in f["pupils"]}
    assert logged == behind and rerouted.upn in logged and ehc_pupils["Ehc5"] in logged

    # Without a reason: the same figures, no pupil, and how to see them.
    figures_only = cli("oversight", "--trust", TRUST, *window, "--format", "json", **as_trust)
    plain = json.loads(figures_only.stdout)
    assert plain["pupils_withheld"] is True and '"pupils"' not in figures_only.stdout
    assert all(m.upn not in figures_only.stdout for m in moves)
    assert plain["total"]["figures"][TRANSFERS]["count"] == doc["total"]["figures"][TRANSFERS]["count"]
    assert "--reason" in " ".join(figures_only.stderr.split())

    # Not allowed: a school, another trust, the LA for a trust's figures; no scope; two scopes.
    school_token = tmp_path / "school.token"
    school_token.write_text(cli("principals", "add", "school", SCHOOLS[0], "--token"
                                ).stdout.splitlines()[-1])
    la_token = tmp_path / "la.token"
    la_token.write_text(cli("principals", "add", "la", "801", "--token").stdout.splitlines()[-1])
    for token in (school_token, la_token):
        refused = cli("oversight", "--trust", TRUST, *REASON, check=False,
                      SENDHUB_TOKEN_FILE=str(token))
        assert refused.returncode == 4, refused.stderr
        assert "may not see the oversight figures" in " ".join(refused.stderr.split())
    assert cli("oversight", "--la", "803", check=False,
               SENDHUB_TOKEN_FILE=str(la_token)).returncode == 4
    assert cli("oversight", "--la", "801", check=False,
               SENDHUB_TOKEN_FILE=str(la_token)).returncode == 0
    assert cli("oversight", check=False).returncode == 2
    assert cli("oversight", "--la", "801", "--trust", TRUST, check=False).returncode == 2

    # The table, for the terminal.
    table = " ".join(cli("oversight", "--trust", TRUST, *window, **as_trust).stdout.split())
    assert "Transfers sent within 15 school days" in table and "Avon 01 " in table
    assert "Sources: transfers sent within 15 school days: Education (Pupil Information)" in table

    # The page, in a browser: two charts, each figure a link to its pupils.
    page_file = tmp_path / "oversight.html"
    cli("oversight", "--trust", TRUST, *window, "--format", "html", "-o", str(page_file),
        *REASON, **as_trust)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(page_file.as_uri())
        assert page.locator("figure svg[role=img]").count() == 2
        assert [t.text_content() for t in page.locator("figure svg > title").all()] == [
            "Compliance over time, by the month each clock started", "Compliance per school"]
        assert page.locator("figure figcaption").count() == 2
        assert page.locator("table#figures caption").is_visible()
        assert page.locator("table#figures tbody th[scope=row]").count() == 21
        page.screenshot(path=str(artifacts / "oversight-page.png"), full_page=True)
        still_lost = next(m for m in moves if m.to_unknown and m.urn == SCHOOLS[5])
        anchor = f"pupils-{LOST}-{SCHOOLS[5]}"
        link = page.locator(f'a[href="#{anchor}"]')
        assert link.inner_text() == "1 of 1"
        link.click()
        assert page.locator(f"#{anchor}").is_visible() and page.url.endswith(f"#{anchor}")
        listed = page.locator(f"#{anchor} + table tbody tr")
        assert listed.count() == 1 and still_lost.upn in listed.inner_text()
        assert "destination not known" in listed.inner_text()
        page.screenshot(path=str(artifacts / "oversight-pupils.png"))
        pdf = page.pdf(format="A4", landscape=True)
        assert pdf.startswith(b"%PDF")
    finally:
        page.close()
    figures_page = tmp_path / "figures-only.html"
    cli("oversight", "--trust", TRUST, *window, "--format", "html", "-o", str(figures_page),
        **as_trust)
    text = figures_page.read_text()
    assert 'href="#pupils' not in text and rerouted.upn not in text
    assert "To see the pupils behind each figure, add --reason" in text
