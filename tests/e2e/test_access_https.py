"""A school without Kafka, over HTTPS, through the running services: its events become a
packet for the next school, which reads it and answers with a receipt, all through the
gateway; and what the gateway's topic says is checked again by ingest and transfers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from contracts.topics import PRINCIPAL_HEADER
from services.shared.kafka import client_options
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import pupil, random_upn, school_event
from tests.gateway_support import GatewayProcess

pytestmark = pytest.mark.e2e

HILLCREST, KINGSWESTON = "137003", "137004"  # both LA 801, in the sample registry


@pytest.fixture(scope="module")
def gateway(services: RunningServices, hub_env: dict[str, str], cli: CLI
            ) -> Iterator[GatewayProcess]:
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))
    log_dir = ROOT / "test-artifacts" / "service-logs"
    running = GatewayProcess(hub_env, log_dir / "gateway-e2e.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def token_of(cli: CLI, kind: str, identifier: str) -> str:
    return str(cli("principals", "add", kind, identifier, "--token").stdout.splitlines()[-1])


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_a_school_on_https_sends_a_history_and_the_next_school_receives_and_answers(
        gateway: GatewayProcess, settings: HubSettings, cli: CLI) -> None:
    hillcrest = gateway.client(token_of(cli, "school", HILLCREST))
    kingsweston = gateway.client(token_of(cli, "school", KINGSWESTON))
    upn = random_upn()
    who, at = pupil(upn, "Iris"), {"urn": HILLCREST, "system": "Bromcom"}
    sent = hillcrest.post("/v1/events", content=ndjson(
        school_event("concern_raised", pupil=who, source=at),
        school_event("pupil_moved", pupil=who, source=at, occurred_at="2026-01-05T09:00:00+00:00",
                     payload={"destination": {"kind": "school", "urn": KINGSWESTON},
                              "move_kind": "in_year", "effective_date": "2026-01-06"})),
        headers={"Content-Type": "application/x-ndjson"})
    assert sent.status_code == 207 and sent.json()["accepted"] == 2, sent.text
    [packet] = eventually(lambda: _some(packets_for(settings, f"urn-{KINGSWESTON}", upn)))
    inbox = kingsweston.get("/v1/inbox", headers={"Accept": "application/json"})
    assert str(packet.packet_id) in inbox.text
    assert hillcrest.get(f"/v1/packets/{packet.packet_id}").status_code == 403
    receipt = {"packet_id": str(packet.packet_id), "receiver": f"urn-{KINGSWESTON}",
               "status": "accepted", "at": "2026-01-07T10:00:00+00:00"}
    assert kingsweston.post("/v1/receipts", json=receipt).status_code == 202

    def accepted() -> None:
        store = TransfersApplication.for_settings(settings)
        try:
            states = [d.delivery.state for d in store.deliveries(upn=upn)]
        finally:
            store.close()
        assert states == ["accepted"], states
    eventually(accepted)


def test_a_school_cannot_send_as_another_by_https(
        gateway: GatewayProcess, cli: CLI) -> None:
    hillcrest = gateway.client(token_of(cli, "school", HILLCREST))
    refused = hillcrest.post("/v1/events", json=school_event(
        source={"urn": KINGSWESTON, "system": "Bromcom"}))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert gateway.client().get("/v1/inbox").status_code == 401


def test_what_the_gateways_topic_says_is_checked_again_downstream(
        services: RunningServices, settings: HubSettings, cli: CLI) -> None:
    """Even the gateway's own credentials cannot make ingest or transfers accept an event
    or a receipt its named caller may not send (defence in depth)."""
    cli("principals", "add", "school", HILLCREST)
    gateway_user = client_options(settings, "gateway")
    producer = KafkaProducer(**gateway_user, acks="all")
    forged = school_event(source={"urn": KINGSWESTON, "system": "Bromcom"})
    try:
        producer.send(settings.topics.school_events_from("gateway"), key=b"k",
                      value=json.dumps(forged).encode(),
                      headers=[(PRINCIPAL_HEADER, f"school-{HILLCREST}".encode())]).get(timeout=15)
    finally:
        producer.close()

    def refused() -> None:
        letters = [d for d in dead_letters(settings) if d.reason == "not_authorised"
                   and json.loads(d.original).get("event_id") == forged["event_id"]]
        assert letters, "not refused yet"
        assert letters[0].problems[0].message == (
            f"school-{HILLCREST} may not send events for URN {KINGSWESTON}")
    eventually(refused)


def _some(found: list[Any]) -> list[Any]:
    assert found, "nothing yet"
    return found


def test_no_secret_appears_in_the_gateways_log(gateway: GatewayProcess,
                                                settings: HubSettings) -> None:
    secret = (settings.credentials_dir / f"{settings.topic_namespace}service-gateway.password")
    text = Path(gateway.log_path).read_text(errors="replace")
    assert secret.read_text().strip() not in text
    assert "shb_" not in text  # no token, whole or in part
