"""The local authority as an actor, on the real broker and database with the services
running (issue 13): an LA's EHC sequence sent on its own topic, a plan that follows the
pupil into another LA (both LAs' inboxes), a possible child missing education in the
right LA's inbox only, and an LA speaking for another LA dead-lettered.

The LAs are principals with their own Kafka users (`sendhub principals add la CODE
--kafka`), so the broker's ACLs are the ones an LA really holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAuthorizationFailedError

from contracts.packet import TransferPacketV1
from contracts.receipts import PacketReceiptV1
from sendhub.principals_admin import kafka_user
from sendhub.publishing import publish_lines
from services.shared.access import Principal
from services.shared.kafka import client_options
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import la_event, pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

OAKFIELD, RIVERSIDE, BROOK_LANE = "131001", "131002", "131005"  # LA 801, 801, 803
INBOXES = ("urn-131001", "urn-131002", "urn-131005", "la-801", "la-803",
           "lost-pupils.la-801", "lost-pupils.la-803")


@pytest.fixture(scope="module", autouse=True)
def local_authorities(cli: CLI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The registry sample (LA 801's and LA 803's schools) and both LAs with Kafka
    credentials and a token each; returns each LA's token file."""
    cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))
    tokens = {}
    for code in ("801", "803"):
        issued = cli("principals", "add", "la", code, "--kafka", "--token")
        tokens[code] = tmp_path_factory.mktemp(f"la-{code}") / "token"
        tokens[code].write_text(issued.stdout.splitlines()[-1])
    return tokens


def as_la(settings: HubSettings, code: str) -> dict[str, Any]:
    """kafka-python options for the LA's own Kafka user."""
    user = kafka_user(settings, Principal.parse(f"la-{code}"))
    return client_options(settings.model_copy(update={"kafka_username": user}))


def produce(options: dict[str, Any], topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    """Each (key, value) on `topic`, in order, acknowledged by every replica."""
    producer = KafkaProducer(**options, acks="all", max_block_ms=15_000)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value).get(timeout=15)
    finally:
        producer.close(timeout=5)


def read_as(options: dict[str, Any], topic: str) -> list[TransferPacketV1]:
    """Every packet on an inbox topic, read with the given principal's credentials."""
    consumer = KafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=1500)
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[TransferPacketV1] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                found += [TransferPacketV1.model_validate_json(r.value) for r in records]
        return found
    finally:
        consumer.close()


def la_sends(settings: HubSettings, code: str, *events: dict[str, Any]) -> None:
    """The LA's case-management system sends on the LA's own topic, keyed by UPN."""
    produce(as_la(settings, code), settings.topics.school_events_from(f"la-{code}"),
            [(e["pupil"]["upn"].encode(), json.dumps(e).encode()) for e in events])


def school_sends(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def projected(settings: HubSettings, upn: str, count: int) -> None:
    """Transfers holds `count` history events of the pupil (the LA's topic and the
    schools' are read independently, so the move waits until the plan is in)."""
    store = TransfersApplication.for_settings(settings)
    try:
        assert len(store.history_of(upn)) == count, "not all projected yet"
    finally:
        store.close()


def stored_packets(settings: HubSettings, upn: str) -> list[tuple[str, str]]:
    """(receiver, kind) of every packet transfers built for the pupil."""
    store = TransfersApplication.for_settings(settings)
    try:
        return sorted((d.receiver, d.kind) for d in store.deliveries(upn=upn))
    finally:
        store.close()


def on(day: str) -> str:
    return f"{day}T10:00:00+00:00"


def ehc_sequence(who: dict[str, str], la: str = "801", named: str = OAKFIELD
                 ) -> list[dict[str, Any]]:
    """An LA's full EHC sequence for one pupil: the request, both decisions, the plan,
    its annual review."""
    return [
        la_event("ehc_request_received", la=la, pupil=who, occurred_at=on("2025-01-13"),
                 payload={"requesting_urn": named}),
        la_event("ehc_assessment_decision", la=la, pupil=who, occurred_at=on("2025-02-17")),
        la_event("ehc_plan_decision", la=la, pupil=who, occurred_at=on("2025-04-28")),
        la_event("ehc_plan_issued", la=la, pupil=who, occurred_at=on("2025-05-26"),
                 payload={"maintaining_la": la, "named_setting_urn": named}),
        la_event("ehc_annual_review", la=la, pupil=who, occurred_at=on("2026-05-11")),
    ]


def moves(who: dict[str, str], source: str, to: dict[str, str], effective: str = "2026-06-08"
          ) -> dict[str, Any]:
    return school_event("pupil_moved", pupil=who, source={"urn": source, "system": "SIMS"},
                        occurred_at=on("2026-06-01"),
                        payload={"destination": to, "move_kind": "in_year",
                                 "effective_date": effective})


def only(settings: HubSettings, receiver: str, upn: str) -> TransferPacketV1:
    def check() -> TransferPacketV1:
        found = {p.packet_id: p for p in packets_for(settings, receiver, upn)}
        assert len(found) == 1, f"{len(found)} packet(s) for the pupil in {receiver} so far"
        return next(iter(found.values()))
    packet: TransferPacketV1 = eventually(check)
    return packet


def nowhere_else(settings: HubSettings, upn: str, *receivers: str) -> None:
    """No other inbox holds a packet for the pupil."""
    for receiver in INBOXES:
        if receiver not in receivers:
            assert packets_for(settings, receiver, upn) == [], f"{receiver} has the pupil"


def test_an_las_ehc_sequence_makes_the_plan_the_next_school_sees_and_no_la_notice_in_its_area(
        services: RunningServices, settings: HubSettings) -> None:
    upn = random_upn()
    ada = pupil(upn, "Ada")
    school_sends(settings, school_event(pupil=ada, source={"urn": OAKFIELD, "system": "SIMS"},
                                        occurred_at=on("2024-11-04")))
    la_sends(settings, "801", *ehc_sequence(ada))
    eventually(lambda: projected(settings, upn, 6))
    school_sends(settings, moves(ada, OAKFIELD, {"kind": "school", "urn": RIVERSIDE}))
    packet = only(settings, f"urn-{RIVERSIDE}", upn)
    plan = packet.ehc_plan
    assert packet.sen_status == "ehc_plan" and packet.la_notice is None
    assert plan is not None and plan.confirmed_by_la
    assert (plan.maintaining_la, plan.maintaining_la_name) == ("801", "Bristol, City of")
    assert (plan.issued_on, plan.last_reviewed_on, plan.next_annual_review_due) == (
        date(2025, 5, 26), date(2026, 5, 11), date(2027, 5, 11))
    assert plan.case_officer and plan.case_officer.work_email == "ehc.team@bristol.example.gov.uk"
    assert [n.code.value for n in packet.current_needs] == ["ASD", "SLCN"]
    assert sum(t.setting_urn == "la-801" for t in packet.timeline) == 5
    # Within LA 801: the plan stays where it is, no LA is sent a notice.
    assert stored_packets(settings, upn) == [(f"urn-{RIVERSIDE}", "first")]
    nowhere_else(settings, upn, f"urn-{RIVERSIDE}")


def test_a_plan_follows_the_pupil_into_another_la_and_both_las_have_the_notice(
        services: RunningServices, settings: HubSettings, cli: CLI,
        local_authorities: dict[str, Path]) -> None:
    upn = random_upn()
    ben = pupil(upn, "Ben")
    la_sends(settings, "801", *ehc_sequence(ben))
    eventually(lambda: projected(settings, upn, 5))
    school_sends(settings, moves(ben, OAKFIELD, {"kind": "school", "urn": BROOK_LANE}))
    setting = only(settings, f"urn-{BROOK_LANE}", upn)
    into = only(settings, "la-803", upn)
    out_of = only(settings, "la-801", upn)
    assert setting.la_notice is None and setting.ehc_plan and setting.ehc_plan.confirmed_by_la
    assert (into.la_notice, into.addressed_to) == ("ehc_plan_transfer_in", "la-803")
    assert (out_of.la_notice, out_of.addressed_to) == ("ehc_plan_transfer_out", "la-801")
    assert into.ehc_plan == setting.ehc_plan and into.to_setting.name == "Brook Lane Infant School"
    assert into.ehc_plan and into.ehc_plan.maintaining_la == "801"
    assert [(c.rule, c.due_on.isoformat(), c.la_code) for c in into.clocks_now_running] == [
        ("ehc_transfer_tell_parent_6_weeks", "2026-07-20", "803"),
        ("ehc_transfer_review_12_months_or_3_months", "2027-05-11", "803")]
    assert out_of.clocks_now_running == into.clocks_now_running
    assert len({setting.packet_id, into.packet_id, out_of.packet_id}) == 3
    nowhere_else(settings, upn, f"urn-{BROOK_LANE}", "la-803", "la-801")
    assert stored_packets(settings, upn) == [
        ("la-801", "la_notice"), ("la-803", "la_notice"), (f"urn-{BROOK_LANE}", "first")]

    # Each LA reads its own inbox with its own Kafka user, and not the other's.
    topics = settings.topics
    assert into.packet_id in {p.packet_id for p in read_as(as_la(settings, "803"),
                                                           topics.inbox("la-803"))}
    with pytest.raises(TopicAuthorizationFailedError):
        read_as(as_la(settings, "803"), topics.inbox("la-801"))
    # The CLI shows LA 801 both its inboxes, and LA 803's notice is not LA 801's to read.
    as_801 = {"SENDHUB_TOKEN_FILE": str(local_authorities["801"])}
    listing = cli("inbox", "--format", "json", "--reason", "EHC plan transfer", **as_801)
    read = {json.loads(line)["packet_id"] for line in listing.stdout.splitlines()}
    assert str(out_of.packet_id) in read and str(into.packet_id) not in read
    refused = cli("packet", str(into.packet_id), "--reason", "x", check=False, **as_801)
    assert refused.returncode == 4
    page = cli("packet", str(into.packet_id), "--format", "html", "--reason", "taking over",
               SENDHUB_TOKEN_FILE=str(local_authorities["803"])).stdout
    assert "EHC plan transfer: a plan moves into your care" in page and "20 July 2026" in page

    # LA 803 acknowledges its notice on its own receipts topic.
    receipt = PacketReceiptV1(packet_id=into.packet_id, receiver="la-803", status="received",
                              at=into.generated_at)
    produce(as_la(settings, "803"), topics.packet_receipts_from("la-803"),
            [(str(into.packet_id).encode(), receipt.model_dump_json().encode())])

    def received() -> None:
        store = TransfersApplication.for_settings(settings)
        try:
            states = {d.receiver: d.delivery.state for d in store.deliveries(upn=upn)}
        finally:
            store.close()
        assert states["la-803"] == "received", states
    eventually(received)


def test_a_pupil_gone_to_an_unknown_destination_is_the_leaving_schools_las_cme_notice_only(
        services: RunningServices, settings: HubSettings) -> None:
    upn = random_upn()
    cara = pupil(upn, "Cara")
    brook = {"urn": BROOK_LANE, "system": "Arbor"}  # in LA 803
    school_sends(settings, school_event(pupil=cara, source=brook, occurred_at=on("2025-09-15")),
                 moves(cara, BROOK_LANE, {"kind": "unknown"}))
    lost = only(settings, "lost-pupils.la-803", upn)
    assert lost.la_notice == "children_missing_education" and lost.to_setting.kind == "unknown"
    assert lost.from_setting.la_code == "803"
    assert stored_packets(settings, upn) == [("lost-pupils", "first")]
    nowhere_else(settings, upn, "lost-pupils.la-803")
    assert lost.packet_id in {p.packet_id for p in read_as(
        as_la(settings, "803"), settings.topics.inbox("lost-pupils.la-803"))}
    with pytest.raises(TopicAuthorizationFailedError):
        read_as(as_la(settings, "801"), settings.topics.inbox("lost-pupils.la-803"))


def test_an_la_sending_an_event_for_another_la_is_dead_lettered_not_authorised(
        services: RunningServices, settings: HubSettings) -> None:
    upn = random_upn()
    for_803 = la_event("ehc_request_received", la="803", pupil=pupil(upn, "Dev"))
    la_sends(settings, "801", for_803)

    def refused() -> None:
        found = [d for d in dead_letters(settings) if d.reason == "not_authorised"
                 and json.loads(d.original).get("event_id") == for_803["event_id"]]
        assert found, "no not_authorised dead letter yet"
        assert found[0].service == "ingest"
        assert found[0].source_topic == settings.topics.school_events_from("la-801")
        assert [(p.path, p.message) for p in found[0].problems] == [
            ("source.la", "la-801 may not send events for LA 803")]
        assert json.loads(found[0].original) == for_803  # the original bytes, kept
    eventually(refused)
    with pytest.raises(TopicAuthorizationFailedError):  # nor may it write LA 803's topic
        produce(as_la(settings, "801"), settings.topics.school_events_from("la-803"),
                [(upn.encode(), json.dumps(for_803).encode())])
