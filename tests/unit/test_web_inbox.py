"""The inbox and packet pages' own rules, without I/O: what kind each packet is, its
flags in words, the receipt it had and the one the form asks for, the names of its
downloads, what an amendment changed, and the packet's content as the web page takes it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contracts.packet import TransferPacketV1
from sendhub.gateway.store import InboxPacket
from sendhub.web.inbox_view import (
    AMENDMENT,
    CHOOSE,
    LA_NOTICE,
    NO_RECEIPT,
    PACKET,
    REASON_ONLY_IF_REJECTED,
    REROUTED,
    WHY_REJECTED,
    delivered,
    download_name,
    flagged_rows,
    inbox_label,
    kind_of,
    open_flags,
    receipt_from_form,
    receipt_of,
)
from sendhub.web.packet_changes import Change, changes_since
from services.transfers.domain import DeliveryEvent
from services.transfers.forms import render_html, render_html_body
from services.transfers.packets import amendment_changes, build_transfer_packet
from tests.factories import school_event
from tests.unit.test_forms_fidelity import CONCERN, history, moved, registered
from tests.unit.test_packet_rules import SUPPORT

SENT = datetime(2026, 1, 5, 9, tzinfo=UTC)
LATE_SCREEN = school_event("assessment_completed", occurred_at="2025-10-01T10:00:00+01:00",
                           payload={"assessor_role": "senco", "assessment_kind": "screening",
                                    "identified_needs": [{"code": "SEMH", "rank": 1}],
                                    "outcome": "sen_support", "summary": "Anxiety screen."})


def first_packet() -> TransferPacketV1:
    """A concern still open at the move, to Riverside Academy."""
    return registered(build_transfer_packet(history(CONCERN, moved()), 2, SENT))


def amended() -> tuple[TransferPacketV1, TransferPacketV1]:
    """The first packet, and its amendment after Oakfield recorded an assessment dated
    before the pupil left (which answers the open concern)."""
    h = history(CONCERN, moved(), LATE_SCREEN)
    first = registered(build_transfer_packet(h, 2, SENT))
    return first, registered(build_transfer_packet(
        h, 2, datetime(2026, 1, 9, tzinfo=UTC), up_to_version=3, supersedes=first.packet_id,
        changes=amendment_changes(first, h)))


def events(*states: str, detail: str | None = None) -> list[DeliveryEvent]:
    return [DeliveryEvent(s, datetime(2026, 1, 5 + n, tzinfo=UTC),
                          detail if s in ("rejected", "superseded") else None)
            for n, s in enumerate(states)]


# -- kinds and flags -------------------------------------------------------------------


def test_each_packet_says_what_it_is() -> None:
    packet = first_packet()
    assert kind_of(packet) == PACKET
    assert kind_of(packet.model_copy(update={"supersedes": uuid4()})) == AMENDMENT
    assert kind_of(packet.model_copy(update={"supersedes": uuid4(),
                                             "rerouted_from_lost_pupils": True})) == REROUTED
    assert kind_of(packet.model_copy(update={"la_notice": "children_missing_education"})
                   ) == LA_NOTICE


def test_open_items_are_counted_in_words() -> None:
    packet = first_packet()
    assert open_flags(packet) == ["1 open concern"]
    two = packet.model_copy(update={"concerns_open": packet.concerns_open * 2,
                                    "review_overdue_since": SENT.date()})
    assert open_flags(two) == ["2 open concerns", "Plan review overdue"]
    assert open_flags(registered(build_transfer_packet(history(SUPPORT, moved()), 2, SENT))) == []


def test_the_receipt_is_the_furthest_one_and_outlives_a_later_packet() -> None:
    assert receipt_of(events("pending", "sent")) is None
    assert delivered(events("pending", "sent")).receipt_words == NO_RECEIPT
    accepted = receipt_of(events("sent", "received", "accepted", "received"))
    assert accepted is not None and accepted.status == "accepted" and accepted.reason is None
    rejected = receipt_of(events("sent", "accepted", "rejected", detail="not ours"))
    assert rejected is not None and (rejected.status, rejected.reason) == ("rejected", "not ours")
    replaced = delivered(events("pending", "sent", "accepted", "superseded"))
    assert (replaced.state, replaced.receipt_words) == ("superseded", "Accepted")
    assert replaced.replaced == "Replaced by a later packet"
    assert replaced.sent_at == datetime(2026, 1, 6, tzinfo=UTC)
    assert delivered(events("sent")).replaced is None


def test_an_inbox_row_is_unread_until_this_principal_opens_the_packet() -> None:
    packet, other = first_packet(), first_packet().model_copy(update={"packet_id": uuid4()})
    rows = flagged_rows([InboxPacket(7, packet), InboxPacket(5, other)], {other.packet_id},
                      {packet.packet_id: events("pending", "sent")})
    assert [(r.position, r.unread, r.kind) for r in rows] == [(7, True, PACKET), (5, False, PACKET)]
    assert rows[0].sent_at == datetime(2026, 1, 6, tzinfo=UTC)  # its first `sent`
    assert rows[1].sent_at == other.generated_at  # no delivery events known: when it was built
    assert rows[0].open_items == ["1 open concern"] and rows[0].inbox == "Your setting's"


def test_an_las_two_inboxes_are_named() -> None:
    assert inbox_label("lost-pupils.la-801") == "Lost pupils"
    assert inbox_label("la-801") == "EHC plans"


# -- the receipt form ---------------------------------------------------------------------


@pytest.mark.parametrize(("status", "reason", "error"), [
    (None, None, {"status": CHOOSE}),
    ("lost", "", {"status": CHOOSE}),
    ("rejected", "  ", {"reason": WHY_REJECTED}),
    ("accepted", "looks fine", {"reason": REASON_ONLY_IF_REJECTED}),
])
def test_an_incomplete_receipt_form_says_what_to_put_right(
        status: str | None, reason: str | None, error: dict[str, str]) -> None:
    assert receipt_from_form(first_packet(), status, reason, SENT) == (None, error)


def test_a_too_long_reason_is_the_contracts_error_on_the_reason() -> None:
    receipt, errors = receipt_from_form(first_packet(), "rejected", "x" * 2001, SENT)
    assert receipt is None and list(errors) == ["reason"] and "2000" in errors["reason"]


def test_the_form_makes_the_receipt_the_api_would_take() -> None:
    packet = first_packet()
    receipt, errors = receipt_from_form(packet, "accepted", "", SENT)
    assert errors == {} and receipt is not None
    assert (receipt.packet_id, receipt.receiver, receipt.status, receipt.reason, receipt.at) == (
        packet.packet_id, "urn-100002", "accepted", None, SENT)
    rejected, _ = receipt_from_form(packet, "rejected", "  Not our pupil. ", SENT)
    assert rejected is not None and rejected.reason == "Not our pupil."


def test_downloads_are_named_as_dfe_names_ctfs_and_never_by_the_pupil() -> None:
    packet = first_packet()
    assert download_name(packet, "ctf") == "8012001_CTF_8014002_001.XML"
    assert download_name(packet, "json") == f"transfer-packet-{packet.packet_id}.json"
    assert packet.pupil.family_name not in download_name(packet, "ctf")


# -- what an amendment changed -------------------------------------------------------------


def test_an_amendment_lists_what_it_added_withdrew_and_changed() -> None:
    first, amendment = amended()
    found = changes_since(first, amendment)
    assert [(c.how, c.part) for c in found] == [
        ("changed", "SEN status"), ("added", "Current needs"),
        ("withdrawn", "Still open at the move"), ("added", "Timeline")]
    assert found[0] == Change("changed", "SEN status", "SEN support (K)", "No SEN")
    assert found[1].entry == "SEMH: Social, emotional and mental health, ranked 1"
    assert "Anxious on Monday mornings." in found[2].entry
    assert found[3].entry.startswith("1 October 2025, Oakfield Primary School (SENCO): ")


def test_an_entry_said_differently_is_changed_and_the_same_packet_changed_nothing() -> None:
    first = first_packet()
    assert changes_since(first, first) == []
    renamed = first.model_copy(update={"setting_names": {"100001": "Oakfield Academy"},
                                       "from_setting": first.from_setting.model_copy(
                                           update={"name": "Oakfield Academy"})})
    timeline = [c for c in changes_since(first, renamed) if c.part == "Timeline"]
    assert timeline and all(c.how == "changed" for c in timeline)
    assert "Oakfield Academy" in timeline[0].entry and "Oakfield Primary" in str(
        timeline[0].before)


# -- the packet's content in the web layout -------------------------------------------------


def test_the_web_page_gets_the_packets_content_without_its_document() -> None:
    first, amendment = amended()
    body = render_html_body(amendment, replaced=first,
                            after_heading='<section id="ours"><h2>Ours</h2></section>')
    assert "<html" not in body and "<style" not in body and "<body" not in body
    assert body.index("<h1>") < body.index("Amended packet") < body.index('id="ours"')
    assert body.index('id="ours"') < body.index("Timeline across every previous setting")
    page = render_html(amendment, replaced=first)
    assert 'id="ours"' not in page and page.count("<h1>") == 1
    assert page[page.index("<body>"):].count("Amended packet") == 1


def test_the_las_notice_follows_the_pupils_name_on_the_web_page_only() -> None:
    notice = first_packet().model_copy(update={"la_notice": "children_missing_education"})
    standalone, web = render_html(notice), render_html_body(notice)
    heading = "Possible child missing education"
    assert standalone.index(heading) < standalone.index("<h1>")
    assert web.index("<h1>") < web.index(heading) and web.count(heading) == 1
