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
from uuid import UUID, uuid4

import pytest
import typer
from lxml import html

from contracts.dead_letter import DeadLetterV1, Problem
from sendhub import subject_access as sar
from sendhub.access_log import Access, Reader
from sendhub.commands import subject_access as command
from services.shared.pupil_keys import Erasure as KeyErasure
from services.shared.pupil_keys import PupilErased, pupil_ref_for_upn
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import DeliveryEvent, PacketRecord, delivery_status
from services.transfers.packets import build_transfer_packet
from tests.factories import history_entries, school_event

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
