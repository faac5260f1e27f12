"""Two instances of every service publish each packet and history event once (issue
10's finding 5), and a crashed instance restarted with its instance id takes its
partitions back at once (finding 6)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from contracts.history import PupilHistoryEventV1
from sendhub.publishing import publish_lines
from sendhub.topics_reader import read_topic
from services.shared.settings import HubSettings
from tests.e2e.conftest import RunningServices, eventually, inbox
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

RECEIVER = "urn-136006"


def pupils_moving(upns: list[str]) -> list[bytes]:
    lines = []
    for upn in upns:
        lines.append(json.dumps(school_event(pupil=pupil(upn, "Sam"))).encode())
        lines.append(json.dumps(school_event("pupil_moved", pupil=pupil(upn, "Sam"), payload={
            "destination": {"kind": "school", "urn": "136006"}, "move_kind": "in_year",
            "effective_date": "2025-11-03"})).encode())
    return lines


def history_of(settings: HubSettings, upns: set[str]) -> Counter[tuple[str, int]]:
    found: Counter[tuple[str, int]] = Counter()
    for r in read_topic(settings, settings.topics.pupil_history):
        h = PupilHistoryEventV1.model_validate_json(r.value, context={"trusted": True})
        if h.upn in upns:
            found[(h.upn, h.version)] += 1
    return found


def test_two_instances_of_each_service_publish_every_packet_once(
    services: RunningServices, settings: HubSettings,
) -> None:
    extra = [services.start(name, instance=2) for name in ("ingest", "records", "transfers")]
    try:
        upns = [random_upn() for _ in range(60)]
        publish_lines(settings, pupils_moving(upns))

        def all_delivered() -> Counter[str]:
            sent = Counter(str(p.packet_id) for p, _ in inbox(settings, RECEIVER)
                           if p.pupil.upn in upns)
            assert len(sent) == len(upns), f"{len(sent)} of {len(upns)} packets so far"
            return sent

        sent = eventually(all_delivered, seconds=90)
        time.sleep(2)  # a second publisher, if there were one, would have caught up
        sent = all_delivered()
        assert [n for n in sent.values() if n > 1] == []
        relayed = history_of(settings, set(upns))
        assert len(relayed) == 2 * len(upns)
        assert [k for k, n in relayed.items() if n > 1] == []
    finally:
        for name in extra:
            services.stop(name)


def test_a_consumer_killed_and_restarted_takes_its_partitions_back_at_once(
    services: RunningServices, settings: HubSettings,
) -> None:
    services.kill("records")
    services.start("records")
    restarted = time.monotonic()
    upn = random_upn()
    publish_lines(settings, pupils_moving([upn])[:1])

    def relayed() -> float:
        assert history_of(settings, {upn}), "not relayed yet"
        return time.monotonic() - restarted

    # Static membership: no wait for the dead member's session to time out (6 s).
    assert eventually(relayed, seconds=30) < 5.0
