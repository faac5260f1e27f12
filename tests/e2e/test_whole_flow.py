"""A school's events in, a receiver's transfer packet out: real Kafka, real PostgreSQL,
the three services as separate processes."""

from __future__ import annotations

import json

import pytest

from contracts.dead_letter import DeadLetterV1
from contracts.packet import TransferPacketV1
from sendhub.publishing import publish_lines
from sendhub.topics_reader import read_topic
from services.records.application import RecordsApplication
from services.shared.settings import HubSettings
from tests.e2e.conftest import RunningServices, eventually
from tests.factories import pupil, random_upn, school_event

pytestmark = pytest.mark.e2e


def packets_in(settings: HubSettings, receiver: str) -> dict[str, TransferPacketV1]:
    found = {}
    for r in read_topic(settings, settings.topics.inbox(receiver)):
        packet = TransferPacketV1.model_validate_json(r.value)
        found[packet.pupil.upn] = packet
    return found


def test_school_events_become_histories_packets_and_dead_letters(
    services: RunningServices, settings: HubSettings
) -> None:
    amira, chloe, dylan = random_upn(), random_upn(), random_upn()
    concern = school_event(pupil=pupil(amira, "Amira"), occurred_at="2024-10-08T09:00:00+01:00",
                           payload={"raised_by": "teacher", "areas_of_need": ["SPLD", "SEMH"],
                                    "summary": "Reading well below peers; anxious."})
    events = [
        concern,
        school_event("assessment_completed", pupil=pupil(amira, "Amira"),
                     occurred_at="2024-11-20T11:00:00+00:00"),
        school_event("plan_reviewed", pupil=pupil(amira, "Amira"),
                     occurred_at="2025-02-10T16:00:00+00:00"),
        concern,  # the same event delivered twice
        school_event("pupil_moved", pupil=pupil(amira, "Amira"),
                     occurred_at="2025-12-01T09:30:00+00:00"),
        school_event("assessment_completed", pupil=pupil(chloe, "Chloe"),
                     payload={"assessor_role": "educational_psychologist",
                              "assessment_kind": "ehc_needs_assessment",
                              "identified_needs": [{"code": "ASD", "rank": 1}],
                              "outcome": "ehc_plan_issued", "summary": "Plan issued."}),
        school_event("pupil_moved", pupil=pupil(chloe, "Chloe"), source={"urn": "137003",
                     "system": "Bromcom"}, payload={"destination": {"kind": "post16_provider",
                     "ukprn": "10034567"}, "move_kind": "post16", "effective_date": "2026-09-01"}),
        school_event("pupil_moved", pupil=pupil(dylan, "Dylan"),
                     payload={"destination": {"kind": "school", "urn": "131002"},
                              "move_kind": "in_year", "effective_date": "2025-11-03"}),
    ]
    bad_upn = school_event(pupil=pupil("Z801200001001", "Eve"))
    misspelt = school_event("plan_reviewed", pupil=pupil(amira, "Amira"))
    misspelt["payload"]["parent_carer_veiws"] = misspelt["payload"].pop("parent_carer_views")
    invalid = [b"not json at all", b"\xff\xfe\x00 not utf-8", b"{}", json.dumps(bad_upn).encode(),
               json.dumps(misspelt).encode(), b'{"padding": "' + b"x" * 600_000 + b'"}']
    sent = publish_lines(settings, [json.dumps(e).encode() for e in events] + invalid)
    invalid_positions = sent.positions[len(events):]

    # Packets arrive in each receiver's own topic.
    to_riverside = eventually(lambda: _one(packets_in(settings, "urn-100002"), amira))
    to_college = eventually(lambda: _one(packets_in(settings, "ukprn-10034567"), chloe))
    dylans = eventually(lambda: _one(packets_in(settings, "urn-131002"), dylan))

    assert to_riverside.sen_status == "sen_support"
    assert [(n.code, n.rank) for n in to_riverside.current_needs] == [("SPLD", 1)]
    # SPLD was assessed after, SEMH never: the concern stays open (issue 12's rule)
    assert [c.areas_of_need for c in to_riverside.concerns_open] == [["SPLD", "SEMH"]]
    assert to_riverside.plans.current is not None
    assert to_riverside.plans.reviews[0].parent_carer_views == "Happier at home."
    assert [t.event_type for t in to_riverside.timeline] == [
        "concern_raised", "assessment_completed", "plan_reviewed", "pupil_moved"]
    assert to_riverside.history_version == 4  # the duplicate concern was not stored
    assert to_college.sen_status == "ehc_plan" and to_college.to_setting.ukprn == "10034567"
    assert dylans.has_sen_history is False and "No SEN history" in dylans.sen_history_statement

    # The history read back from PostgreSQL holds each event once, in order.
    records = RecordsApplication(env=settings.eventsourcing_env())
    history = records.history_events(amira)
    assert [e.event_id for e in history].count(concern["event_id"]) == 1
    assert [type(e).__name__ for e in history] == [
        "ConcernRaised", "AssessmentCompleted", "PlanReviewed", "PupilMoved"]

    # Every invalid message is kept, with its reason, bytes and position.
    def dead_letters() -> dict[tuple[int, int], DeadLetterV1]:
        found = {}
        for r in read_topic(settings, settings.topics.rejected):
            letter = DeadLetterV1.model_validate_json(r.value)
            found[(letter.partition, letter.offset)] = letter
        assert all(p in found for p in invalid_positions), "not all dead letters yet"
        return found

    letters = eventually(dead_letters)
    by_position = [letters[p] for p in invalid_positions]
    assert [letter.reason for letter in by_position] == [
        "not_json", "not_utf8", "schema_invalid", "schema_invalid", "schema_invalid", "too_large"]
    assert [letter.original for letter in by_position] == invalid
    assert any(p.path == "pupil.upn" and "check letter" in p.message
               for p in by_position[3].problems)
    assert [p.path for p in by_position[4].problems] == ["payload.parent_carer_veiws"]
    assert all(letter.source_topic == settings.topics.school_events for letter in by_position)


def _one(packets: dict[str, TransferPacketV1], upn: str) -> TransferPacketV1:
    assert upn in packets, f"no packet yet for {upn}"
    return packets[upn]
