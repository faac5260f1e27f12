"""The auditor's pupil page in Chromium, on the running services and the gateway: a
history recorded through the real broker, replayed as the hub knew it between two
recordings and then as now, its chain checked against the anchors in Kafka, and every
look written to the access log with its reason before it is shown. A school is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from contracts.anchors import AuditAnchorV1
from sendhub.publishing import publish_lines
from sendhub.topics_reader import read_topic
from services.records.application import RecordsApplication
from services.records.domain import pupil_id_for
from services.shared.settings import HubSettings
from tests.browser_support import check_page
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, eventually
from tests.factories import pupil, random_upn, school_event
from tests.gateway_support import GatewayProcess

pytestmark = pytest.mark.e2e

REASON = "SEN tribunal bundle TB-2026-207"
HILLCREST = {"urn": "137003", "system": "Bromcom"}


@pytest.fixture(scope="module")
def gateway(services: RunningServices, hub_env: dict[str, str]) -> Iterator[GatewayProcess]:
    log_dir = ROOT / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running = GatewayProcess(hub_env, log_dir / "gateway-web-pupils.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def send(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def stored(settings: HubSettings, upn: str, count: int) -> list[datetime]:
    """When the hub recorded each of the pupil's entries, once it has `count` of them."""
    events = RecordsApplication(env=settings.eventsourcing_env()).history_events(upn)
    assert len(events) == count, "not all recorded yet"
    return [e.timestamp for e in events]


def anchored(settings: HubSettings, upn: str, version: int) -> None:
    heads = [h for r in read_topic(settings, settings.topics.audit_anchors)
             for h in AuditAnchorV1.model_validate_json(r.value).heads
             if h.pupil_id == pupil_id_for(upn)]
    assert any(h.version == version for h in heads), "not anchored yet"


def token_of(cli: CLI, kind: str, identifier: str) -> str:
    return str(cli("principals", "add", kind, identifier, "--token").stdout.splitlines()[-1])


def sign_in(page: Any, url: str, token: str) -> None:
    """As a person does: open the page, be sent to sign in, give the token, come back."""
    page.goto(url)
    assert "/sign-in" in page.url
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url)


def history_rows(page: Any) -> list[str]:
    return [" ".join(r.split()) for r in
            page.locator("table.pupil-history tbody tr").all_inner_texts()]


def test_an_auditor_replays_a_pupil_as_known_between_two_recordings_and_now(
        gateway: GatewayProcess, settings: HubSettings, cli: CLI, chromium: Any) -> None:
    upn, nobody = random_upn(), random_upn()
    who = pupil(upn, "Nia")
    send(settings, school_event(pupil=who, source=HILLCREST,
                                occurred_at="2025-01-10T09:00:00+00:00"))
    eventually(lambda: stored(settings, upn, 1))
    time.sleep(1.1)
    between = datetime.now(UTC).replace(microsecond=0)  # the form's instants are to the second
    time.sleep(1.1)
    send(settings, school_event("assessment_completed", pupil=who, source=HILLCREST,
                                occurred_at="2025-03-03T11:00:00+00:00"))
    eventually(lambda: stored(settings, upn, 2))
    send(settings, school_event(pupil=who, source=HILLCREST,  # a late entry about December
                                occurred_at="2024-12-02T10:00:00+00:00",
                                payload={"raised_by": "parent_carer", "areas_of_need": ["SLCN"],
                                         "summary": "Parent reports word-finding difficulty."}))
    first, second, _ = eventually(lambda: stored(settings, upn, 3))
    assert first < between < second
    eventually(lambda: anchored(settings, upn, 3))
    auditor, school = token_of(cli, "auditor", f"web-{upn[-6:]}"), token_of(cli, "school", "137003")

    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1280,
                                                                       "height": 900})
    try:
        page = context.new_page()
        sign_in(page, f"{gateway.url}/pupils", auditor)
        assert page.get_by_role("heading", level=1).inner_text() == "Pupil history"
        assert upn not in page.content()
        check_page(page, "pupils-form")

        page.fill("#upn", upn)
        page.get_by_role("button", name="Show the history").click()
        summary = page.locator(".error-summary")
        assert "Give the reason you are looking" in summary.inner_text()
        assert page.locator("table").count() == 0  # nothing about the pupil yet
        check_page(page, "pupils-form-error")

        page.fill("#reason", REASON)
        page.check("#point-known")
        page.fill("#known_date", between.date().isoformat())
        page.fill("#known_time", f"{between:%H:%M:%S}")
        page.get_by_role("button", name="Show the history").click()
        assert page.get_by_role("heading", level=1).inner_text() == "SEN history of Nia Test"
        rows = history_rows(page)
        assert len(rows) == 1 and rows[0].startswith("1 10 Jan 2025 09:00 UTC")
        assert "Concern raised by teacher" in rows[0] and "Screening assessment" not in rows[0]
        assert "1 of the 3 the hub holds now" in page.locator("dl.summary").inner_text()
        chain = page.locator("section[aria-labelledby=chain-title]").inner_text()
        assert "Intact" in chain and "newest is version 3" in chain
        assert page.locator(".chart [role=img] svg").is_visible()
        check_page(page, "pupil-history")

        page.check("#point-now")
        page.get_by_role("button", name="Show the history at this point").click()
        rows = history_rows(page)
        assert [r.split()[0] for r in rows] == ["1", "2", "3"]
        assert "Screening assessment" in rows[1]
        assert "Late entry" in rows[2] and "Concern raised by parent carer" in rows[2]
        assert "Intact" in page.locator("section[aria-labelledby=chain-title]").inner_text()
        log = page.locator("table.access-log tbody tr").all_inner_texts()
        web_reads = [r for r in log if REASON in r and "\tweb\t" in r]
        assert len(web_reads) == 2 and "now" in web_reads[0] and "as known at" in web_reads[1]
        check_page(page, "pupil-history-now")
        page.emulate_media(media="print")  # prints without the navigation and the form
        assert not page.locator("section.resubmit").is_visible()
        assert not page.locator("nav").is_visible() and page.locator(".chart svg").is_visible()
        page.screenshot(path=ROOT / "test-artifacts" / "web-pupil-history-print.png",
                        full_page=True)
        page.emulate_media(media="screen")

        page.get_by_role("link", name="Look up another pupil, or give another reason").click()
        page.fill("#upn", nobody)
        page.fill("#reason", REASON)
        page.get_by_role("button", name="Show the history").click()
        assert f"No SEN history is recorded for UPN {nobody}" in page.locator(".lead").inner_text()
        check_page(page, "pupil-none")
    finally:
        context.close()

    with psycopg.connect(settings.database_conninfo) as sql:
        reads = sql.execute("SELECT actor, reason, action, detail FROM access_log WHERE upn = %s "
                            "AND route = 'web' ORDER BY id", (upn,)).fetchall()
    actor = f"auditor-web-{upn[-6:]}"
    assert reads == [(actor, REASON, "history", f"as known at {between.isoformat()}"),
                     (actor, REASON, "history", "now")]
    assert REASON in cli("access-log", upn, "--reason", "checking the web reads").stdout
    assert f"auditor-web-{upn[-6:]}" in cli("access-log", nobody, "--reason", "checking").stdout

    context = chromium.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        sign_in(page, f"{gateway.url}/pupils", school)
        assert page.get_by_role("heading", level=1).inner_text() == "Forbidden"
        assert "only auditors" in page.content() and upn not in page.content()
        check_page(page, "pupils-403")
    finally:
        context.close()
