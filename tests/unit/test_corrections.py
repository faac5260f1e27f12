"""A setting corrects its own entries: the records rules, the corrected read model, and
what packets (in every form) and amendments say. No I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.inbound import INBOUND_EVENT
from contracts.packet import Setting
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.domain import (
    ConcernRaised,
    CorrectionRefused,
    EntryMisfiled,
    EntryRefiled,
    EntryRetracted,
    pupil_id_for,
)
from services.records.handlers import to_history_contract, to_history_entry, to_school_event_record
from services.shared.sen_record import as_corrected, corrections_of, record_at
from services.transfers.forms import render_ctf, render_html
from services.transfers.packets import amendment_changes, build_transfer_packet
from tests.factories import correction, la_event, pupil, school_event

UPN = "H801200001001"
RIGHT = "B801200005001"
RIVERSIDE = {"urn": "100001", "system": "SIMS"}
BROOK = {"urn": "100003", "system": "Arbor"}
SECRET = "Worried about bruising seen in PE."  # what must not travel once withdrawn

WRONG_PUPIL = pupil(UPN, "Amira")
RIGHT_PUPIL = pupil(RIGHT, "Ben")
CONCERN = school_event(pupil=WRONG_PUPIL, source=RIVERSIDE,
                       occurred_at="2025-03-03T10:00:00+00:00",
                       payload={"raised_by": "teacher", "areas_of_need": ["SEMH"],
                                "summary": SECRET})
ASSESSMENT = school_event("assessment_completed", pupil=WRONG_PUPIL, source=RIVERSIDE,
                          occurred_at="2025-04-01T10:00:00+01:00")
MOVE = school_event("pupil_moved", pupil=WRONG_PUPIL, source=RIVERSIDE,
                    occurred_at="2025-10-20T09:00:00+01:00",
                    payload={"destination": {"kind": "school", "urn": "100002"},
                             "move_kind": "in_year", "effective_date": "2025-11-10"})


def accepted(event: dict[str, Any]) -> AcceptedSchoolEventV1:
    return AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=INBOUND_EVENT.validate_python(event, context={"trusted": True}))


def recorded(*events: dict[str, Any], app: RecordsApplication | None = None,
             first_offset: int = 0) -> RecordsApplication:
    app = app or RecordsApplication()
    for n, event in enumerate(events, start=first_offset):
        app.record_school_events([(to_school_event_record(accepted(event)),
                                   ConsumedPosition("sen.accepted.v1", 0, n))])
    return app


def refused(app: RecordsApplication, event: dict[str, Any], offset: int = 100) -> str:
    with pytest.raises(CorrectionRefused) as error:
        recorded(event, app=app, first_offset=offset)
    return str(error.value)


# -- the contract ------------------------------------------------------------------


def test_a_correction_is_refused_at_the_edge_when_it_is_malformed() -> None:
    with pytest.raises(ValidationError, match="cannot correct itself"):
        INBOUND_EVENT.validate_python(correction("entry_retracted", CONCERN,
                                                 event_id=CONCERN["event_id"]))
    with pytest.raises(ValidationError, match="moves to another pupil"):
        INBOUND_EVENT.validate_python(correction("entry_misfiled", CONCERN,
                                                 correct_pupil=WRONG_PUPIL))
    with pytest.raises(ValidationError):  # a replacement that is no payload of a kind
        INBOUND_EVENT.validate_python(correction("entry_corrected", CONCERN,
                                                 replacement={"summary": "x"}))
    with pytest.raises(ValidationError):  # a reason is required
        INBOUND_EVENT.validate_python(correction("entry_retracted", CONCERN, reason=""))


# -- the records rules -------------------------------------------------------------


def test_a_retraction_is_kept_as_a_mark_and_the_chain_still_verifies() -> None:
    app = recorded(CONCERN, correction("entry_retracted", CONCERN))
    events = app.history_events(UPN)
    assert [type(e) for e in events] == [ConcernRaised, EntryRetracted]
    assert events[0].school_event["payload"] == CONCERN["payload"]  # nothing rewritten
    assert app.verify_pupil(UPN) == (2, None)


def test_a_correction_redelivered_adds_nothing() -> None:
    retraction = correction("entry_retracted", CONCERN)
    app = recorded(CONCERN, retraction)
    recorded(retraction, app=app, first_offset=10)  # the same event at a new offset
    misfiled = correction("entry_misfiled", ASSESSMENT, correct_pupil=RIGHT_PUPIL)
    recorded(ASSESSMENT, misfiled, misfiled, app=app, first_offset=20)
    assert len(app.history_events(UPN)) == 4
    assert len(app.history_events(RIGHT)) == 1


@pytest.mark.parametrize("case, expected", [
    ("unknown", "is not in this pupil's history"),
    ("another_setting", "recorded by 100001, not by 100003"),
    ("move", "is a pupil_moved, which cannot be corrected"),
    ("twice", "was already withdrawn by event"),
    ("other_kind", "the replacement is a plan_reviewed payload"),
    ("a_correction", "is a entry_retracted, which cannot be corrected"),
])
def test_a_correction_that_cannot_apply_is_refused_with_its_reason(case: str,
                                                                   expected: str) -> None:
    first = correction("entry_retracted", CONCERN)
    app = recorded(CONCERN, ASSESSMENT, MOVE, first)
    stranger = school_event(pupil=WRONG_PUPIL, source=RIVERSIDE)
    sent = {
        "unknown": correction("entry_retracted", stranger),
        "another_setting": correction("entry_retracted", CONCERN, source=BROOK),
        "move": correction("entry_retracted", MOVE),
        "twice": correction("entry_misfiled", CONCERN, correct_pupil=RIGHT_PUPIL),
        "other_kind": correction("entry_corrected", ASSESSMENT,
                                 replacement=school_event("plan_reviewed")["payload"]),
        "a_correction": correction("entry_retracted", first),
    }[case]
    assert expected in refused(app, sent)
    assert len(app.history_events(UPN)) == 4  # nothing stored
    assert app.history_events(RIGHT) == []


def test_an_la_event_cannot_be_corrected_by_a_school() -> None:
    plan = la_event("ehc_plan_issued", pupil=WRONG_PUPIL)
    app = recorded(plan)
    message = refused(app, correction("entry_retracted", plan, source=RIVERSIDE))
    assert "is a ehc_plan_issued, which cannot be corrected" in message


def test_a_misfiled_entry_moves_to_the_right_pupil_and_both_chains_verify() -> None:
    app = recorded(school_event(pupil=RIGHT_PUPIL, source=BROOK), CONCERN)
    misfiled = correction("entry_misfiled", CONCERN, reason="Entered under the wrong child.",
                          correct_pupil=RIGHT_PUPIL)
    recorded(misfiled, app=app, first_offset=5)
    wrong, right = app.history_events(UPN), app.history_events(RIGHT)
    assert [type(e) for e in wrong] == [ConcernRaised, EntryMisfiled]
    assert [type(e) for e in right][-1] is EntryRefiled
    refiled = right[-1]
    assert isinstance(refiled, EntryRefiled)
    assert refiled.event_id == CONCERN["event_id"] and refiled.upn == RIGHT
    assert refiled.school_event["payload"] == CONCERN["payload"]
    assert refiled.occurred_at == wrong[0].occurred_at and refiled.setting_urn == "100001"
    assert (refiled.refiled_from_pupil_id, refiled.refiled_from_version,
            refiled.refiled_by_event_id) == (str(pupil_id_for(UPN)), 1, misfiled["event_id"])
    assert app.verify_pupil(UPN) == (2, None) and app.verify_pupil(RIGHT) == (2, None)
    # It travels with its pointer; the right pupil's school may correct it there later.
    message = to_history_contract(refiled, notification_id=9)
    assert message.refiled_from is not None and message.refiled_from.version == 1
    assert message.upn == RIGHT and message.event.pupil.upn == RIGHT
    recorded(correction("entry_retracted", CONCERN, pupil=RIGHT_PUPIL), app=app, first_offset=9)
    assert len(app.history_events(RIGHT)) == 3


def test_a_misfiled_entry_already_in_the_right_pupils_history_is_refused() -> None:
    app = recorded(CONCERN, CONCERN | {"pupil": RIGHT_PUPIL})
    message = refused(app, correction("entry_misfiled", CONCERN, correct_pupil=RIGHT_PUPIL))
    assert "the right pupil's history already holds event" in message


def test_corrections_do_not_change_where_the_pupil_is() -> None:
    app = recorded(CONCERN, MOVE, correction("entry_retracted", CONCERN))
    assert app.history_of(pupil_id_for(UPN)).current_setting_urn == "100002"


def test_the_as_of_axis_shows_corrections_known_now() -> None:
    app = recorded(CONCERN, correction("entry_retracted", CONCERN))
    as_of = [to_history_entry(e) for e in app.replay(UPN, as_of_day=datetime(
        2025, 6, 1).date())]
    assert len(as_of) == 2 and record_at(as_of).concerns == []


# -- the corrected read model ------------------------------------------------------


def entries(*events: dict[str, Any]) -> list[Any]:
    app = recorded(*events)
    return [to_history_entry(e) for e in app.history_events(UPN)]


def test_the_record_leaves_out_a_retracted_entry_and_shows_a_corrected_one_corrected() -> None:
    fixed = {"raised_by": "parent_carer", "areas_of_need": ["SLCN"], "summary": "Speech."}
    history = entries(CONCERN, ASSESSMENT, correction("entry_corrected", CONCERN,
                                                      reason="Wrong area of need.",
                                                      replacement=fixed),
                      correction("entry_retracted", ASSESSMENT))
    record = record_at(history)
    assert [c.payload.summary for c in record.concerns] == ["Speech."]
    assert record.assessments == [] and record.status == "none"
    # Before the corrections (versions 1-2), the record said what was recorded then.
    assert record_at(history, version=2).status == "sen_support"
    shown = as_corrected(history)
    assert [h.version for h in shown] == [1]  # the assessment and both marks go
    marks = corrections_of(history)
    assert {str(k): m.kind for k, m in marks.items()} == {
        CONCERN["event_id"]: "entry_corrected", ASSESSMENT["event_id"]: "entry_retracted"}


def packet_after(*events: dict[str, Any], up_to: int | None = None) -> Any:
    history = entries(*events)
    move = next(h.version for h in history if h.event.event_type == "pupil_moved")
    packet = build_transfer_packet(history, move, datetime(2026, 1, 5, tzinfo=UTC),
                                   up_to_version=up_to)
    return history, packet.model_copy(update={
        "from_setting": Setting(kind="school", urn="100001", name="Riverside Primary",
                                la_code="801", establishment_number="2001", in_registry=True),
        "to_setting": Setting(kind="school", urn="100002", name="Brook Lane",
                              la_code="801", establishment_number="2002", in_registry=True)})


def test_a_packet_in_every_form_leaves_out_a_retracted_entry() -> None:
    _, packet = packet_after(CONCERN, ASSESSMENT, correction("entry_retracted", CONCERN), MOVE)
    assert SECRET not in packet.model_dump_json()
    assert SECRET.encode() not in render_ctf(packet)
    assert SECRET not in render_html(packet)
    assert [t.event_type for t in packet.timeline] == ["assessment_completed", "pupil_moved"]
    assert packet.concerns_open == [] and packet.history_version == 4


def test_an_amendment_says_what_was_withdrawn_without_repeating_it() -> None:
    history, first = packet_after(CONCERN, ASSESSMENT, MOVE)
    assert SECRET in first.model_dump_json()
    history = entries(CONCERN, ASSESSMENT, MOVE, correction("entry_retracted", CONCERN),
                      correction("entry_misfiled", ASSESSMENT, correct_pupil=RIGHT_PUPIL,
                                 reason="This was Ben Test's screening."))
    changes = amendment_changes(first, history)
    assert changes == [
        "Withdrawn: the entry of 3 March 2025 recorded by URN 100001 (history version 1) was "
        "withdrawn by that setting: Recorded in error. It is no longer part of this pupil's "
        "record; please remove it from yours (history version 4)",
        "Withdrawn: the entry of 1 April 2025 recorded by URN 100001 (history version 2) was "
        "withdrawn by that setting: it had been recorded under the wrong pupil. It is no "
        "longer part of this pupil's record; please remove it from yours (history version 5)"]
    amended = build_transfer_packet(history, 3, datetime(2026, 2, 1, tzinfo=UTC),
                                    up_to_version=5, supersedes=first.packet_id,
                                    changes=changes)
    text = amended.model_dump_json()
    assert SECRET not in text and "Ben" not in text  # not the content, nor whose it was
    assert [t.event_type for t in amended.timeline] == ["pupil_moved"]


def test_an_amendment_says_an_entry_was_corrected_and_carries_it_corrected() -> None:
    _, first = packet_after(CONCERN, MOVE)
    fixed = {"raised_by": "teacher", "areas_of_need": ["SLCN"], "summary": "Speech sounds."}
    history = entries(CONCERN, MOVE, correction("entry_corrected", CONCERN,
                                                reason="Wrong pupil's notes pasted in.",
                                                replacement=fixed))
    [change] = amendment_changes(first, history)
    assert change.startswith("Corrected: the entry of 3 March 2025 recorded by URN 100001")
    assert "Wrong pupil's notes pasted in." in change and SECRET not in change
    amended = build_transfer_packet(history, 2, datetime(2026, 2, 1, tzinfo=UTC),
                                    up_to_version=3, changes=[change])
    assert [c.summary for c in amended.concerns_open] == ["Speech sounds."]
    assert SECRET not in json.dumps(amended.model_dump(mode="json"))


def test_a_late_entry_withdrawn_before_it_was_ever_sent_is_not_mentioned() -> None:
    _, first = packet_after(CONCERN, MOVE)
    late = school_event("assessment_completed", pupil=WRONG_PUPIL, source=RIVERSIDE,
                        occurred_at="2025-11-01T10:00:00+00:00")
    history = entries(CONCERN, MOVE, late, correction("entry_retracted", late))
    assert amendment_changes(first, history) == []


def test_a_refiled_entry_is_added_to_the_right_pupils_packet_as_moved_here() -> None:
    right_move = MOVE | {"pupil": RIGHT_PUPIL}
    app = recorded(right_move, CONCERN)
    right_history = [to_history_entry(e) for e in app.history_events(RIGHT)]
    first = build_transfer_packet(right_history, 1, datetime(2026, 1, 5, tzinfo=UTC))
    recorded(correction("entry_misfiled", CONCERN, correct_pupil=RIGHT_PUPIL), app=app,
             first_offset=5)
    right_history = [to_history_entry(e) for e in app.history_events(RIGHT)]
    [change] = amendment_changes(first, right_history)
    assert change.startswith("Added: Concern raised by teacher (SEMH) on 3 March 2025")
    assert "moved here from another pupil's record" in change
    assert UPN not in change



# -- the auditor -------------------------------------------------------------------


def test_the_auditors_replay_shows_everything_marked_and_the_report_leaves_it_out() -> None:
    from rich.console import Console

    from sendhub.replay import history_document, history_table
    from sendhub.report import ChainCheck, render_report

    history = entries(CONCERN, ASSESSMENT, correction("entry_retracted", CONCERN))
    document = history_document(UPN, history, known_at=None, as_of=None)
    [concern, assessment, _] = document["events"]
    assert concern["event"]["payload"]["summary"] == SECRET  # what the record said
    assert concern["corrected"] == {"kind": "entry_retracted", "by_version": 3,
                                    "on": "2026-01-20", "reason": "Recorded in error."}
    assert assessment["corrected"] is None and document["open_concerns"] == []
    console = Console(record=True, width=250)
    console.print(history_table(UPN, history, "now"))
    table = console.export_text()
    assert "Concern raised by teacher (SEMH) [withdrawn on 2026-01-20" in table
    assert "withdrawn by the school that recorded it: Recorded in error." in table

    page = render_report(history, today=datetime(2026, 2, 1).date(),
                         generated_at=datetime(2026, 2, 1, tzinfo=UTC), actor="auditor-tests",
                         chain=ChainCheck(3, "0" * 64, None))
    assert SECRET not in page and "SEMH" not in page.split("<h2>Timeline")[1]
    assert "The entry of 3 March 2025 recorded by 100001 (v1) was withdrawn on 2026-01-20" in page
    everything_withdrawn = entries(CONCERN, correction("entry_retracted", CONCERN))
    assert "SEN status now: <strong>No SEN" in render_report(
        everything_withdrawn, today=datetime(2026, 2, 1).date(),
        generated_at=datetime(2026, 2, 1, tzinfo=UTC), actor="a", chain=ChainCheck(2, "0" * 64,
                                                                                  None))
