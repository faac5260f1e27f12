"""The erasure's topic rewrite on the real broker: the pupil's records go, everyone
else's stay exactly once, in their order, and a purge that stopped after copying is
finished without copying twice."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from sendhub.topic_purge import COPIED_FROM_HEADER, purge
from sendhub.topics_reader import read_topic
from services.shared.kafka import client_options, ensure_topics
from services.shared.settings import HubSettings

pytestmark = pytest.mark.integration


def a_topic(settings: HubSettings, values: list[bytes],
            headers: list[list[tuple[str, bytes]]] | None = None) -> str:
    topic = settings.topics.inbox(f"purge-{uuid.uuid4().hex[:8]}")
    ensure_topics(settings.model_copy(update={"topic_partitions": 1}), [topic])
    producer = KafkaProducer(**client_options(settings), acks="all")
    for n, value in enumerate(values):
        producer.send(topic, value=value, key=b"k", partition=0,
                      headers=(headers[n] if headers else []))
    producer.flush()
    producer.close()
    return topic


def values_of(settings: HubSettings, topic: str) -> list[bytes]:
    return [r.value for r in read_topic(settings, topic)]


def test_the_pupils_records_go_and_the_others_stay_once_in_order(settings: HubSettings) -> None:
    topic = a_topic(settings, [b"a X801000000001", b"b", b"c X801000000001 again", b"d"])
    report = purge(settings, ["X801000000001"])
    assert values_of(settings, topic) == [b"b", b"d"]
    assert report.removed[topic] == 2 and report.copied[topic] == 2
    assert purge(settings, ["X801000000001"]).removed.get(topic) is None  # nothing left


def test_a_purge_that_stopped_after_copying_is_finished_without_copying_twice(
        settings: HubSettings) -> None:
    # As a purge leaves a partition when it stopped between copying and deleting: the
    # originals (offsets 0 to 2) and the copies of the two survivors (offsets 3, 4).
    copied = [[], [], [], [(COPIED_FROM_HEADER, b"0:1")], [(COPIED_FROM_HEADER, b"0:2")]]
    topic = a_topic(settings, [b"Y801000000002", b"b", b"c", b"b", b"c"], copied)
    purge(settings, ["Y801000000002"])
    assert values_of(settings, topic) == [b"b", b"c"]
