"""A receiving SENCO's inbox in Chromium, on the running services and the gateway: a
school sends a history and a move over HTTPS, and the next school's SENCO signs in with
a hub token, sees the packet unread with its open concern, opens it, downloads its CTF
and sends "accepted" from the page; transfers records the receipt, and the inbox then
shows the packet read and accepted. Another school's SENCO gets the 403 page for it, and
its receipt for it is refused and not published. A late entry then makes transfers issue
an amendment, whose page says what changed. A local authority reads its lost pupils and
its own inbox on one page. Every page passes axe-core's WCAG 2.2 A and AA rules
(`check_page`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sendhub.access_log import AccessLog
from services.shared.settings import HubSettings
from services.transfers.forms import read_ctf
from tests.browser_support import check_page
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, eventually, packets_for
from tests.factories import pupil, random_upn, school_event
from tests.gateway_support import GatewayProcess, records_on

pytestmark = pytest.mark.e2e

HILLCREST, KINGSWESTON, OAKFIELD = "137003", "137004", "131001"  # LA 801, sample registry
SENT_ON, MOVED_ON = "2026-01-05T09:00:00+00:00", "2026-01-06"


@pytest.fixture(scope="module")
def gateway(services: RunningServices, hub_env: dict[str, str], cli: CLI
            ) -> Iterator[GatewayProcess]:
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))
    running = GatewayProcess(hub_env, ROOT / "test-artifacts" / "service-logs"
                             / "gateway-web-inbox.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def token_of(cli: CLI, kind: str, identifier: str) -> str:
    return str(cli("principals", "add", kind, identifier, "--token").stdout.splitlines()[-1])


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def signed_in(chromium: Any, gateway: GatewayProcess, path: str, token: str,
              sign_in_page: str | None = None) -> Any:
    """A new browser whose visit to `path` is sent to sign in, and signed in there with
    the token form, comes back to `path` (`sign_in_page`: check the sign-in page)."""
    page = chromium.new_context(ignore_https_errors=True).new_page()
    page.goto(gateway.url + path)
    assert page.url.startswith(f"{gateway.url}/sign-in?next=")
    if sign_in_page:
        check_page(page, sign_in_page)
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def listed(page: Any, gateway: GatewayProcess, name: str, count: int = 1) -> Any:
    """The inbox's rows for a pupil, once transfers has sent `count` packets."""
    def found() -> Any:
        page.goto(gateway.url + "/inbox")
        rows = page.locator("table.inbox tbody tr", has_text=name)
        assert rows.count() == count, page.content()
        return rows
    return eventually(found, 30)


def state_of(cli: CLI, packet_id: object) -> str:
    rows = {r["packet_id"]: r for r in map(json.loads, cli(
        "transfers", "--receiver", f"urn-{KINGSWESTON}", "--json").stdout.splitlines())}
    return str(rows[str(packet_id)]["state"])


def test_a_senco_reads_downloads_and_answers_a_packet_in_the_browser(
        gateway: GatewayProcess, settings: HubSettings, cli: CLI, chromium: Any) -> None:
    hillcrest = gateway.client(token_of(cli, "school", HILLCREST))
    senco, other_senco = token_of(cli, "school", KINGSWESTON), token_of(cli, "school", OAKFIELD)
    upn = random_upn()
    iris, at = pupil(upn, "Isla"), {"urn": HILLCREST, "system": "Bromcom"}
    sent = hillcrest.post("/v1/events", content=ndjson(
        school_event("concern_raised", pupil=iris, source=at),
        school_event("pupil_moved", pupil=iris, source=at, occurred_at=SENT_ON,
                     payload={"destination": {"kind": "school", "urn": KINGSWESTON},
                              "move_kind": "in_year", "effective_date": MOVED_ON})),
        headers={"Content-Type": "application/x-ndjson"})
    assert sent.status_code == 207 and sent.json()["accepted"] == 2, sent.text
    [packet] = eventually(lambda: _one(packets_for(settings, f"urn-{KINGSWESTON}", upn)))

    page = signed_in(chromium, gateway, "/inbox", senco, sign_in_page="sign-in")
    assert page.url == f"{gateway.url}/inbox"
    [row] = listed(page, gateway, "Isla Test").all()
    flags = row.inner_text()
    assert "Unread" in flags and "1 open concern" in flags and "No receipt yet" in flags
    assert "Hillcrest Academy" in flags and "Packet" in flags
    check_page(page, "inbox")

    row.get_by_role("link", name="Isla Test").click()
    page.wait_for_url(f"**/packets/{packet.packet_id}")
    assert page.locator("h1").inner_text() == "Isla Test"
    assert page.get_by_role("heading", name="Still open at the move").is_visible()
    check_page(page, "packet")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="CTF for your MIS (XML)").click()
    ctf = downloading.value
    assert ctf.suggested_filename == "8014003_CTF_8014004_001.XML"  # Hillcrest to Kingsweston
    assert [h.upn for h in read_ctf(Path(ctf.path()).read_bytes())] == [upn]

    page.get_by_label("Rejected: the wrong pupil, unreadable, or not ours").check()
    page.get_by_role("button", name="Send receipt").click()
    assert "Say why you reject this packet" in page.get_by_role("alert").inner_text()
    check_page(page, "packet-receipt-error")
    page.get_by_label("Accepted: the right pupil, and we can read it").check()
    page.get_by_role("button", name="Send receipt").click()
    page.wait_for_url(f"**/packets/{packet.packet_id}?sent=accepted")
    assert "Receipt sent: accepted" in page.get_by_role("status").inner_text()
    check_page(page, "packet-after-receipt")
    eventually(lambda: _equal(state_of(cli, packet.packet_id), "accepted"), 30)
    [row] = listed(page, gateway, "Isla Test").all()
    flags = row.inner_text()
    assert "Unread" not in flags and "Read" in flags and "Accepted" in flags
    reads = [(e.actor, e.action, e.route) for e in AccessLog(settings.database_conninfo)
             .entries(upn) if e.packet_id == packet.packet_id]
    assert {(f"school-{KINGSWESTON}", a, "web") for a in (
        "inbox-web", "packet-page", "packet-download-ctf")} <= set(reads)

    other = signed_in(chromium, gateway, f"/packets/{packet.packet_id}", other_senco)
    assert other.get_by_role("heading", level=1).inner_text() == "Forbidden"
    assert "Isla" not in other.content() and upn not in other.content()
    check_page(other, "packet-forbidden")
    # ...and its session's own form token does not let it answer for Kingsweston.
    other.goto(f"{gateway.url}/inbox")
    csrf = other.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = other.request.post(f"{gateway.url}/packets/{packet.packet_id}/receipt", form={
        "csrf_token": csrf, "status": "rejected", "reason": "not ours"},
        headers={"Origin": gateway.url})
    assert forged.status == 403 and "Isla" not in forged.text()
    receipts = [r for r in records_on(settings, settings.topics.packet_receipts_from("gateway"))
                if r.key == str(packet.packet_id).encode()]
    assert [json.loads(r.value)["status"] for r in receipts] == ["accepted"]

    # Hillcrest records an assessment dated before Iris left: transfers amends the packet.
    late = hillcrest.post("/v1/events", json=school_event(
        "assessment_completed", pupil=iris, source=at, occurred_at="2026-01-02T11:00:00+00:00"))
    assert late.status_code == 202, late.text
    amended = listed(page, gateway, "Isla Test", count=2)
    assert "Amendment" in amended.first.inner_text() and "Unread" in amended.first.inner_text()
    assert "Replaced by a later packet" in amended.last.inner_text()
    amended.first.get_by_role("link", name="Isla Test").click()
    changes = page.locator("section.changes")
    assert changes.get_by_role("heading").inner_text().startswith(
        "What changed since the packet of ")
    assert changes.locator("tbody tr", has_text="Added").filter(
        has_text="Timeline").count() == 1
    check_page(page, "packet-amendment")


def test_a_local_authority_reads_its_lost_pupils_and_its_own_inbox_together(
        gateway: GatewayProcess, settings: HubSettings, cli: CLI, chromium: Any) -> None:
    riverside = gateway.client(token_of(cli, "school", "131002"))  # LA 801
    upn = random_upn()
    jay, at = pupil(upn, "Jay"), {"urn": "131002", "system": "Arbor"}
    sent = riverside.post("/v1/events", content=ndjson(
        school_event("concern_raised", pupil=jay, source=at),
        school_event("pupil_moved", pupil=jay, source=at, occurred_at=SENT_ON,
                     payload={"destination": {"kind": "unknown"}, "move_kind": "in_year",
                              "effective_date": MOVED_ON})),
        headers={"Content-Type": "application/x-ndjson"})
    assert sent.status_code == 207 and sent.json()["accepted"] == 2, sent.text
    page = signed_in(chromium, gateway, "/inbox", token_of(cli, "la", "801"))
    [row] = listed(page, gateway, "Jay Test").all()
    assert [c.inner_text() for c in row.locator("td").all()][:2] == [
        "Riverside Primary School", "Lost pupils"]
    assert page.get_by_role("columnheader", name="Inbox").is_visible()
    check_page(page, "inbox-la")
    row.get_by_role("link", name="Jay Test").click()
    page.wait_for_url("**/packets/*")
    headings = [h.inner_text() for h in page.locator("h1, h2").all()]
    assert headings[:2] == ["Jay Test", "Possible child missing education: no destination known"]
    assert page.get_by_role("link", name="the packet as data (JSON)").is_visible()
    assert page.get_by_role("link", name="CTF for your MIS (XML)").count() == 0
    check_page(page, "packet-la")


def _one(found: list[Any]) -> list[Any]:
    assert len(found) == 1, found
    return found


def _equal(found: object, expected: object) -> None:
    assert found == expected, found
