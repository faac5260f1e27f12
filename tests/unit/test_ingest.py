"""Ingest's screening (pure) and its faststream wiring (in-memory TestKafkaBroker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.dead_letter import DeadLetterV1
from services.ingest.application import screen_school_event
from services.ingest.entrypoint import build_broker
from services.shared.errors import MessageRefused
from services.shared.settings import HubSettings
from tests.factories import school_event

POSITION = Position(topic="sen.school-events.v1", partition=2, offset=41)
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def screen(raw: bytes | None, max_bytes: int = 10_000) -> AcceptedSchoolEventV1 | MessageRefused:
    try:
        return screen_school_event(raw, position=POSITION, now=NOW, max_bytes=max_bytes)
    except MessageRefused as refused:
        return refused


@pytest.mark.parametrize(
    ("raw", "reason", "message"),
    [
        (b"", "empty", "the message has no content"),
        (None, "empty", "the message has no content"),
        (b"\xff\xfe{}", "not_utf8", "invalid byte at 0"),
        (b"{not json", "not_json", "line 1, column 2"),
        (b"x" * 10_001, "too_large", "10001 bytes is over the limit of 10000"),
        (b"[]", "schema_invalid", "Input should be an object"),
    ],
)
def test_unusable_messages_are_refused_with_a_reason(
    raw: bytes | None, reason: str, message: str
) -> None:
    result = screen(raw)
    assert isinstance(result, MessageRefused)
    assert result.reason == reason
    assert message in " ".join(p.path + " " + p.message for p in result.problems)


def test_a_valid_event_is_accepted_with_where_it_came_from() -> None:
    result = screen(json.dumps(school_event()).encode())
    assert isinstance(result, AcceptedSchoolEventV1)
    assert result.received_from == POSITION
    assert result.upn_is_temporary is False
    assert result.event.pupil.upn == "H801200001001"


async def test_ingest_routes_valid_events_to_accepted_and_bad_ones_to_rejected() -> None:
    settings = HubSettings(topic_namespace="unit.", kafka_security_protocol="PLAINTEXT")
    broker = build_broker(settings)
    accepted: list[bytes] = []
    rejected: list[bytes] = []

    @broker.subscriber(settings.topics.accepted)
    async def on_accepted(message: KafkaMessage) -> None:
        accepted.append(message.body)

    @broker.subscriber(settings.topics.rejected)
    async def on_rejected(message: KafkaMessage) -> None:
        rejected.append(message.body)

    async with TestKafkaBroker(broker) as test_broker:
        event = school_event()
        await test_broker.publish(json.dumps(event).encode(), topic=settings.topics.school_events,
                                  key=b"H801200001001")
        await test_broker.publish(b"\x00garbage", topic=settings.topics.school_events, key=b"k")

    assert len(accepted) == 1 and len(rejected) == 1
    assert str(AcceptedSchoolEventV1.model_validate_json(accepted[0]).event.event_id) == (
        event["event_id"]
    )
    letter = DeadLetterV1.model_validate_json(rejected[0])
    assert letter.reason == "not_json"
    assert letter.original == b"\x00garbage"
    assert letter.source_topic == settings.topics.school_events
    assert letter.key == "k"
