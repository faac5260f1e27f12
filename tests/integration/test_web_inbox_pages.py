"""The inbox pages' answers that a browser test does not reach, on the real gateway
process and database: the inbox paged by `before`, a JSON download as an attachment, a
CTF that cannot be made (409, with the reason) or is not for this kind of setting (406),
a packet that does not exist (404), and receipt forms that must do nothing: without the
session's form token, from another origin, or incomplete (nothing published)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sendhub.access_log import AccessLog
from sendhub.gateway.store import GatewayStore
from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.pupil_keys import pupil_keys_for, pupil_ref_for_upn
from services.shared.settings import HubSettings
from tests.gateway_support import GatewayProcess, issue_packet, records_on
from tests.integration.test_web_sign_in import csrf_of, sign_in

pytestmark = pytest.mark.integration
SENDER = "100050"  # not in the registry: its packets get no CTF


@pytest.fixture(scope="module")
def gateway(hub_env: dict[str, str], scratch_db: HubSettings) -> Iterator[GatewayProcess]:
    log_dir = Path(__file__).resolve().parents[2] / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    process = GatewayProcess({**hub_env, "SENDHUB_DATABASE_URL": str(scratch_db.database_url)},
                             log_dir / f"gateway-web-inbox-{uuid.uuid4().hex[:6]}.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def receiving(scratch_db: HubSettings, kind: Kind = Kind.school,
              identifier: str | None = None) -> tuple[Principal, str]:
    store = PrincipalStore(scratch_db.database_conninfo)
    identifier = identifier or f"{uuid.uuid4().int % 900000 + 100000}"
    principal = store.add(Principal(kind, identifier)).principal
    return principal, store.issue_token(principal.name).token


def test_the_inbox_pages_back_by_position(scratch_db: HubSettings) -> None:
    school, _ = receiving(scratch_db)
    sent = [issue_packet(scratch_db, SENDER, {"kind": "school", "urn": school.identifier})
            for _ in range(3)]
    store = GatewayStore(scratch_db.database_conninfo, pupil_keys_for(scratch_db))
    try:
        inbox = [f"urn-{school.identifier}"]
        newest, more = store.inbox(inbox, since=None, limit=2)
        assert [p.packet.packet_id for p in newest] == [sent[2].packet_id, sent[1].packet_id]
        assert more
        older, more = store.inbox(inbox, since=None, before=newest[-1].position, limit=2)
        assert [p.packet.packet_id for p in older] == [sent[0].packet_id] and not more
    finally:
        store.close()


def test_downloads_are_attachments_and_a_ctf_that_cannot_be_made_says_why(
        gateway: GatewayProcess, scratch_db: HubSettings) -> None:
    school, token = receiving(scratch_db)
    packet = issue_packet(scratch_db, SENDER, {"kind": "school", "urn": school.identifier})
    with gateway.client() as browser:
        sign_in(browser, token)
        data = browser.get(f"/packets/{packet.packet_id}/download?form=json")
        assert data.status_code == 200 and data.json()["packet_id"] == str(packet.packet_id)
        assert data.headers["content-disposition"] == (
            f'attachment; filename="transfer-packet-{packet.packet_id}.json"')
        ctf = browser.get(f"/packets/{packet.packet_id}/download?form=ctf")
        assert ctf.status_code == 409 and ctf.headers["content-type"].startswith("text/html")
        assert "is not in the settings registry" in ctf.text
        missing = browser.get(f"/packets/{uuid.uuid4()}")
        assert missing.status_code == 404 and "<h1>Not Found</h1>" in missing.text
    actions = [e.action for e in AccessLog(scratch_db.database_conninfo).entries(
        packet.pupil.upn) if e.actor == school.name]
    assert actions == ["packet-download-json"]  # the refused CTF showed nothing


def test_a_ctf_is_for_schools(gateway: GatewayProcess, scratch_db: HubSettings) -> None:
    college, token = receiving(scratch_db, Kind.post16, "10034567")
    packet = issue_packet(scratch_db, SENDER, {"kind": "post16_provider", "ukprn": "10034567"})
    with gateway.client() as browser:
        sign_in(browser, token)
        shown = browser.get(f"/packets/{packet.packet_id}")
        assert shown.status_code == 200 and "download?form=ctf" not in shown.text
        refused = browser.get(f"/packets/{packet.packet_id}/download?form=ctf")
        assert refused.status_code == 406 and "download the JSON" in refused.text


def receipts_for(settings: HubSettings, packet_id: uuid.UUID) -> list[dict[str, object]]:
    return [json.loads(r.value) for r in records_on(
        settings, settings.topics.packet_receipts_from("gateway"))
        if r.key == str(packet_id).encode()]


def test_a_receipt_form_does_nothing_unless_it_is_the_sessions_own_and_complete(
        gateway: GatewayProcess, scratch_db: HubSettings, settings: HubSettings) -> None:
    school, token = receiving(scratch_db)
    packet = issue_packet(scratch_db, SENDER, {"kind": "school", "urn": school.identifier})
    path = f"/packets/{packet.packet_id}/receipt"
    with gateway.client() as browser:
        sign_in(browser, token)
        csrf = csrf_of(browser.get(f"/packets/{packet.packet_id}"))
        origin = {"Origin": str(browser.base_url).rstrip("/")}
        accepted = {"status": "accepted", "reason": ""}
        for data, headers in (({**accepted, "csrf_token": "not-it"}, origin),
                              (accepted, origin),
                              ({**accepted, "csrf_token": csrf}, {"Origin": "https://evil.example"})):
            refused = browser.post(path, data=data, headers=headers)
            assert refused.status_code == 403 and "did not come from this hub" in refused.text
        incomplete = browser.post(path, data={"csrf_token": csrf, "status": "accepted",
                                              "reason": "fine"}, headers=origin)
        assert incomplete.status_code == 400
        assert "A reason goes only with a rejection" in incomplete.text
        assert receipts_for(settings, packet.packet_id) == []
        sent = browser.post(path, data={"csrf_token": csrf, "status": "rejected",
                                        "reason": "Not our pupil."}, headers=origin)
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/packets/{packet.packet_id}?sent=rejected"
    [receipt] = receipts_for(settings, packet.packet_id)
    assert receipt == {"packet_id": str(packet.packet_id), "receiver": f"urn-{school.identifier}",
                       "status": "rejected", "reason": "Not our pupil.", "at": receipt["at"]}


def _not_signed_in(gateway: GatewayProcess) -> httpx.Response:
    with gateway.client() as browser:
        return browser.get("/inbox")


def test_the_inbox_needs_a_signed_in_receiver(gateway: GatewayProcess,
                                              scratch_db: HubSettings) -> None:
    assert _not_signed_in(gateway).headers["location"] == "/sign-in?next=%2Finbox"
    _, token = receiving(scratch_db, Kind.trust, f"t{uuid.uuid4().hex[:8]}")
    with gateway.client() as browser:
        sign_in(browser, token)
        refused = browser.get("/inbox")
    assert refused.status_code == 403 and "has no inbox" in refused.text


def test_an_erased_pupils_packet_is_listed_as_erased_and_its_page_is_gone(
        gateway: GatewayProcess, scratch_db: HubSettings) -> None:
    school, token = receiving(scratch_db)
    kept = issue_packet(scratch_db, SENDER, {"kind": "school", "urn": school.identifier})
    gone = issue_packet(scratch_db, SENDER, {"kind": "school", "urn": school.identifier})
    keys = pupil_keys_for(scratch_db)
    try:
        erasure = keys.erase(pupil_ref_for_upn(gone.pupil.upn), "DPO of School 100050",
                             "the parent's request under UK GDPR Article 17")
    finally:
        keys.close()
    assert erasure is not None
    with gateway.client() as browser:
        sign_in(browser, token)
        inbox = browser.get("/inbox")
        page = browser.get(f"/packets/{gone.packet_id}")
        download = browser.get(f"/packets/{gone.packet_id}/download?form=json")
    assert inbox.status_code == 200
    assert f"Pupil's data {erasure.describe_for_receivers()}" in inbox.text.replace("&#39;", "'")
    assert "Article 17" not in inbox.text
    assert f'href="/packets/{kept.packet_id}"' in inbox.text
    assert f'href="/packets/{gone.packet_id}"' not in inbox.text
    assert page.status_code == 410 and download.status_code == 410
    assert "<h1>Gone</h1>" in page.text and "erased on" in page.text
