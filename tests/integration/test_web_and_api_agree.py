"""Who may see what is decided once, for the API and the web pages alike: each principal
asks for the same packet, inbox, receipt and history both ways, on the real gateway
process and database, and gets the same answer (200, 403 or 404) both ways."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from contracts.packet import TransferPacketV1
from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings
from tests.gateway_support import GatewayProcess, issue_packet

pytestmark = pytest.mark.integration
SENDING, RECEIVING, ELSEWHERE = "148001", "148002", "148003"


@dataclass
class Hub:
    gateway: GatewayProcess
    store: PrincipalStore
    packet: TransferPacketV1

    def token(self, principal: Principal) -> str:
        self.store.add(principal)
        return self.store.issue_token(principal.name).token

    def browser(self, principal: Principal) -> httpx.Client:
        """A browser signed in as `principal` through the sign-in form."""
        client = self.gateway.client()
        offered = client.get("/sign-in")
        found = re.search(r'name="form_token" value="([^"]+)"', offered.text)
        assert found
        answer = client.post("/sign-in", headers=self.origin(client), data={
            "token": self.token(principal), "form_token": found.group(1)})
        assert answer.status_code == 303, answer.text
        return client

    @staticmethod
    def origin(client: httpx.Client) -> dict[str, str]:
        return {"Origin": str(client.base_url).rstrip("/")}


@pytest.fixture(scope="module")
def hub(hub_env: dict[str, str], scratch_db: HubSettings) -> Iterator[Hub]:
    log_dir = Path(__file__).resolve().parents[2] / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    packet = issue_packet(scratch_db, SENDING, {"kind": "school", "urn": RECEIVING})
    process = GatewayProcess({**hub_env, "SENDHUB_DATABASE_URL": str(scratch_db.database_url)},
                             log_dir / f"gateway-agree-{uuid.uuid4().hex[:6]}.log")
    process.start()
    try:
        yield Hub(process, PrincipalStore(scratch_db.database_conninfo), packet)
    finally:
        process.stop()


PRINCIPALS = {
    "receiving school": Principal(Kind.school, RECEIVING),
    "sending school": Principal(Kind.school, SENDING),
    "another school": Principal(Kind.school, ELSEWHERE),
    "a trust": Principal(Kind.trust, "agree-trust"),
    "an auditor": Principal(Kind.auditor, "agree-auditor"),
    "a local authority": Principal(Kind.la, "848"),
    "a post-16 provider": Principal(Kind.post16, "10048001"),
}
EXPECTED = {  # who: (packet, unknown packet, inbox, history)
    "receiving school": (200, 404, 200, 403),
    "sending school": (403, 404, 200, 403),
    "another school": (403, 404, 200, 403),
    "a trust": (403, 404, 403, 403),
    "an auditor": (403, 404, 403, 200),
    "a local authority": (403, 404, 200, 403),
    "a post-16 provider": (403, 404, 200, 403),
}


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_the_api_and_the_pages_give_each_principal_the_same_answer(hub: Hub, who: str) -> None:
    principal = PRINCIPALS[who]
    api = hub.gateway.client(hub.token(principal))
    web = hub.browser(principal)
    packet, upn = hub.packet.packet_id, hub.packet.pupil.upn
    unknown = uuid.uuid4()
    with closing(api), closing(web):
        answers = {
            "packet": (api.get(f"/v1/packets/{packet}").status_code,
                       web.get(f"/packets/{packet}").status_code),
            "unknown packet": (api.get(f"/v1/packets/{unknown}").status_code,
                               web.get(f"/packets/{unknown}").status_code),
            "inbox": (api.get("/v1/inbox").status_code, web.get("/inbox").status_code),
            "history": (
                api.get(f"/v1/pupils/{upn}/history",
                        headers={"X-Reason": "agreement test"}).status_code,
                web.post("/pupils/view", headers=hub.origin(web), data={
                    "upn": upn, "reason": "agreement test", "point": "now",
                    "csrf_token": csrf(web.get("/signed-in"))}).status_code),
        }
    expected = dict(zip(answers, EXPECTED[who], strict=True))
    assert {k: v[0] for k, v in answers.items()} == expected, "the API's answers"
    assert {k: v[1] for k, v in answers.items()} == expected, "the pages' answers"


def test_a_receipt_for_someone_elses_packet_is_refused_both_ways(hub: Hub) -> None:
    other = PRINCIPALS["another school"]
    receipt = {"packet_id": str(hub.packet.packet_id), "receiver": hub.packet.receiver,
               "status": "accepted", "at": "2026-01-05T09:00:00+00:00"}
    with closing(hub.gateway.client(hub.token(other))) as api, \
            closing(hub.browser(other)) as web:
        by_api = api.post("/v1/receipts", json=receipt)
        by_page = web.post(f"/packets/{hub.packet.packet_id}/receipt", headers=hub.origin(web),
                           data={"status": "accepted",
                                 "csrf_token": csrf(web.get("/signed-in"))})
    assert by_api.status_code == by_page.status_code == 403
