"""One bad message must never stop the hub (issue 10's findings 1-4 and 7), on the real
broker and database: each hostile message is dead-lettered with its bytes, and a
canary behind it, on the same partition, still becomes a packet."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka import KafkaProducer

from contracts.dead_letter import DeadLetterV1
from services.shared.kafka import client_options
from services.shared.settings import HubSettings
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

RECEIVER = {"kind": "school", "urn": "135005"}


def send(settings: HubSettings, topic: str, messages: list[tuple[bytes, bytes, list[Any]]]
         ) -> None:
    """(key, value, headers) as a school system's client would publish them."""
    producer = KafkaProducer(**client_options(settings), acks="all",
                             max_request_size=8 * 1024 * 1024)
    try:
        for key, value, headers in messages:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush(30)
    finally:
        producer.close()


def canary(upn: str) -> bytes:
    return json.dumps(school_event("pupil_moved", pupil=pupil(upn, "Canary"), payload={
        "destination": RECEIVER, "move_kind": "in_year", "effective_date": "2025-11-03"})
    ).encode()


def letter_for(settings: HubSettings, original: bytes, topic: str | None = None
               ) -> DeadLetterV1:
    found = [d for d in dead_letters(settings) if d.original == original
             and d.source_topic == (topic or settings.topics.school_events)]
    assert found, "not dead-lettered yet"
    return found[0]


def canaries_delivered(settings: HubSettings, upns: list[str]) -> None:
    for upn in upns:
        assert packets_for(settings, "urn-135005", upn), f"no packet yet for canary {upn}"


def test_poison_messages_are_dead_lettered_and_the_partition_moves_on(
    services: RunningServices, settings: HubSettings,
) -> None:
    valid = json.dumps(school_event()).encode()
    poisons: list[tuple[bytes, list[Any], str]] = [
        (b"[" * 100_000 + b"]" * 100_000, [], "not_json"),
        (valid.replace(b'"schema_version": 1', b'"schema_version": 1' + b"0" * 5000), [],
         "not_json"),
        (b"<CTF/>", [("content-type", b"application/json")], "not_json"),
        (valid, [("content-type", b"\xff\xfe not utf-8")], "accepted"),
    ]
    nul = school_event(payload={"raised_by": "teacher", "areas_of_need": ["SLCN"],
                                "summary": "Speech \u0000 delay"})
    poisons.append((json.dumps(nul).encode(), [], "schema_invalid"))
    canaries = [random_upn() for _ in poisons]
    messages = []
    for (value, headers, _), upn in zip(poisons, canaries, strict=True):
        messages += [(upn.encode(), value, headers), (upn.encode(), canary(upn), [])]
    send(settings, settings.topics.school_events, messages)

    eventually(lambda: canaries_delivered(settings, canaries), seconds=90)
    for value, _, reason in poisons:
        if reason == "accepted":
            continue  # a header that is not UTF-8 does not spoil a valid event
        letter = eventually(lambda v=value: letter_for(settings, v))
        assert (letter.reason, letter.service) == (reason, "ingest")
    nul_letter = letter_for(settings, poisons[-1][0])
    assert "summary holds a NUL character" in nul_letter.problems[0].message


def test_a_poison_receipt_does_not_stop_the_receipts_that_follow(
    services: RunningServices, settings: HubSettings,
) -> None:
    upn = random_upn()
    send(settings, settings.topics.school_events, [(upn.encode(), canary(upn), [])])
    (packet,) = eventually(lambda: packets_for(settings, "urn-135005", upn) or _fail())
    poison = b"[" * 100_000 + b"]" * 100_000
    receipt = json.dumps({"packet_id": str(packet.packet_id), "receiver": "urn-135005",
                          "status": "received", "at": "2026-01-05T09:00:00+00:00"}).encode()
    key = str(packet.packet_id).encode()
    send(settings, settings.topics.packet_receipts, [(key, poison, []), (key, receipt, [])])
    letter = eventually(lambda: letter_for(settings, poison, settings.topics.packet_receipts))
    assert (letter.reason, letter.service) == ("schema_invalid", "transfers")

    def received() -> None:
        from services.transfers.application import TransfersApplication

        store = TransfersApplication.for_settings(settings)
        try:
            states = [e.state for e in store.delivery_events(packet.packet_id)]
        finally:
            store.close()
        assert "received" in states, states

    eventually(received)


def _fail() -> Any:
    raise AssertionError("not there yet")


@pytest.mark.parametrize("urn", ["١٠٠٠٠٢", "100002\n", "１００００１"])
def test_identifiers_outside_ascii_digits_are_refused_at_the_edge(
    services: RunningServices, settings: HubSettings, urn: str,
) -> None:
    upn, behind = random_upn(), random_upn()
    move = school_event("pupil_moved", pupil=pupil(upn, "Ida"), payload={
        "destination": {"kind": "school", "urn": urn}, "move_kind": "in_year",
        "effective_date": "2025-11-03"})
    value = json.dumps(move).encode()
    send(settings, settings.topics.school_events,
         [(upn.encode(), value, []), (behind.encode(), canary(behind), [])])
    letter = eventually(lambda: letter_for(settings, value))
    assert letter.reason == "schema_invalid"
    assert [(p.path, p.message) for p in letter.problems] == [
        ("payload.destination.urn", "a URN is exactly 6 digits")]
    eventually(lambda: canaries_delivered(settings, [behind]))


def test_a_packet_too_large_for_one_message_is_sent_condensed_and_others_once(
    services: RunningServices, settings: HubSettings,
) -> None:
    big, other = random_upn(), random_upn()
    concerns = [school_event(pupil=pupil(big, "Bea"), occurred_at=f"2025-0{1 + n % 9}-"
                             f"{1 + n % 28:02d}T09:00:00+00:00", payload={
                                 "raised_by": "teacher", "areas_of_need": ["SEMH"],
                                 "summary": f"Observation {n}: " + "x" * 9_900})
                for n in range(100)]  # 100 open concerns of 10 KB: about 1 MB of packet
    messages = [(big.encode(), json.dumps(c).encode(), []) for c in concerns]
    messages += [(big.encode(), canary(big), []), (other.encode(), canary(other), [])]
    send(settings, settings.topics.school_events, messages)

    eventually(lambda: canaries_delivered(settings, [big, other]), seconds=90)
    (packet,) = packets_for(settings, "urn-135005", big)
    assert packet.condensed and "100 text(s) longer than 1,000 characters" in packet.condensed
    assert len(packet.concerns_open) == 100
    assert all(c.summary.endswith("the full text is in the hub's records]")
               for c in packet.concerns_open)
    assert len(packets_for(settings, "urn-135005", other)) == 1  # published once


def test_an_event_id_reused_for_other_content_is_dead_lettered_with_both_digests(
    services: RunningServices, settings: HubSettings,
) -> None:
    upn = random_upn()
    first = school_event(pupil=pupil(upn, "Eli"))
    correction = {**first, "payload": {**first["payload"], "summary": "Corrected summary."}}
    values = [json.dumps(first).encode(), json.dumps(correction).encode()]
    send(settings, settings.topics.school_events, [(upn.encode(), v, []) for v in values])

    def conflict() -> DeadLetterV1:
        found = [d for d in dead_letters(settings) if d.reason == "event_id_conflict"
                 and upn.encode() in d.original]
        assert found, "no event_id_conflict yet"
        return found[0]

    letter = eventually(conflict)
    assert letter.service == "records"
    assert "stored content SHA-256" in letter.problems[0].message
    assert first["event_id"] in letter.problems[0].message
