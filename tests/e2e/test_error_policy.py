"""The one error policy on the real broker and database: a message that trips a fault
of the hub's own is dead-lettered as `internal_error` by the stage that failed, and
everything behind it still flows."""

from __future__ import annotations

import json

import pytest

from sendhub.publishing import publish_lines
from services.shared.settings import HubSettings
from tests.e2e.conftest import RunningServices, dead_letters, eventually, packets_for
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e


def test_a_message_the_hub_cannot_store_is_dead_lettered_as_its_fault_and_others_flow(
    services: RunningServices, settings: HubSettings,
) -> None:
    # A NUL character passes the inbound contract and records' store, but PostgreSQL's
    # jsonb in transfers refuses it: a fault of the hub's, not of the sender's.
    nul, canary = random_upn(), random_upn()
    poisoned = school_event(pupil=pupil(nul, "Nia"), payload={
        "raised_by": "teacher", "areas_of_need": ["SLCN"], "summary": "Speech \u0000 delay"})
    move = {"destination": {"kind": "school", "urn": "131004"}, "move_kind": "in_year",
            "effective_date": "2025-11-03"}
    events = [poisoned, school_event("pupil_moved", pupil=pupil(canary, "Cal"), payload=move)]
    publish_lines(settings, [json.dumps(e).encode() for e in events])

    def internal_error() -> None:
        letters = [d for d in dead_letters(settings) if nul.encode() in d.original]
        assert letters, "no dead letter yet"
        for letter in letters:  # at-least-once: the relay may have sent it twice
            assert (letter.reason, letter.service, letter.source_topic) == (
                "internal_error", "transfers", settings.topics.pupil_history)
            assert "hub's fault, not the sender's" in letter.problems[0].message

    eventually(internal_error)
    # The pupil behind it, on any partition, still gets a packet.
    assert eventually(lambda: packets_for(settings, "urn-131004", canary))
