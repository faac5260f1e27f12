"""The HTTPS gateway for real: `sendhub serve gateway` over TLS, on the real PostgreSQL
and Kafka, called the way a school's MIS, a trust, an LA and an auditor would."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.packet import TransferPacketV1
from contracts.topics import PRINCIPAL_HEADER
from sendhub.gateway.signing import SIGNATURE_HEADER, verify
from services.shared.access import Kind, Principal
from services.shared.principals import PrincipalStore
from services.shared.pupil_keys import pupil_keys_for, pupil_ref_for_upn
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from services.transfers.registry import RegisteredSetting
from tests.conftest import CLI
from tests.factories import la_event, random_upn, school_event
from tests.gateway_support import (
    GatewayProcess,
    LocalHTTPS,
    issue_packet,
    issue_packets,
    records_on,
    wait_for,
)

pytestmark = pytest.mark.integration
ISSUER, AUDIENCE, KID = "https://idp.trust.example", "sendhub-gateway", "test-key-1"
RATE_PER_MINUTE, MAX_BATCH, MAX_BODY = 40, 20, 64 * 1024
secrets_seen: list[str] = []  # every token and secret the tests hold: never in a log


@dataclass
class Hub:
    gateway: GatewayProcess
    settings: HubSettings
    store: PrincipalStore
    local: LocalHTTPS
    signing_key: rsa.RSAPrivateKey

    def principal(self, kind: Kind, identifier: str | None = None,
                  acts_for: frozenset[str] = frozenset()) -> tuple[Principal, str]:
        """A new principal of `kind` and a bearer token for it."""
        identifier = identifier or {Kind.school: f"{random.randint(100000, 999999)}",
                                    Kind.la: f"{random.randint(100, 999)}"}.get(
            kind, f"t{uuid.uuid4().hex[:10]}")
        principal = self.store.add(Principal(kind, identifier, acts_for)).principal
        token = self.store.issue_token(principal.name).token
        secrets_seen.append(token)
        return principal, token

    def client(self, token: str | None = None) -> httpx.Client:
        return self.gateway.client(token)

    def jwt_for(self, name: str, *, audience: str = AUDIENCE, expires_in: int = 300) -> str:
        token = jwt.encode({"iss": ISSUER, "aud": audience, "exp": int(time.time()) + expires_in,
                            "sendhub_principal": name}, self.signing_key, algorithm="RS256",
                           headers={"kid": KID})
        secrets_seen.append(token)
        return token


@pytest.fixture(scope="module")
def hub(hub_env: dict[str, str], settings: HubSettings, scratch_db: HubSettings,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    # A database of this module's own: the session's running services (e2e tests) would
    # otherwise project the histories these tests record, racing issue_packet.
    ours = settings.model_copy(update={"database_url": scratch_db.database_url})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    local = LocalHTTPS(jwks={"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]})
    local_url = local.start()
    log_dir = Path(__file__).resolve().parents[2] / "test-artifacts" / "service-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    gateway = GatewayProcess({
        **hub_env, "SENDHUB_DATABASE_URL": str(scratch_db.database_url),
        "SENDHUB_GATEWAY_OIDC_ISSUER": ISSUER,
        "SENDHUB_GATEWAY_OIDC_AUDIENCE": AUDIENCE,
        "SENDHUB_GATEWAY_OIDC_JWKS_URL": f"{local_url}/jwks.json",
        "SENDHUB_GATEWAY_RATE_LIMIT_PER_MINUTE": str(RATE_PER_MINUTE),
        "SENDHUB_GATEWAY_MAX_BATCH_EVENTS": str(MAX_BATCH),
        "SENDHUB_GATEWAY_MAX_BODY_BYTES": str(MAX_BODY),
        "SENDHUB_GATEWAY_WEBHOOK_RETRY_SECONDS": "[0.5, 0.5]",
        "SENDHUB_GATEWAY_WEBHOOK_INTERVAL_SECONDS": "0.2",
    }, log_dir / f"gateway-{uuid.uuid4().hex[:6]}.log")
    gateway.start()
    try:
        yield Hub(gateway, ours, PrincipalStore(ours.database_conninfo), local, key)
    finally:
        gateway.stop()
        local.stop()


def on_gateway_topic(hub: Hub) -> list[dict[str, object]]:
    topic = hub.settings.topics.school_events_from("gateway")
    return [{"event_id": json.loads(r.value)["event_id"], "key": r.key,
             "principal": r.headers.get(PRINCIPAL_HEADER)} for r in records_on(hub.settings, topic)]


def event_from(urn: str, **changes: Any) -> dict[str, Any]:
    upn = random_upn()
    return school_event(source={"urn": urn, "system": "SIMS"},
                        pupil={"upn": upn, "given_name": "Zoe", "family_name": "Test",
                               "date_of_birth": "2015-02-03"}, **changes)


# -- authentication ---------------------------------------------------------------------

def test_a_request_without_a_valid_token_is_refused_with_a_bearer_challenge(hub: Hub) -> None:
    with hub.client() as anonymous:
        answer = anonymous.get("/v1/inbox")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert {"type", "title", "status", "detail"} <= answer.json().keys()
    for bad in ("shb_" + uuid.uuid4().hex + "_nope", "not-a-token"):
        with hub.client(bad) as client:
            refused = client.get("/v1/inbox")
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_a_revoked_or_expired_token_is_refused_on_its_next_request(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    with hub.client(token) as client:
        assert client.get("/v1/inbox").status_code == 200
        hub.store.revoke_tokens_except(school.name)
        assert client.get("/v1/inbox").status_code == 401
    other, second = hub.principal(Kind.school)
    with hub.client(second) as client:
        assert client.get("/v1/inbox").status_code == 200
        with psycopg.connect(hub.settings.database_conninfo) as conn:
            conn.execute("UPDATE credentials SET expires_at = now() - interval '1 second' "
                         "WHERE principal = %s", (other.name,))
        answer = client.get("/v1/inbox")
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_an_openid_connect_jwt_is_accepted_for_an_active_principal_only(hub: Hub) -> None:
    school, _ = hub.principal(Kind.school)
    with hub.client(hub.jwt_for(school.name)) as client:
        assert client.get("/v1/inbox").json()["receiver"] == f"urn-{school.identifier}"
    refusals = {
        "aud": hub.jwt_for(school.name, audience="someone-else"),
        "expired": hub.jwt_for(school.name, expires_in=-60),
        "no active principal": hub.jwt_for("school-000000"),
    }
    for why, token in refusals.items():
        with hub.client(token) as client:
            answer = client.get("/v1/inbox")
        assert answer.status_code == 401, why
        assert why in answer.json()["detail"]


def test_the_api_is_described_at_docs(hub: Hub) -> None:
    with hub.client() as anonymous:
        docs = anonymous.get("/docs")
        spec = anonymous.get("/openapi.json").json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {"/v1/events", "/v1/inbox", "/v1/packets/{packet_id}", "/v1/receipts",
            "/v1/transfers", "/v1/pupils/{upn}/history", "/v1/webhooks"} <= spec["paths"].keys()
    assert "500" in spec["paths"]["/v1/events"]["post"]["description"]


# -- sending events ---------------------------------------------------------------------

def test_a_valid_event_is_on_the_gateway_topic_with_its_sender_before_202(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    event = event_from(school.identifier)
    with hub.client(token) as client:
        answer = client.post("/v1/events", json=event)
    assert answer.status_code == 202, answer.text
    [found] = [r for r in on_gateway_topic(hub) if r["event_id"] == event["event_id"]]
    assert found["principal"] == school.name.encode()
    assert found["key"] == event["pupil"]["upn"].encode()


def test_school_a_cannot_send_an_event_for_school_b(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    event = event_from("100002" if school.identifier != "100002" else "100003")
    with hub.client(token) as client:
        answer = client.post("/v1/events", json=event)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert all(r["event_id"] != event["event_id"] for r in on_gateway_topic(hub))


def test_a_connector_sends_for_the_settings_it_acts_for_only(hub: Hub) -> None:
    connector, token = hub.principal(Kind.connector, acts_for=frozenset({"100010"}))
    with hub.client(token) as client:
        assert client.post("/v1/events", json=event_from("100010")).status_code == 202
        assert client.post("/v1/events", json=event_from("100011")).status_code == 403


def test_an_event_the_contract_refuses_gets_422_with_its_problems(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    event = event_from(school.identifier)
    event["payload"] = {**event["payload"], "parent_carer_veiws": "typo"}
    with hub.client(token) as client:
        answer = client.post("/v1/events", json=event)
        not_json = client.post("/v1/events", content=b"{", headers={
            "Content-Type": "application/json"})
    assert answer.status_code == 422
    assert any(p["path"].endswith("parent_carer_veiws") for p in answer.json()["problems"])
    assert not_json.status_code == 422 and "not JSON" in not_json.json()["problems"][0]["message"]


def test_a_batch_is_answered_line_by_line(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    good, other, bad = (event_from(school.identifier), event_from("100099"),
                        event_from(school.identifier, schema_version=2))
    body = b"\n".join(json.dumps(e).encode() for e in (good, other)) + b"\n\n" + \
        json.dumps(bad).encode() + b"\n"
    with hub.client(token) as client:
        answer = client.post("/v1/events", content=body,
                             headers={"Content-Type": "application/x-ndjson"})
        too_many = client.post("/v1/events", content=b"\n".join(
            json.dumps(event_from(school.identifier)).encode() for _ in range(MAX_BATCH + 1)),
            headers={"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 207
    results = answer.json()["results"]
    assert [(r["line"], r["status"]) for r in results] == [(1, 202), (2, 403), (4, 422)]
    assert answer.json()["accepted"] == 1 and answer.json()["refused"] == 2
    published = {r["event_id"] for r in on_gateway_topic(hub)}
    assert good["event_id"] in published
    assert not {other["event_id"], bad["event_id"]} & published
    assert too_many.status_code == 413


def test_a_body_over_the_limit_is_refused_whether_or_not_its_length_is_declared(hub: Hub) -> None:
    _, token = hub.principal(Kind.school)
    big = b"x" * (MAX_BODY + 1)
    with hub.client(token) as client:
        declared = client.post("/v1/events", content=big,
                               headers={"Content-Type": "application/json"})
        streamed = client.post("/v1/events", content=iter([big[:4096], big[4096:]]),
                               headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"


def test_a_principal_over_its_rate_is_told_to_wait(hub: Hub) -> None:
    _, token = hub.principal(Kind.school)
    _, other_token = hub.principal(Kind.school)
    with hub.client(token) as client:
        answers = [client.get("/v1/webhooks") for _ in range(RATE_PER_MINUTE + 5)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    with hub.client(other_token) as other:  # buckets are per principal
        assert other.get("/v1/webhooks").status_code == 200


# -- reading ----------------------------------------------------------------------------

def test_a_school_reads_its_own_packets_and_not_another_schools(hub: Hub) -> None:
    a, a_token = hub.principal(Kind.school)
    b, b_token = hub.principal(Kind.school)
    to_a = issue_packet(hub.settings, "100050", {"kind": "school", "urn": a.identifier})
    to_b = issue_packet(hub.settings, "100050", {"kind": "school", "urn": b.identifier})
    with hub.client(a_token) as client:
        inbox = client.get("/v1/inbox")
        own = client.get(f"/v1/packets/{to_a.packet_id}")
        unregistered = client.get(f"/v1/packets/{to_a.packet_id}",
                                  headers={"Accept": "application/xml"})
        _register(hub, ("100050", "2050"), (a.identifier, "2051"))
        ctf = client.get(f"/v1/packets/{to_a.packet_id}", headers={"Accept": "application/xml"})
        page = client.get(f"/v1/packets/{to_a.packet_id}", headers={"Accept": "text/html"})
        others = client.get(f"/v1/packets/{to_b.packet_id}")
        unknown = client.get(f"/v1/packets/{uuid.uuid4()}")
        again = client.get("/v1/inbox", params={"since": inbox.json()["next_since"]})
    assert [p["packet_id"] for p in inbox.json()["packets"]] == [str(to_a.packet_id)]
    assert TransferPacketV1.model_validate(own.json()).packet_id == to_a.packet_id
    # no CTF with empty LEA/Estab: 409 until both schools are in the registry
    assert unregistered.status_code == 409
    assert unregistered.headers["content-type"].startswith("application/problem+json")
    assert ctf.headers["content-type"].startswith("application/xml") and b"<CTfile>" in ctf.content
    assert page.headers["content-type"].startswith("text/html")
    assert others.status_code == 403 and unknown.status_code == 404
    assert again.json()["packets"] == []
    assert _access_log(hub, to_a.pupil.upn, a.name) and not _access_log(hub, to_b.pupil.upn, a.name)


def test_an_inbox_polled_with_since_gets_only_newer_packets(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    first = issue_packet(hub.settings, "100050", {"kind": "school", "urn": school.identifier})
    with hub.client(token) as client:
        cursor = client.get("/v1/inbox").headers["x-sendhub-next-since"]
        second = issue_packet(hub.settings, "100050", {"kind": "school", "urn": school.identifier})
        newer = client.get("/v1/inbox", params={"since": cursor}).json()
        both = client.get("/v1/inbox").json()
    assert [p["packet_id"] for p in newer["packets"]] == [str(second.packet_id)]
    assert [p["packet_id"] for p in both["packets"]] == [str(second.packet_id),
                                                         str(first.packet_id)]


def _register(hub: Hub, *schools: tuple[str, str]) -> None:
    store = TransfersApplication.for_settings(hub.settings)
    try:
        store.import_settings([RegisteredSetting(urn=urn, name=f"School {urn}", phase="Primary",
                                                 la_code="801", establishment_number=number)
                               for urn, number in schools])
    finally:
        store.close()


def test_an_la_reads_the_lost_pupils_of_its_own_area_only(hub: Hub) -> None:
    urn = f"{random.randint(100000, 999999)}"
    store = TransfersApplication.for_settings(hub.settings)
    try:
        store.import_settings([RegisteredSetting(urn=urn, name="Leaving School",
                                                 phase="Primary", la_code="801")])
    finally:
        store.close()
    lost = issue_packet(hub.settings, urn, {"kind": "unknown"})
    la_801 = hub.store.active("la-801") or hub.store.add(Principal(Kind.la, "801")).principal
    token_801 = hub.store.issue_token(la_801.name).token
    _, token_803 = hub.principal(Kind.la, "803")
    secrets_seen.append(token_801)
    with hub.client(token_801) as client:
        inbox = client.get("/v1/inbox").json()
        transfers = client.get("/v1/transfers").json()["transfers"]
    with hub.client(token_803) as client:
        refused = client.get(f"/v1/packets/{lost.packet_id}")
        other_inbox = client.get("/v1/inbox").json()
    assert inbox["receiver"] == "lost-pupils.la-801"
    assert str(lost.packet_id) in [p["packet_id"] for p in inbox["packets"]]
    assert str(lost.packet_id) in [t["packet_id"] for t in transfers]
    assert refused.status_code == 403
    assert str(lost.packet_id) not in [p["packet_id"] for p in other_inbox["packets"]]


def test_an_la_reads_both_its_inboxes_and_answers_only_for_its_own_notices(hub: Hub) -> None:
    # A pupil with LA "old"'s plan moves to a school in LA "new"; another leaves a school
    # in LA "new" for an unknown destination.
    old_code, new_code = (str(code) for code in random.sample(range(100, 1000), 2))
    old, old_token = hub.principal(Kind.la, old_code)
    new, new_token = hub.principal(Kind.la, new_code)
    leaving, arriving = (str(urn) for urn in random.sample(range(100000, 1000000), 2))
    store = TransfersApplication.for_settings(hub.settings)
    try:
        store.import_settings([
            RegisteredSetting(urn=leaving, name="Leaving School", phase="Primary",
                              la_code=old.identifier, la_name="Old Shire"),
            RegisteredSetting(urn=arriving, name="Arriving School", phase="Primary",
                              la_code=new.identifier, la_name="New Shire")])
    finally:
        store.close()
    school, school_token = hub.principal(Kind.school, arriving)
    url = f"https://127.0.0.1:{hub.local.server.server_address[1]}/hook/{new.name}"  # type: ignore[union-attr]
    with hub.client(new_token) as client:
        assert client.post("/v1/webhooks", json={"url": url}).status_code == 201
    plan = la_event("ehc_plan_issued", la=old.identifier,
                    payload={"maintaining_la": old.identifier, "named_setting_urn": leaving})
    setting, into, out_of = issue_packets(hub.settings, leaving,
                                          {"kind": "school", "urn": arriving}, before=[plan])
    lost = issue_packet(hub.settings, arriving, {"kind": "unknown"})
    assert (into.receiver, out_of.receiver) == (new.name, old.name)
    with hub.client(new_token) as client:
        inbox = client.get("/v1/inbox").json()
        others = client.get(f"/v1/packets/{out_of.packet_id}")
        page = client.get(f"/v1/packets/{into.packet_id}", headers={"Accept": "text/html"})
        ack = {"packet_id": str(into.packet_id), "status": "received",
               "at": datetime.now(UTC).isoformat()}
        wrong = client.post("/v1/receipts", json={**ack, "receiver": f"urn-{arriving}"})
        right = client.post("/v1/receipts", json={**ack, "receiver": new.name})
    with hub.client(old_token) as client:
        own = client.get(f"/v1/packets/{out_of.packet_id}")
    with hub.client(school_token) as client:
        notice_to_school = client.get(f"/v1/packets/{into.packet_id}")
        school_inbox = client.get("/v1/inbox").json()
    assert inbox["receiver"] == f"lost-pupils.{new.name}"
    assert inbox["inboxes"] == [f"lost-pupils.{new.name}", new.name]
    assert {p["packet_id"] for p in inbox["packets"]} == {str(into.packet_id),
                                                          str(lost.packet_id)}
    assert others.status_code == 403 and own.status_code == 200
    assert "EHC plan transfer: a plan moves into your care" in page.text
    assert wrong.status_code == 422 and right.status_code == 202
    assert notice_to_school.status_code == 403  # the school has its own packet
    assert [p["packet_id"] for p in school_inbox["packets"]] == [str(setting.packet_id)]
    assert school.name == f"school-{arriving}"

    def pushed() -> set[str]:
        return {json.loads(r.body)["packet_id"] for r in hub.local.received
                if r.path.endswith(new.name)}
    assert wait_for(lambda: pushed() == {str(into.packet_id), str(lost.packet_id)})


def test_a_receipt_is_accepted_only_from_the_packets_receiver(hub: Hub) -> None:
    a, a_token = hub.principal(Kind.school)
    _, b_token = hub.principal(Kind.school)
    packet = issue_packet(hub.settings, "100050", {"kind": "school", "urn": a.identifier})
    receipt = {"packet_id": str(packet.packet_id), "receiver": f"urn-{a.identifier}",
               "status": "received", "at": datetime.now(UTC).isoformat()}
    with hub.client(b_token) as client:
        assert client.post("/v1/receipts", json=receipt).status_code == 403
    with hub.client(a_token) as client:
        assert client.post("/v1/receipts", json=receipt).status_code == 202
    on_topic = records_on(hub.settings, hub.settings.topics.packet_receipts_from("gateway"))
    assert [r.headers[PRINCIPAL_HEADER] for r in on_topic
            if json.loads(r.value)["packet_id"] == str(packet.packet_id)] == [a.name.encode()]


def test_transfers_are_listed_for_what_the_caller_oversees(hub: Hub) -> None:
    a, a_token = hub.principal(Kind.school)
    sent = issue_packet(hub.settings, a.identifier, {"kind": "school", "urn": "100070"})
    elsewhere = issue_packet(hub.settings, "100071", {"kind": "school", "urn": "100072"})
    _, auditor_token = hub.principal(Kind.auditor)
    with hub.client(a_token) as client:
        listed = {t["packet_id"] for t in client.get("/v1/transfers").json()["transfers"]}
    with hub.client(auditor_token) as client:
        assert client.get("/v1/transfers").status_code == 403
    assert str(sent.packet_id) in listed and str(elsewhere.packet_id) not in listed


def test_an_auditor_reads_a_history_with_a_reason_and_the_read_is_logged(hub: Hub) -> None:
    auditor, token = hub.principal(Kind.auditor)
    _, school_token = hub.principal(Kind.school)
    upn = random_upn()
    issue_packet(hub.settings, "100080", {"kind": "school", "urn": "100081"}, upn=upn)
    with hub.client(token) as client:
        without = client.get(f"/v1/pupils/{upn}/history")
        answer = client.get(f"/v1/pupils/{upn}/history", headers={"X-Reason": "SAR 2026-17"})
        as_of = client.get(f"/v1/pupils/{upn}/history", params={"as_of": "2025-03-02"},
                           headers={"X-Reason": "SAR 2026-17"})
    with hub.client(school_token) as client:
        refused = client.get(f"/v1/pupils/{upn}/history", headers={"X-Reason": "curious"})
    assert without.status_code == 400 and "X-Reason" in without.json()["detail"]
    assert refused.status_code == 403
    assert answer.status_code == 200 and len(answer.json()["events"]) == 2
    assert len(as_of.json()["events"]) == 1
    assert ("history", "SAR 2026-17", "https") in _access_log(hub, upn, auditor.name)


def _access_log(hub: Hub, upn: str, actor: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(hub.settings.database_conninfo) as conn:
        rows = conn.execute("SELECT action, reason, route FROM access_log WHERE upn = %s "
                            "AND actor = %s", (upn, actor)).fetchall()
    return [(str(a), str(r), str(route)) for a, r, route in rows]


# -- webhooks ---------------------------------------------------------------------------

def test_a_webhook_gets_each_new_packet_signed_and_retried_after_a_failure(hub: Hub) -> None:
    school, token = hub.principal(Kind.school)
    url = f"https://127.0.0.1:{hub.local.server.server_address[1]}/hook/{school.name}"  # type: ignore[union-attr]
    with hub.client(token) as client:
        registered = client.post("/v1/webhooks", json={"url": url})
        plain = client.post("/v1/webhooks", json={"url": "http://127.0.0.1/hook"})
    assert registered.status_code == 201 and plain.status_code == 422
    secret = registered.json()["secret"]
    secrets_seen.append(secret)
    hub.local.answers += [500]  # the receiver fails the first delivery
    packet = issue_packet(hub.settings, "100050", {"kind": "school", "urn": school.identifier})

    def deliveries() -> list[tuple[int, int | None, bool]]:
        with psycopg.connect(hub.settings.database_conninfo) as conn:
            rows = conn.execute("SELECT attempt, status, delivered FROM webhook_deliveries "
                                "WHERE packet_id = %s ORDER BY attempt",
                                (packet.packet_id,)).fetchall()
        return rows if any(delivered for *_, delivered in rows) else []

    assert wait_for(deliveries) == [(1, 500, False), (2, 200, True)]
    mine = [r for r in hub.local.received if r.path.endswith(school.name)]
    assert len(mine) == 2
    for delivery in mine:
        verify(secret, delivery.body, delivery.headers[SIGNATURE_HEADER], int(time.time()))
        assert json.loads(delivery.body)["packet_id"] == str(packet.packet_id)


def test_the_operator_adds_a_webhook_and_sees_its_secret_only_once(hub: Hub, cli: CLI) -> None:
    school, _ = hub.principal(Kind.school)
    here = {"SENDHUB_DATABASE_URL": str(hub.settings.database_url)}  # the module's database
    added = cli("webhooks", "add", school.name, "https://mis.example/sendhub", **here)
    secret = added.stdout.strip().splitlines()[-1]
    secrets_seen.append(secret)
    assert secret.startswith("whsec_")
    listed = cli("webhooks", "list", **here).stdout
    assert school.name in listed and secret not in listed
    refused = cli("webhooks", "add", school.name, "http://mis.example/x", check=False, **here)
    assert refused.returncode != 0


def test_a_packet_reads_whole_until_its_pupil_is_erased_then_is_gone(hub: Hub, cli: CLI) -> None:
    """Packets are stored sealed (tests/integration/test_sealed_transfers.py): the API and
    the CLI still give them whole; once the pupil's key is destroyed, 410 with the
    erasure, and the inbox lists the packet as erased. (The erased pupil's packet is not
    read before: a gateway may read with a key it fetched within SENDHUB_KEY_CACHE_SECONDS.)"""
    school, token = hub.principal(Kind.school)
    _, other_token = hub.principal(Kind.school)
    kept = issue_packet(hub.settings, "100050", {"kind": "school", "urn": school.identifier})
    gone = issue_packet(hub.settings, "100050", {"kind": "school", "urn": school.identifier})
    keys = pupil_keys_for(hub.settings)
    try:
        erasure = keys.erase(pupil_ref_for_upn(gone.pupil.upn), "DPO of School 100050",
                             "the parent's request under UK GDPR Article 17")
    finally:
        keys.close()
    assert erasure is not None
    sentence = erasure.describe_for_receivers()  # the date only: not who, nor why
    with hub.client(token) as client:
        whole = client.get(f"/v1/packets/{kept.packet_id}")
        erased = client.get(f"/v1/packets/{gone.packet_id}")
        page = client.get(f"/v1/packets/{gone.packet_id}", headers={"Accept": "text/html"})
        inbox = client.get("/v1/inbox")
    with hub.client(other_token) as client:
        not_theirs = client.get(f"/v1/packets/{gone.packet_id}")
    assert TransferPacketV1.model_validate(whole.json()) == kept
    assert erased.status_code == 410 and erased.json()["erased"] == sentence
    assert sentence in erased.json()["detail"] and gone.pupil.family_name not in erased.text
    assert "Article 17" not in erased.text and "DPO" not in erased.text
    assert page.status_code == 410
    assert not_theirs.status_code == 403  # an erasure is told only to the packet's addressee
    assert [p["packet_id"] for p in inbox.json()["packets"]] == [str(kept.packet_id)]
    assert inbox.json()["erased"] == [{"packet_id": str(gone.packet_id), "erased": sentence}]
    here = {"SENDHUB_DATABASE_URL": str(hub.settings.database_url), "SENDHUB_TOKEN": token}
    shown = cli("packet", str(kept.packet_id), "--reason", "admission", **here)
    assert TransferPacketV1.model_validate_json(shown.stdout) == kept
    refused = cli("packet", str(gone.packet_id), "--reason", "admission", check=False, **here)
    assert refused.returncode == 1 and "its pupil's data was erased on" in refused.stderr


def test_no_token_or_secret_appears_in_the_gateway_log(hub: Hub) -> None:
    # Runs last in this module: by now every kind of credential has been used.
    log = hub.gateway.log()
    assert '"request"' in log and secrets_seen
    leaked = [s[:12] for s in secrets_seen if s in log or secret_part(s) in log]
    assert not leaked
    kafka_password = hub.settings.kafka_password(hub.settings.kafka_user("gateway"))
    assert kafka_password not in log


def secret_part(credential: str) -> str:
    """What must never be seen even alone: a hub token's secret (`shb_<id>_<secret>`), a
    JWT's signature, a webhook secret after its prefix."""
    if credential.startswith("shb_"):
        return credential[len("shb_") + 33:]
    if credential.count(".") == 2:
        return credential.rsplit(".", 1)[1]
    return credential.removeprefix("whsec_")
