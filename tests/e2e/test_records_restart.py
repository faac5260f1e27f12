"""Records killed in the middle of a stream: no history event lost, none doubled."""

from __future__ import annotations

import json
from collections import Counter

import psycopg
import pytest

from contracts.history import PupilHistoryEventV1
from sendhub.publishing import publish_lines
from sendhub.topics_reader import read_topic
from services.records.application import RecordsApplication
from services.shared.settings import HubSettings
from tests.e2e.conftest import RunningServices
from tests.e2e.test_whole_flow import eventually
from tests.factories import random_upn, school_event

pytestmark = pytest.mark.e2e

PUPILS, EVENTS_EACH = 30, 10


def stream(upns: list[str]) -> list[bytes]:
    lines = []
    for n in range(EVENTS_EACH):
        for upn in upns:
            event = school_event(pupil={"upn": upn, "given_name": "P", "family_name": "Q",
                                        "date_of_birth": "2015-01-01"},
                                 occurred_at=f"2025-01-{n + 1:02d}T09:00:00+00:00")
            lines.append(json.dumps(event).encode())
    return lines


def test_killing_records_mid_stream_loses_and_doubles_nothing(
    services: RunningServices, settings: HubSettings
) -> None:
    upns = [random_upn() for _ in range(PUPILS)]
    lines = stream(upns)
    half = len(lines) // 2
    records = RecordsApplication(env=settings.eventsourcing_env())

    # First half in; kill the service as soon as it has started storing them.
    publish_lines(settings, lines[:half])

    def some_stored() -> None:
        assert any(records.history_events(u) for u in upns)

    eventually(some_stored, seconds=30)
    services.kill("records")
    stored_at_kill = sum(len(records.history_events(u)) for u in upns)
    assert stored_at_kill < len(lines)

    # Second half arrives while it is down; then it comes back.
    publish_lines(settings, lines[half:])
    services.start("records")

    def all_stored() -> None:
        counts = [len(records.history_events(u)) for u in upns]
        assert sum(counts) >= len(lines), f"{sum(counts)} of {len(lines)}"

    eventually(all_stored, seconds=90)
    for upn in upns:
        history = records.history_events(upn)
        assert [e.originator_version for e in history] == list(range(1, EVENTS_EACH + 1))
        assert len({e.event_id for e in history}) == EVENTS_EACH

    # The relay put every stored event on sen.pupil-history.v1 (repeats allowed, gaps not),
    # and transfers' projection holds each exactly once.
    def relayed() -> None:
        seen = Counter()
        for r in read_topic(settings, settings.topics.pupil_history):
            h = PupilHistoryEventV1.model_validate_json(r.value, context={"trusted": True})
            if h.upn in upns:
                seen[(h.upn, h.version)] += 1
        assert set(seen) == {(u, v) for u in upns for v in range(1, EVENTS_EACH + 1)}

    eventually(relayed, seconds=60)

    def projected() -> None:
        with psycopg.connect(settings.database_conninfo) as conn:
            rows = conn.execute(
                "SELECT upn, count(*), min(version), max(version) FROM transfers_history "
                "WHERE upn = ANY(%s) GROUP BY upn", (upns,)).fetchall()
        assert sorted(rows) == sorted((u, EVENTS_EACH, 1, EVENTS_EACH) for u in upns)

    eventually(projected, seconds=60)
