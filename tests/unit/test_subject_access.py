"""Subject access (UK GDPR Article 15) from fakes: the JSON document holds every record
the hub keeps about the pupil, whole, and the readable page says the same in plain
words, in accessible, self-contained, escaped HTML; an erased pupil's answer says what was
erased, when, by whom and why, and who had received packets."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import typer
from lxml import html

from contracts.dead_letter import DeadLetterV1, Problem
from sendhub import subject_access as sar
from sendhub.access_log import Access, Reader
from sendhub.commands import subject_access as command
from services.records.domain import pupil_id_for
from services.shared.pupil_keys import Erasure as KeyErasure
from services.shared.pupil_keys import PupilErased, pupil_ref_for_upn
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import DeliveryEvent, PacketRecord, delivery_status
from services.transfers.packets import build_transfer_packet
from tests.factories import correction, history_entries, school_event

UPN = "H801200001001"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
READER = Reader("auditor-dpo", sar.DEFAULT_REASON)
OAKFIELD = {"urn": "100001", "system": "SIMS"}


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def the_history() -> list[HistoryEntry]:
    """A concern, the move to 100002, and an assessment the old school recorded late."""
    entries = history_entries(
        school_event(occurred_at="2025-10-01T10:00:00+01:00", source=OAKFIELD,
                     payload={"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
                              "summary": "Worried <script>alert(1)</script> at drop-off."}),
        school_event("pupil_moved", occurred_at="2025-12-01T09:00:00+00:00", source=OAKFIELD,
                     payload={"destination": {"kind": "school", "urn": "100002"},
                              "move_kind": "in_year", "effective_date": "2026-01-05"}),
        school_event("assessment_completed", occurred_at="2025-12-15T11:00:00+00:00",
                     source=OAKFIELD, recorded_by={"role": "SENCO", "name": "Mr O. Late"}),
    )
    recorded = [at(2), at(3), at(20)]
    return [HistoryEntry(upn=h.upn, version=h.version, recorded_at=when,
                         upn_is_temporary=False, event=h.event, event_hash=h.event_hash,
                         previous_hash=f"{h.version - 1:064x}")
            for h, when in zip(entries, recorded, strict=True)]


def held(packet_id: UUID, kind: str, built: datetime, events: Sequence[DeliveryEvent],
         history: list[HistoryEntry], supersedes: UUID | None = None,
         up_to: int | None = None) -> sar.PacketHeld:
    body = build_transfer_packet(history, 2, built, up_to_version=up_to, supersedes=supersedes,
                                 changes=["Added: screening assessment"] if supersedes else ())
    body = body.model_copy(update={"packet_id": packet_id})
    record = PacketRecord(packet_id=packet_id, upn=UPN, pupil="Amira Khan",
                          receiver="urn-100002", receiver_name="Riverside Academy",
                          receiver_la_code="801", kind=kind, built_at=built,
                          supersedes=supersedes, events=tuple(events))
    return sar.PacketHeld(delivery_status(record, NOW.date(), 15), body, "urn-100002")


FIRST, AMENDMENT = uuid4(), uuid4()


@dataclass
class FakeHoldings:
    history_entries: list[HistoryEntry] = field(default_factory=the_history)
    held: list[sar.PacketHeld] = field(default_factory=list)
    log: list[Access] = field(default_factory=list)
    letters: list[DeadLetterV1] = field(default_factory=list)
    history_error: Exception | None = None
    letters_error: Exception | None = None
    destroyed: KeyErasure | None = None

    def history(self, upn: str) -> list[HistoryEntry]:
        if self.history_error:
            raise self.history_error
        return self.history_entries

    def packets(self, upn: str) -> list[sar.PacketHeld]:
        return self.held

    def access_entries(self, upn: str) -> list[Access]:
        return self.log

    def dead_letters(self, upn: str, packet_ids: Sequence[UUID]) -> list[DeadLetterV1]:
        if self.letters_error:
            raise self.letters_error
        return self.letters

    def setting_names(self) -> dict[str, str]:
        return {"urn-100001": "Oakfield Primary School", "urn-100002": "Riverside Academy"}

    def erasure(self, upn: str) -> KeyErasure | None:
        return self.destroyed


def holdings() -> FakeHoldings:
    history = the_history()
    first = held(FIRST, "first", at(3, 10), [
        DeliveryEvent("pending", at(3, 10)), DeliveryEvent("sent", at(3, 11), "attempt 1"),
        DeliveryEvent("received", at(6)), DeliveryEvent("superseded", at(20), str(AMENDMENT))],
        history)
    amendment = held(AMENDMENT, "amendment", at(20, 10), [
        DeliveryEvent("pending", at(20, 10)), DeliveryEvent("sent", at(20, 11), "attempt 1"),
        DeliveryEvent("rejected", at(21), "not our pupil <b>yet</b>")],
        history, supersedes=FIRST, up_to=3)
    log = [Access(at(10), "auditor-tests", "annual review", "history", UPN, None, "now"),
           Access(at(11), "school-100002", "first read", "packet-html", UPN, FIRST, None, "https"),
           Access(NOW, "auditor-dpo", sar.DEFAULT_REASON, sar.ACTION, UPN, None, "written to /x")]
    letter = DeadLetterV1.of(json.dumps({"pupil": {"upn": UPN}}).encode(), reason="schema_invalid",
                             problems=[Problem(path="payload.summary", message="is missing")],
                             service="ingest", source_topic="sen.school-events.v1", partition=0,
                             offset=4, key=UPN.encode(), failed_at=at(4))
    return FakeHoldings(held=[first, amendment], log=log, letters=[letter])


def test_the_document_holds_every_record_whole_with_both_times_and_who_recorded_it() -> None:
    doc = sar.document(sar.gather(holdings(), UPN, READER, NOW))
    assert doc["request"]["requested_by"] == "auditor-dpo"
    assert doc["request"]["reason"] == "subject access request (UK GDPR Article 15)"
    assert doc["pupil"]["given_name"] == "Amira" and doc["pupil"]["upn"] == UPN
    history = doc["history"]
    assert [h["version"] for h in history] == [1, 2, 3]
    assert [h["occurred_at"] for h in history] == [
        "2025-10-01T10:00:00+01:00", "2025-12-01T09:00:00+00:00", "2025-12-15T11:00:00+00:00"]
    assert [h["recorded_at"] for h in history] == [
        at(2).isoformat(), at(3).isoformat(), at(20).isoformat()]
    assert history[2]["recorded_by"] == {
        "setting": "100001", "setting_name": "Oakfield Primary School (URN 100001)",
        "system": "SIMS", "role": "SENCO", "name": "Mr O. Late"}
    assert history[0]["event"]["payload"]["summary"].startswith("Worried <script>")  # as stored
    assert history[0]["event_hash"] == f"{1:064x}" and history[1]["previous_hash"] == f"{1:064x}"


def test_the_document_lists_both_packets_with_receivers_delivery_events_and_receipts() -> None:
    doc = sar.document(sar.gather(holdings(), UPN, READER, NOW))
    first, amendment = doc["packets"]
    assert first["packet_id"] == str(FIRST) and first["kind"] == "first"
    assert first["receiver_words"] == "Riverside Academy (URN 100002)"
    assert [e["state"] for e in first["delivery_events"]] == [
        "pending", "sent", "received", "superseded"]
    assert first["state"] == "superseded" and first["superseded_by"] == str(AMENDMENT)
    assert amendment["supersedes"] == str(FIRST) and amendment["state"] == "rejected"
    assert amendment["state_reason"] == "not our pupil <b>yet</b>"
    assert amendment["content"]["changes"] == ["Added: screening assessment"]
    assert first["content"]["pupil"]["upn"] == UPN
    assert [(r["packet_id"], r["status"], r["reason"]) for r in doc["receipts"]] == [
        (str(FIRST), "received", None), (str(AMENDMENT), "rejected", "not our pupil <b>yet</b>")]
    assert doc["receivers"] == [{"receiver": "urn-100002", "inbox": "urn-100002",
                                 "receiver_words": "Riverside Academy (URN 100002)",
                                 "packets_sent": 2, "confirmed_receipt": True}]
    assert [(a["who"], a["what"]) for a in doc["access_log"]] == [
        ("auditor-tests", "history"), ("school-100002", "packet-html"),
        ("auditor-dpo", "subject-access")]
    assert doc["access_log"][1]["route"] == "https"
    assert doc["rejected_messages"][0]["reason"] == "schema_invalid"
    assert UPN in doc["rejected_messages"][0]["original"]
    assert doc["erasure"] is None
    assert doc["summary"] == {"history_events": 3, "packets": 2, "receipts": 2,
                              "access_log_entries": 3, "rejected_messages": 1}
    json.dumps(doc)  # one JSON document, nothing left unserialisable


def page_of(h: FakeHoldings) -> html.HtmlElement:
    return html.fromstring(sar.render_page(sar.gather(h, UPN, READER, NOW)))


def test_the_page_is_accessible_self_contained_and_escapes_what_schools_wrote() -> None:
    text = sar.render_page(sar.gather(holdings(), UPN, READER, NOW))
    page = html.fromstring(text)
    assert page.get("lang") == "en-GB"
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;yet&lt;/b&gt;" in text
    assert not page.xpath("//script | //link | //img | //*[@src]")
    assert all(h.startswith("#") for h in page.xpath("//a/@href"))  # no external asset
    assert len(page.xpath("//h1")) == 1
    levels = [int(h.tag[1]) for h in page.iter("h1", "h2", "h3", "h4")]
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))  # none skipped
    headings = [h.text_content() for h in page.xpath("//h2")]
    assert headings[:3] == ["Contents", "The pupil's details", "The SEN history"]
    assert "Who has looked at this record" in headings
    for table in page.xpath("//table"):
        assert table.xpath("caption")
        assert all(th.get("scope") in ("col", "row") for th in table.xpath(".//th"))
    history = page.xpath('//table[caption="Every entry in the pupil\'s SEN history"]')[0]
    assert [th.text_content() for th in history.xpath(".//th")] == [
        "No.", "Happened in school", "Recorded by the hub", "Recorded by", "What was recorded"]
    rows = history.xpath("./tbody/tr")
    assert len(rows) == 3
    assert "15 January 2026" not in rows[2].text_content()  # the times are the entry's own
    assert "15 December 2025" in rows[2].text_content()
    assert "20 January 2026, 09:00 UTC" in rows[2].text_content()
    assert "Oakfield Primary School (URN 100001); SENCO (Mr O. Late)" in rows[2].text_content()
    body = page.text_content()
    assert "Amendment to a transfer packet for Riverside Academy (URN 100002)" in body
    assert "Replaced by a later packet (an amendment)" in body
    assert "The receiving setting rejected it" in body
    assert "everything the hub holds (a subject access request)" in body
    assert "a transfer packet (html)" in body and "the hub's HTTPS interface" in body
    assert "payload.summary: is missing" in body
    assert "This record was erased" not in body


def test_an_erased_pupil_is_told_what_was_erased_when_by_whom_why_and_who_had_it() -> None:
    destroyed = KeyErasure(pupil_ref_for_upn(UPN), at(25), "Mrs A. Shah (DPO)",
                           "retention period ended")
    h = holdings()
    h.destroyed = destroyed
    h.history_error = PupilErased(destroyed)
    h.held = [sar.PacketHeld(p.delivery, None, p.inbox) for p in h.held]
    h.log.insert(2, Access(at(25), "operator (hub)", "retention period ended", "erase",
                           f"erased:{pupil_ref_for_upn(UPN)}", None,
                           "erased on 2026-01-25 by Mrs A. Shah (DPO) because retention "
                           "period ended; packets held by: urn-100002 (first, superseded)"))
    answer = sar.gather(h, UPN, READER, NOW)
    assert answer.holds_anything and not answer.history and answer.history_unreadable
    doc = sar.document(answer)
    erasure = doc["erasure"]
    assert erasure["erased_at"] == at(25).isoformat() and erasure["erased_by"] == "operator (hub)"
    assert erasure["authorised_by"] == "Mrs A. Shah (DPO)"
    assert erasure["reason"] == "retention period ended"
    assert "packets held by: urn-100002" in erasure["detail"]
    assert erasure["received_before_erasure"][0]["receiver"] == "urn-100002"
    assert [p["content"] for p in doc["packets"]] == [None, None]
    assert [len(p["delivery_events"]) for p in doc["packets"]] == [4, 3]
    body = page_of(h).text_content()
    assert "This record was erased" in body
    assert ("by operator (hub), authorised by Mrs A. Shah (DPO), because: \u201cretention "
            "period ended") in body
    assert "The history can no longer be read: it was erased" in body
    assert "can no longer be read (erased)" in body


def test_an_erasure_with_nothing_else_left_is_still_an_answer() -> None:
    destroyed = KeyErasure(pupil_ref_for_upn(UPN), at(25), "DPO", "court order")
    h = FakeHoldings(history_entries=[], destroyed=destroyed)
    answer = sar.gather(h, UPN, READER, NOW)
    assert answer.holds_anything
    assert answer.erasure == sar.Erasure(at(25), "DPO", "court order")


def test_nothing_held_is_said_and_an_unreadable_topic_is_named_not_fatal() -> None:
    empty = FakeHoldings(history_entries=[], log=[])
    assert not sar.gather(empty, UPN, READER, NOW).holds_anything
    h = holdings()
    h.letters_error = RuntimeError("TopicAuthorizationFailed")
    answer = sar.gather(h, UPN, READER, NOW)
    assert answer.dead_letters_unread == "RuntimeError: TopicAuthorizationFailed"
    assert "These could not be read for this answer" in page_of(h).text_content()


def test_receivers_and_reads_in_plain_words() -> None:
    names = {"ukprn-10012345": "City College"}
    assert sar.receiver_words("ukprn-10012345", names) == "City College (UKPRN 10012345)"
    assert sar.receiver_words("urn-131009", {}) == "the setting with URN 131009"
    assert sar.receiver_words("la-803", {}) == "local authority 803"
    assert sar.receiver_words("lost-pupils", {}, "lost-pupils.la-801") == (
        "local authority 801, for a pupil whose next school was not known")
    assert sar.action_words("packet-ctf") == "a transfer packet (CTF)"
    assert sar.action_words("packet-rebuild").startswith("a transfer packet, rebuilt")
    assert sar.action_words("inbox-summary") == (
        "a transfer packet in the receiving setting's inbox (summary)")
    assert sar.action_words("something-new") == "something-new"


def test_the_command_asks_the_same_default_reason_and_refuses_a_folder_it_cannot_write(
    tmp_path: Path,
) -> None:
    default = inspect.signature(command.subject_access).parameters["reason"].default
    assert default == sar.DEFAULT_REASON
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(typer.Exit) as refused:
        command._writable_folder(blocker / "inside")
    assert refused.value.exit_code == 2
    assert command._writable_folder(tmp_path / "new") == tmp_path / "new"
    assert (tmp_path / "new").is_dir()


# -- another pupil's information (UK GDPR Art. 15(4); DPA 2018 Sch. 2 Pt. 3 para. 16) --

FILED_UNDER = "Y801200007001"  # B: the entry was filed under this pupil by mistake
RIGHT_UPN = "J801200008001"  # A: the pupil it was about
FILED_PUPIL = {"upn": FILED_UNDER, "given_name": "Bella", "family_name": "Wrongford",
               "date_of_birth": "2014-02-03"}
RIGHT_PUPIL = {"upn": RIGHT_UPN, "given_name": "Alfie", "family_name": "Rightson",
               "date_of_birth": "2015-07-09"}
A_SEN = "Alfie hides under the table when the bell rings."
HILLSIDE = {"urn": "100001", "system": "SIMS"}
B_CONCERN = school_event(pupil=FILED_PUPIL, source=HILLSIDE,
                         occurred_at="2025-09-08T10:00:00+01:00",
                         payload={"raised_by": "teacher", "areas_of_need": ["SPLD"],
                                  "summary": "Bella reverses letters."})
B_ASSESSMENT = school_event("assessment_completed", pupil=FILED_PUPIL, source=HILLSIDE,
                            occurred_at="2025-09-20T10:00:00+01:00")
MISFILED = school_event(pupil=FILED_PUPIL, source=HILLSIDE,
                        occurred_at="2025-10-01T10:00:00+01:00",
                        recorded_by={"role": "class_teacher", "name": "Mr T. Hall"},
                        payload={"raised_by": "teacher", "areas_of_need": ["SEMH"],
                                 "summary": A_SEN})
B_MOVE = school_event("pupil_moved", pupil=FILED_PUPIL, source=HILLSIDE,
                      occurred_at="2025-10-20T09:00:00+01:00",
                      payload={"destination": {"kind": "school", "urn": "100002"},
                               "move_kind": "in_year", "effective_date": "2025-11-10"})
A_CONCERN = school_event(pupil=RIGHT_PUPIL, source=HILLSIDE,
                         occurred_at="2025-09-10T10:00:00+01:00")
MISFILING = correction("entry_misfiled", MISFILED, correct_pupil=RIGHT_PUPIL,
                       reason="This was Alfie Rightson's concern, entered under Bella.")
B_RETRACTION = correction("entry_retracted", B_CONCERN, reason="Duplicate of the screening.")
B_CORRECTION = correction("entry_corrected", B_ASSESSMENT, reason="Wrong outcome chosen.",
                          replacement=school_event("assessment_completed")["payload"]
                          | {"outcome": "no_sen", "identified_needs": []})


def recorded_histories() -> tuple[list[HistoryEntry], list[HistoryEntry]]:
    """Both pupils' histories as records keeps them (in memory): B with its own entries, the
    misfiled one, its move, the misfiling and its own corrections; A with its own concern
    and the entry moved in (an `EntryRefiled`)."""
    from contracts.accepted import AcceptedSchoolEventV1, Position
    from contracts.inbound import INBOUND_EVENT
    from services.records.application import ConsumedPosition, RecordsApplication
    from services.records.handlers import to_history_entry, to_school_event_record

    app = RecordsApplication()
    for n, event in enumerate([A_CONCERN, B_CONCERN, B_ASSESSMENT, MISFILED, B_MOVE,
                               MISFILING, B_RETRACTION, B_CORRECTION]):
        accepted = AcceptedSchoolEventV1(
            accepted_at=NOW, upn_is_temporary=False,
            received_from=Position(topic="t", partition=0, offset=n),
            event=INBOUND_EVENT.validate_python(event, context={"trusted": True}))
        app.record_school_events([(to_school_event_record(accepted),
                                   ConsumedPosition("sen.accepted.v1", 0, n))])
    return ([to_history_entry(e) for e in app.history_events(FILED_UNDER)],
            [to_history_entry(e) for e in app.history_events(RIGHT_UPN)])


def packet_held(packet: Any, kind: str, upn: str, events: Sequence[DeliveryEvent]
                ) -> sar.PacketHeld:
    record = PacketRecord(packet_id=packet.packet_id, upn=upn, pupil="a pupil",
                          receiver="urn-100002", receiver_name="Riverside Academy",
                          receiver_la_code="801", kind=kind, built_at=packet.generated_at,
                          supersedes=packet.supersedes, events=tuple(events))
    return sar.PacketHeld(delivery_status(record, NOW.date(), 15), packet, "urn-100002")


def refused_misfiling() -> DeadLetterV1:
    """A second misfiling the hub refused (the entry had moved already): it names both."""
    again = correction("entry_misfiled", MISFILED, correct_pupil=RIGHT_PUPIL,
                       reason="Alfie's, again.")
    accepted = {"accepted_at": NOW.isoformat(), "upn_is_temporary": False, "event": again,
                "received_from": {"topic": "sen.school-events.v1", "partition": 0, "offset": 3}}
    return DeadLetterV1.of(json.dumps(accepted).encode(), reason="history_rejected",
                           problems=[Problem(path="payload.corrects_event_id",
                                             message="already moved")],
                           service="records", source_topic="sen.accepted.v1", partition=0,
                           offset=9, key=FILED_UNDER.encode(), failed_at=at(25))


def both_answers() -> tuple[tuple[dict[str, Any], str], tuple[dict[str, Any], str]]:
    filed, right = recorded_histories()
    move_version = next(h.version for h in filed if h.event.event_type == "pupil_moved")
    first = build_transfer_packet(filed, move_version, at(5), up_to_version=move_version)
    amendment = build_transfer_packet(filed, move_version, at(22), supersedes=first.packet_id,
                                      up_to_version=len(filed),
                                      changes=["Withdrawn: recorded under the wrong pupil"])
    b = FakeHoldings(history_entries=filed, letters=[refused_misfiling()], held=[
        packet_held(first, "first", FILED_UNDER, [DeliveryEvent("pending", at(5)),
                                                  DeliveryEvent("sent", at(5, 10)),
                                                  DeliveryEvent("received", at(6))]),
        packet_held(amendment, "amendment", FILED_UNDER, [DeliveryEvent("pending", at(22))])])
    a = FakeHoldings(history_entries=right, letters=[refused_misfiling()])
    answers = []
    for holdings_, upn in ((b, FILED_UNDER), (a, RIGHT_UPN)):
        gathered = sar.gather(holdings_, upn, READER, NOW)
        answers.append((sar.document(gathered), sar.render_page(gathered)))
    return answers[0], answers[1]


def nowhere(words: Sequence[str], doc: dict[str, Any], page: str) -> None:
    text = json.dumps(doc, ensure_ascii=False)
    readable = html.fromstring(page).text_content()
    for word in words:
        assert word not in text, f"{word!r} is in the JSON"
        assert word not in page and word not in readable, f"{word!r} is on the page"


def test_the_answer_for_the_pupil_an_entry_was_misfiled_under_holds_nothing_of_the_other(
) -> None:
    filed, _ = recorded_histories()
    stored = json.dumps([h.event.model_dump(mode="json") for h in filed])
    assert RIGHT_UPN in stored and A_SEN in stored  # what the hub holds under B names A
    (doc, page), _ = both_answers()
    nowhere([RIGHT_UPN, "Alfie", "Rightson", "2015-07-09", A_SEN, "SEMH",
             str(pupil_id_for(RIGHT_UPN)), "entered under Bella"], doc, page)
    by_id = {h["event_id"]: h for h in doc["history"]}
    entry, misfiling = by_id[MISFILED["event_id"]], by_id[MISFILING["event_id"]]
    assert entry["event"] is None and entry["withheld"] == sar.WITHHELD_ENTRY
    assert (entry["event_type"], entry["occurred_at"]) == (
        "concern_raised", "2025-10-01T10:00:00+01:00")
    assert entry["recorded_by"]["setting"] == "100001"
    assert entry["recorded_by"]["role"] == "class_teacher"
    moved_on = datetime.fromisoformat(misfiling["recorded_at"])
    assert entry["description"] == ("Recorded under this pupil by mistake, and moved to "
                                    f"another pupil's record on {moved_on:%-d %B %Y}")
    assert entry["correction"]["kind"] == "entry_misfiled"
    assert entry["correction"]["reason"] is None
    assert misfiling["event"]["payload"] == {"corrects_event_id": MISFILED["event_id"]}
    assert misfiling["event"]["pupil"]["upn"] == FILED_UNDER
    assert misfiling["description"] == (f"Entry {entry['version']} had been recorded under "
                                        "this pupil by mistake, and was moved to another "
                                        "pupil's record")
    assert misfiling["withheld"] == sar.WITHHELD_MISFILE
    assert doc["pupil"]["upn"] == FILED_UNDER and doc["pupil"]["given_name"] == "Bella"
    letter = doc["rejected_messages"][0]
    assert letter["withheld"] == sar.WITHHELD_REFUSED_MISFILE
    assert json.loads(letter["original"])["event"]["pupil"]["upn"] == FILED_UNDER
    body = html.fromstring(page).text_content()
    assert "Recorded under this pupil by mistake, and moved to another pupil's record" in body
    assert "UK GDPR Article 15(4)" in body


def test_a_packet_built_while_the_misfiled_entry_was_held_is_given_without_its_content(
) -> None:
    filed, _ = recorded_histories()
    assert A_SEN in build_transfer_packet(filed, 4, at(5)).model_dump_json()  # as held
    (doc, page), _ = both_answers()
    first, amendment = doc["packets"]
    assert first["content"] is None and first["content_withheld"] == sar.WITHHELD_PACKET
    outline = first["content_outline"]
    assert outline["to_setting"]["urn"] == "100002"
    assert outline["move"]["effective_date"] == "2025-11-10"
    assert [e["state"] for e in first["delivery_events"]] == ["pending", "sent", "received"]
    assert amendment["content"] is not None and amendment["content_withheld"] is None
    assert amendment["content"]["pupil"]["upn"] == FILED_UNDER
    assert doc["receipts"][0]["status"] == "received"
    page_text = html.fromstring(page).text_content()
    assert "cannot be separated cleanly from the other pupil's information" in page_text


def test_the_pupils_own_withdrawn_and_corrected_entries_are_kept_and_marked() -> None:
    (doc, page), _ = both_answers()
    by_id = {h["event_id"]: h for h in doc["history"]}
    withdrawn, corrected = by_id[B_CONCERN["event_id"]], by_id[B_ASSESSMENT["event_id"]]
    assert withdrawn["event"]["payload"]["summary"] == "Bella reverses letters."  # hers
    assert withdrawn["correction"]["kind"] == "entry_retracted"
    assert withdrawn["correction"]["words"].startswith("Withdrawn on ")
    assert withdrawn["correction"]["words"].endswith("(entry 6): Duplicate of the screening")
    assert corrected["event"]["payload"]["outcome"] == "sen_support"  # as first recorded
    assert corrected["correction"]["kind"] == "entry_corrected"
    assert corrected["correction"]["words"].startswith("Corrected on ")
    retraction = by_id[B_RETRACTION["event_id"]]
    assert retraction["event"]["payload"]["reason"] == "Duplicate of the screening."
    body = html.fromstring(page).text_content()
    assert withdrawn["correction"]["words"] in body and corrected["correction"]["words"] in body


def test_the_right_pupils_answer_has_the_entry_moved_in_and_nothing_of_the_other() -> None:
    _, right = recorded_histories()
    assert any(h.refiled_from and h.refiled_from.pupil_id == pupil_id_for(FILED_UNDER)
               for h in right)  # what the hub holds points to B's stream
    _, (doc, page) = both_answers()
    nowhere([FILED_UNDER, "Bella", "Wrongford", "2014-02-03", str(pupil_id_for(FILED_UNDER))],
            doc, page)
    moved = next(h for h in doc["history"] if h["event_id"] == MISFILED["event_id"])
    assert moved["event"]["payload"]["summary"] == A_SEN  # his own, whole
    assert moved["event"]["pupil"]["upn"] == RIGHT_UPN
    assert moved["withheld"] is None and "refiled_from" not in json.dumps(doc)
    day = datetime.fromisoformat(moved["recorded_at"])
    assert moved["moved_here"] == {
        "on": day.date().isoformat(), "from": "another pupil's record",
        "words": f"Moved here from another pupil's record on {day:%-d %B %Y}, where the "
                 "setting had recorded it by mistake"}
    assert moved["moved_here"]["words"] in html.fromstring(page).text_content()
    assert A_SEN in page
    letter = doc["rejected_messages"][0]
    assert "pupil" not in json.loads(letter["original"])["event"]  # filed under the other
