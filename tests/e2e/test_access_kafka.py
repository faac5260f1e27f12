"""Who may do what on Kafka, on the real broker with the services running: every kind of
principal against the actions it is allowed and the ones it is refused.

The broker refuses what the ACLs do not grant (authentication, topic authorisation);
ingest and transfers refuse what a principal writes to its own topic but may not say
(`not_authorised` dead letters, original bytes kept). The principals are added with the
`sendhub principals` commands, as an operator would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from contracts.receipts import PacketReceiptV1
from sendhub.principals_admin import kafka_user
from sendhub.publishing import publish_lines
from services.shared.access import Principal
from services.shared.kafka import client_options
from services.shared.settings import HubSettings
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

OAKFIELD, RIVERSIDE, BROOK_LANE = "131001", "131002", "131005"  # LA 801, 801, 803
AVON_VALLEY = "10045678"  # a sixth form college's UKPRN


def as_user(settings: HubSettings, name: str, **changes: Any) -> dict[str, Any]:
    """kafka-python options for a principal's own Kafka user (its namespaced name)."""
    user = kafka_user(settings, Principal.parse(name))
    return client_options(settings.model_copy(update={"kafka_username": user, **changes}))


def produce(options: dict[str, Any], topic: str, value: bytes, key: bytes = b"k") -> None:
    producer = KafkaProducer(**options, acks="all", max_block_ms=15_000)
    try:
        producer.send(topic, key=key, value=value).get(timeout=15)
    finally:
        producer.close(timeout=5)


def read_all(options: dict[str, Any], topic: str) -> list[bytes]:
    """Everything on `topic`; the broker's refusal surfaces as
    TopicAuthorizationFailedError when the end offsets are asked for."""
    consumer = KafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=1500)
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[bytes] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                found += [r.value for r in records]
        return found
    finally:
        consumer.close()


@pytest.fixture(scope="module", autouse=True)
def principals(cli: CLI) -> None:
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))
    for args in (["school", OAKFIELD], ["school", RIVERSIDE], ["la", "801"], ["la", "803"],
                 ["connector", "acme-mis", "--acts-for", OAKFIELD], ["school", BROOK_LANE],
                 ["post16", AVON_VALLEY]):
        cli("principals", "add", *args, "--kafka")


def event_from(urn: str, upn: str | None = None, kind: str = "concern_raised"
               ) -> dict[str, Any]:
    return school_event(kind, source={"urn": urn, "system": "SIMS"},
                        pupil=pupil(upn or random_upn(), "Ada"))


def not_authorised_for(settings: HubSettings, event_id: str) -> Callable[[], None]:
    def check() -> None:
        found = [d for d in dead_letters(settings) if d.reason == "not_authorised"
                 and json.loads(d.original).get("event_id") == event_id]
        assert found, f"no not_authorised dead letter for {event_id} yet"
        assert found[0].service in ("ingest", "transfers")
    return check


def test_a_plaintext_client_and_a_wrong_password_are_refused_by_the_broker(
        settings: HubSettings, tmp_path: Any) -> None:
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000,
                         bootstrap_timeout_ms=5000, client_id="plaintext").list_topics()
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password")
    with pytest.raises(KafkaError):
        KafkaAdminClient(**as_user(settings, f"school-{OAKFIELD}", kafka_password_file=wrong),
                         request_timeout_ms=5000, bootstrap_timeout_ms=5000).list_topics()
    with pytest.raises(KafkaError):  # trusts and auditors have no Kafka credentials at all
        KafkaAdminClient(**as_user(settings, "trust-severn-vale", kafka_password_file=wrong),
                         request_timeout_ms=5000, bootstrap_timeout_ms=5000).list_topics()


def test_a_school_writes_only_its_own_topic_and_speaks_only_for_itself(
        services: RunningServices, settings: HubSettings) -> None:
    topics = settings.topics
    oakfield = as_user(settings, f"school-{OAKFIELD}")
    with pytest.raises(TopicAuthorizationFailedError):  # B's topic, and the operator's
        produce(oakfield, topics.school_events_from(f"urn-{RIVERSIDE}"), b"{}")
    with pytest.raises(TopicAuthorizationFailedError):
        produce(oakfield, topics.school_events, b"{}")
    own, as_riverside = event_from(OAKFIELD), event_from(RIVERSIDE)
    produce(oakfield, topics.school_events_from(f"urn-{OAKFIELD}"), json.dumps(own).encode())
    produce(oakfield, topics.school_events_from(f"urn-{OAKFIELD}"),
            json.dumps(as_riverside).encode())
    eventually(not_authorised_for(settings, as_riverside["event_id"]))
    [refused] = [d for d in dead_letters(settings)
                 if json.loads(d.original).get("event_id") == as_riverside["event_id"]]
    assert refused.problems[0].message == (
        f"school-{OAKFIELD} may not send events for URN {RIVERSIDE}")
    assert json.loads(refused.original) == as_riverside  # the original bytes, kept
    assert refused.source_topic == topics.school_events_from(f"urn-{OAKFIELD}")
    accepted = [json.loads(v)["event"]["event_id"] for v in read_all(
        client_options(settings), topics.accepted)]
    assert own["event_id"] in accepted and as_riverside["event_id"] not in accepted


def test_a_connector_speaks_only_for_the_settings_it_acts_for(
        services: RunningServices, settings: HubSettings) -> None:
    topics = settings.topics
    acme = as_user(settings, "connector-acme-mis")
    allowed, refused = event_from(OAKFIELD), event_from(RIVERSIDE)
    for event in (allowed, refused):
        produce(acme, topics.school_events_from("acme-mis"), json.dumps(event).encode())
    eventually(not_authorised_for(settings, refused["event_id"]))
    letter = next(d for d in dead_letters(settings)
                  if json.loads(d.original).get("event_id") == refused["event_id"])
    assert letter.problems[0].message == (
        f"connector-acme-mis may not send events for URN {RIVERSIDE} (it acts for {OAKFIELD})")

    def accepted() -> None:
        ids = [json.loads(v)["event"]["event_id"] for v in read_all(
            client_options(settings), topics.accepted)]
        assert allowed["event_id"] in ids
    eventually(accepted)
    with pytest.raises(TopicAuthorizationFailedError):  # a connector reads no inbox
        read_all(acme, topics.inbox(f"urn-{OAKFIELD}"))


def moved(settings: HubSettings, source: str, destination: dict[str, str]) -> str:
    """A pupil with an SEN concern at `source` who moves; returns the UPN."""
    upn = random_upn()
    who = pupil(upn, "Mo")
    at = {"urn": source, "system": "SIMS"}
    publish_lines(settings, [json.dumps(e).encode() for e in (
        school_event("concern_raised", pupil=who, source=at),
        school_event("pupil_moved", pupil=who, source=at, occurred_at="2025-12-01T09:30:00+00:00",
                     payload={"destination": destination, "move_kind": "in_year",
                              "effective_date": "2025-12-02"}))])
    return upn


def test_a_school_reads_only_its_own_inbox_and_answers_only_for_its_own_packets(
        services: RunningServices, settings: HubSettings, cli: CLI, tmp_path: Path) -> None:
    topics = settings.topics
    upn = moved(settings, OAKFIELD, {"kind": "school", "urn": RIVERSIDE})
    [packet] = eventually(lambda: _one(packets_for(settings, f"urn-{RIVERSIDE}", upn)))
    riverside = as_user(settings, f"school-{RIVERSIDE}")
    oakfield = as_user(settings, f"school-{OAKFIELD}")
    assert any(json.loads(v)["packet_id"] == str(packet.packet_id)
               for v in read_all(riverside, topics.inbox(f"urn-{RIVERSIDE}")))
    with pytest.raises(TopicAuthorizationFailedError):
        read_all(oakfield, topics.inbox(f"urn-{RIVERSIDE}"))
    # nor through the CLI, with each school's own token
    for school in (OAKFIELD, RIVERSIDE):
        (tmp_path / school).write_text(cli("principals", "add", "school", school, "--token"
                                           ).stdout.splitlines()[-1])
    as_oakfield = {"SENDHUB_TOKEN_FILE": str(tmp_path / OAKFIELD)}
    refused = cli("packet", str(packet.packet_id), "--reason", "x", check=False, **as_oakfield)
    assert refused.returncode == 4 and f"school-{OAKFIELD} may not read packet" in refused.stderr
    assert cli("inbox", f"urn-{RIVERSIDE}", "--reason", "x", check=False,
               **as_oakfield).returncode == 4
    cli("packet", str(packet.packet_id), "--reason", "admission",
        SENDHUB_TOKEN_FILE=str(tmp_path / RIVERSIDE))
    with pytest.raises(TopicAuthorizationFailedError):  # B's receipts topic
        produce(oakfield, topics.packet_receipts_from(f"urn-{RIVERSIDE}"), b"{}")
    claim = PacketReceiptV1(packet_id=packet.packet_id, receiver=f"urn-{RIVERSIDE}",
                            status="received", at=packet.generated_at)
    produce(oakfield, topics.packet_receipts_from(f"urn-{OAKFIELD}"),
            claim.model_dump_json().encode(), key=str(packet.packet_id).encode())

    def refused() -> None:
        letters = [d for d in dead_letters(settings) if d.reason == "not_authorised"
                   and d.source_topic == topics.packet_receipts_from(f"urn-{OAKFIELD}")]
        assert letters and str(packet.packet_id) in letters[0].problems[0].message
    eventually(refused)
    produce(riverside, topics.packet_receipts_from(f"urn-{RIVERSIDE}"),
            claim.model_dump_json().encode(), key=str(packet.packet_id).encode())

    def recorded() -> None:
        from services.transfers.application import TransfersApplication

        store = TransfersApplication.for_settings(settings)
        try:
            states = [d.delivery.state for d in store.deliveries(upn=upn)]
        finally:
            store.close()
        assert states and states[0] == "received", states
    eventually(recorded)


def _one(found: list[Any]) -> list[Any]:
    assert found, "no packet yet"
    return found


def test_each_local_authority_reads_only_its_own_lost_pupils(
        services: RunningServices, settings: HubSettings) -> None:
    topics = settings.topics
    upn = moved(settings, BROOK_LANE, {"kind": "unknown"})  # Brook Lane is in LA 803
    eventually(lambda: _one(packets_for(settings, "lost-pupils.la-803", upn)))
    la_803, la_801 = as_user(settings, "la-803"), as_user(settings, "la-801")
    assert any(json.loads(v)["pupil"]["upn"] == upn
               for v in read_all(la_803, topics.inbox("lost-pupils.la-803")))
    with pytest.raises(TopicAuthorizationFailedError):
        read_all(la_801, topics.inbox("lost-pupils.la-803"))
    assert not packets_for(settings, "lost-pupils.la-801", upn)


def test_a_post16_provider_reads_its_own_inbox_and_writes_only_receipts(
        services: RunningServices, settings: HubSettings) -> None:
    topics = settings.topics
    college = as_user(settings, f"post16-{AVON_VALLEY}")
    assert read_all(college, topics.inbox(f"ukprn-{AVON_VALLEY}")) == []  # its own: allowed
    with pytest.raises(TopicAuthorizationFailedError):
        read_all(college, topics.inbox(f"urn-{RIVERSIDE}"))
    with pytest.raises(TopicAuthorizationFailedError):  # it sends no school events
        produce(college, topics.school_events_from(f"ukprn-{AVON_VALLEY}"), b"{}")
    produce(college, topics.packet_receipts_from(f"ukprn-{AVON_VALLEY}"), b"not a receipt")


def test_services_hold_only_what_their_work_needs(
        services: RunningServices, settings: HubSettings) -> None:
    topics = settings.topics
    ingest = client_options(settings, "ingest")
    records = client_options(settings, "records")
    with pytest.raises(TopicAuthorizationFailedError):  # ingest reads no packets
        read_all(ingest, topics.inbox(f"urn-{RIVERSIDE}"))
    with pytest.raises(TopicAuthorizationFailedError):  # records writes no packets
        produce(records, topics.inbox(f"urn-{RIVERSIDE}"), b"{}")
    with pytest.raises(TopicAuthorizationFailedError):  # nor school events
        produce(records, topics.school_events, b"{}")


def test_a_revoked_school_can_no_longer_connect(
        services: RunningServices, settings: HubSettings, cli: CLI) -> None:
    cli("principals", "add", "school", "137003", "--kafka")
    hillcrest = as_user(settings, "school-137003")
    produce(hillcrest, settings.topics.school_events_from("urn-137003"),
            json.dumps(event_from("137003")).encode())
    cli("principals", "revoke", "school-137003")
    with pytest.raises(KafkaError):  # its SCRAM credentials are gone: no connection at all
        KafkaAdminClient(**hillcrest, request_timeout_ms=5000, bootstrap_timeout_ms=5000
                         ).list_topics()
    assert "school-137003" in cli("principals", "list").stdout


def test_no_secret_appears_in_any_service_log(services: RunningServices,
                                              settings: HubSettings) -> None:
    secrets = [p.read_text().strip() for p in settings.credentials_dir.glob(
        f"{settings.topic_namespace}*.password")]
    secrets.append((settings.credentials_dir / "operator.password").read_text().strip())
    assert len(secrets) > 4
    for log in services.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        leaked = [s[:4] + "..." for s in secrets if s in text]
        assert not leaked, f"{log.name} contains a password: {leaked}"
