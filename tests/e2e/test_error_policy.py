"""The one error policy on the real broker and database: a message that trips a fault
of the hub's own is dead-lettered as `internal_error` by the stage that failed, and
everything behind it still flows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contracts.history import PupilHistoryEventV1
from contracts.school_events import SCHOOL_EVENT
from sendhub.publishing import publish_lines
from services.shared.settings import HubSettings
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e


def test_a_message_the_hub_cannot_store_is_dead_lettered_as_its_fault_and_others_flow(
    services: RunningServices, settings: HubSettings,
) -> None:
    # A history message that passes the contract but that transfers' store cannot hold
    # (a version beyond PostgreSQL's integer): a fault of the hub's, as if records had a
    # bug, not of any school's.
    odd, canary = random_upn(), random_upn()
    broken = PupilHistoryEventV1(
        pupil_id=uuid4(), upn=odd, version=3_000_000_000, notification_id=1,
        recorded_at=datetime.now(UTC), upn_is_temporary=False,
        event=SCHOOL_EVENT.validate_python(school_event(pupil=pupil(odd, "Nia"))))
    publish_lines(settings, [broken.model_dump_json().encode()],
                  topic=settings.topics.pupil_history)
    move = {"destination": {"kind": "school", "urn": "131004"}, "move_kind": "in_year",
            "effective_date": "2025-11-03"}
    publish_lines(settings, [json.dumps(school_event("pupil_moved", pupil=pupil(canary, "Cal"),
                                                     payload=move)).encode()])

    def internal_error() -> None:
        letters = [d for d in dead_letters(settings) if odd.encode() in d.original]
        assert letters, "no dead letter yet"
        for letter in letters:  # at-least-once: it may have been set aside twice
            assert (letter.reason, letter.service, letter.source_topic) == (
                "internal_error", "transfers", settings.topics.pupil_history)
            assert "hub's fault, not the sender's" in letter.problems[0].message

    eventually(internal_error)
    # The pupil behind it still gets a packet.
    def canary_delivered() -> None:
        assert packets_for(settings, "urn-131004", canary), "no packet for the canary yet"

    eventually(canary_delivered)
