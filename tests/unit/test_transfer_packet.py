"""Building the transfer packet from a pupil's history as it stood at the move."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.school_events import SCHOOL_EVENT
from services.shared.sen_record import HistoryEntry
from services.transfers.packets import NO_HISTORY_STATEMENT, NotAMove, build_transfer_packet
from tests.factories import school_event

GENERATED = datetime(2026, 1, 5, tzinfo=UTC)


def history(*events: dict[str, Any]) -> list[HistoryEntry]:
    return [
        HistoryEntry(upn="H801200001001", version=i, recorded_at=GENERATED,
                            upn_is_temporary=False, event=SCHOOL_EVENT.validate_python(e))
        for i, e in enumerate(events, start=1)
    ]


def test_a_pupil_with_no_sen_history_gets_a_packet_that_says_so() -> None:
    packet = build_transfer_packet(history(school_event("pupil_moved")), 1, GENERATED)
    assert packet.has_sen_history is False
    assert packet.sen_status == "none"
    assert packet.sen_history_statement == NO_HISTORY_STATEMENT
    assert packet.to_setting.receiver == "urn-100002"
    assert [t.event_type for t in packet.timeline] == ["pupil_moved"]


def test_packet_carries_status_needs_plan_views_and_open_concerns_at_the_move() -> None:
    events = history(
        school_event(occurred_at="2024-10-01T09:00:00+01:00"),  # SPLD concern
        school_event("concern_raised", occurred_at="2025-01-10T09:00:00+00:00",
                     payload={"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
                              "summary": "Anxious before school."}),
        school_event("assessment_completed", occurred_at="2024-11-01T09:00:00+00:00"),
        school_event("plan_reviewed", occurred_at="2025-02-01T09:00:00+00:00"),
        school_event("pupil_moved", occurred_at="2025-03-01T09:00:00+00:00"),
        school_event("plan_reviewed", occurred_at="2025-03-02T09:00:00+00:00"),  # after the move
    )
    packet = build_transfer_packet(events, 5, GENERATED)
    assert packet.sen_status == "sen_support"
    assert [(n.code, n.rank) for n in packet.current_needs] == [("SPLD", 1)]
    # The SPLD concern was answered by the later assessment; the SEMH one never was.
    assert [c.areas_of_need for c in packet.concerns_open] == [["SEMH"]]
    assert packet.plans.current is not None
    assert packet.plans.current.provision[0].description == "Phonics 1:1"
    [review] = packet.plans.reviews
    assert review.parent_carer_views == "Happier at home." and review.pupil_views is None
    assert packet.history_version == 5
    assert [t.history_version for t in packet.timeline] == [1, 3, 2, 4, 5]  # by occurrence


def test_an_ehc_plan_issued_sets_status_e_until_it_ceases() -> None:
    issued = school_event("assessment_completed", payload={
        "assessor_role": "educational_psychologist", "assessment_kind": "ehc_needs_assessment",
        "identified_needs": [{"code": "ASD", "rank": 1}, {"code": "SLCN", "rank": 2}],
        "outcome": "ehc_plan_issued", "summary": "Plan issued."})
    packet = build_transfer_packet(history(issued, school_event("pupil_moved")), 2, GENERATED)
    assert packet.sen_status == "ehc_plan"
    assert [n.code for n in packet.current_needs] == ["ASD", "SLCN"]


def test_the_same_move_always_gets_the_same_packet_id() -> None:
    events = history(school_event("pupil_moved"))
    assert (build_transfer_packet(events, 1, GENERATED).packet_id
            == build_transfer_packet(events, 1, datetime.now(UTC)).packet_id)


def test_a_packet_is_only_built_at_a_move() -> None:
    with pytest.raises(NotAMove):
        build_transfer_packet(history(school_event()), 1, GENERATED)
