"""What a receiving setting gets, on the real broker and database with the services
running: each form, the post-16 policy, amendments, lost pupils, receipts and re-sending."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from lxml import etree

from contracts.packet import TransferPacketV1
from contracts.receipts import PacketReceiptV1
from sendhub.publishing import publish_lines, publish_receipts
from services.shared.school_days import BANK_HOLIDAYS_ONLY
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication
from services.transfers.forms import read_ctf
from tests.conftest import CLI, ROOT
from tests.e2e.conftest import RunningServices, dead_letters, eventually, inbox, packets_for
from tests.factories import post16_sharing, pupil, random_upn, school_event

pytestmark = pytest.mark.e2e

OAKFIELD = {"urn": "131001", "system": "SIMS"}
READER = ("--reason", "preparing for admission")  # as the session's auditor


@pytest.fixture(scope="module", autouse=True)
def registry(cli: CLI) -> None:
    result = cli("settings", "import", str(ROOT / "data/settings-registry-sample.csv"))
    assert "Imported 9 setting(s)" in result.stdout
    listing = cli("settings", "list").stdout
    assert "Oakfield Primary School" in listing and "8012001" in listing  # LAESTAB
    assert "10034567" in listing and "Severn Vale Learning Trust" in listing


def send(settings: HubSettings, *events: dict[str, Any]) -> None:
    publish_lines(settings, [json.dumps(e).encode() for e in events])


def move(who: dict[str, str], to: dict[str, str], effective: str, source: dict[str, str] = OAKFIELD,
         kind: str = "in_year", when: str = "2025-12-01T09:30:00+00:00") -> dict[str, Any]:
    return school_event("pupil_moved", pupil=who, source=source, occurred_at=when,
                        payload={"destination": to, "move_kind": kind, "effective_date": effective})


def agreed(moved: dict[str, Any]) -> dict[str, Any]:
    """A move to a college with the young person's agreement to share (else the college
    gets a minimal packet: tests/e2e/test_post16_sharing.py)."""
    moved["payload"]["post16_sharing"] = post16_sharing()
    return moved


def one_packet(settings: HubSettings, receiver: str, upn: str, count: int = 1) -> list[TransferPacketV1]:
    def check() -> list[TransferPacketV1]:
        found = {p.packet_id: p for p in packets_for(settings, receiver, upn)}
        assert len(found) >= count, f"{len(found)} packet(s) for {upn} in {receiver} so far"
        return list(found.values())
    result: list[TransferPacketV1] = eventually(check)
    return result


def test_a_moved_pupil_in_each_form_and_the_readable_packet_in_a_browser(
    services: RunningServices, settings: HubSettings, cli: CLI, chromium: Any, artifacts: Path,
    tmp_path: Path,
) -> None:
    upn = random_upn()
    amira = pupil(upn, "Amira")
    concern = school_event(pupil=amira, source=OAKFIELD, occurred_at="2025-10-01T09:00:00+01:00",
                           payload={"raised_by": "parent_carer", "areas_of_need": ["SEMH"],
                                    "summary": "Anxious on Monday mornings; refuses to come in."})
    send(settings,
         school_event("assessment_completed", pupil=amira, source=OAKFIELD,
                      occurred_at="2024-11-20T11:00:00+00:00"),
         school_event("plan_reviewed", pupil=amira, source=OAKFIELD,
                      occurred_at="2025-02-10T16:00:00+00:00"),
         concern,
         move(amira, {"kind": "school", "urn": "131002"}, "2026-01-12"))
    (sent,) = one_packet(settings, "urn-131002", upn)
    assert sent.from_setting.name == "Oakfield Primary School" and sent.from_setting.la_code == "801"
    assert sent.to_setting.in_registry is True and sent.to_setting.establishment_number == "2002"

    as_json = tmp_path / "packet.json"
    cli("packet", str(sent.packet_id), "--format", "json", "-o", str(as_json), *READER)
    assert TransferPacketV1.model_validate_json(as_json.read_bytes()) == sent

    as_ctf = tmp_path / "packet.xml"
    cli("packet", str(sent.packet_id), "--format", "ctf", "-o", str(as_ctf), *READER)
    root = etree.parse(str(as_ctf)).getroot()
    assert root.findtext("Header/SourceSchool/SchoolName") == "Oakfield Primary School"
    assert root.findtext("Header/DestSchool/Estab") == "2002"
    (read_back,) = read_ctf(as_ctf.read_bytes())
    assert read_back.episodes == [(e.start_date, e.provision) for e in sent.sen_provision_history]
    assert read_back.needs == [(n.rank, n.code.value) for n in sent.current_needs] == [(1, "SPLD")]
    inbox_ctf = cli("inbox", "urn-131002", "--format", "ctf", *READER).stdout
    assert upn in {p.upn for p in read_ctf(inbox_ctf.encode())}
    cli("inbox", "urn-131002", "--format", "html", "-o", str(tmp_path / "inbox"), *READER)
    assert (tmp_path / "inbox" / f"{sent.packet_id}.html").read_text().count(upn) >= 1

    as_html = tmp_path / "packet.html"
    cli("packet", str(sent.packet_id), "--format", "html", "-o", str(as_html), *READER)
    page = chromium.new_page(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
    try:
        page.goto(as_html.as_uri())
        page.screenshot(path=str(artifacts / "packet-first-screen.png"))
        page.screenshot(path=str(artifacts / "packet-full.png"), full_page=True)
        for fact in ("SEN status: SEN support (K)", "Open concerns: not yet followed up",
                     "Anxious on Monday mornings", "Short daily sessions.", "Read 40 words",
                     "Phonics 1:1", "Happier at home."):
            locator = page.get_by_text(fact).first
            assert locator.is_visible(), fact
            box = locator.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 1123, f"{fact} below the fold"
        assert page.locator(".box:has-text(\"Pupil's views\") .missing").inner_text() == "Not recorded"
        assert page.get_by_text("Timeline across every previous setting").is_visible()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") <= 3
    finally:
        page.close()


def test_a_post16_packet_carries_what_a_college_needs_and_no_more(
    services: RunningServices, settings: HubSettings,
) -> None:
    upn = random_upn()
    chloe = pupil(upn, "Chloe", uln="9276308686")
    hillcrest = {"urn": "137003", "system": "Bromcom"}
    send(settings,
         school_event(pupil=chloe, source=hillcrest, occurred_at="2021-10-05T15:00:00+01:00"),
         school_event("plan_reviewed", pupil=chloe, source=hillcrest,
                      occurred_at="2022-02-10T16:00:00+00:00"),
         school_event("assessment_completed", pupil=chloe, source=hillcrest,
                      occurred_at="2025-05-20T11:00:00+01:00"),
         school_event("plan_reviewed", pupil=chloe, source=hillcrest,
                      occurred_at="2026-02-09T14:00:00+00:00"),
         agreed(move(chloe, {"kind": "post16_provider", "ukprn": "10034567"}, "2026-09-01",
                     source=hillcrest, kind="post16", when="2026-05-15T10:00:00+01:00")))
    (packet,) = one_packet(settings, "ukprn-10034567", upn)
    assert packet.post16_basis is not None and packet.post16_basis.packet_form == "full"
    assert packet.policy == "post16" and packet.to_setting.name == "Northgate College"
    assert packet.pupil.uln == "9276308686"
    assert packet.history_summary and "1 concern(s)" in packet.history_summary[0]
    assert min(t.occurred_at for t in packet.timeline).date().isoformat() >= "2024-09-01"
    assert [r.reviewed_on.isoformat() for r in packet.plans.reviews] == ["2026-02-09"]
    assert packet.plans.current is not None and packet.current_needs


def test_a_late_entry_amends_the_packet_and_a_setting_unknown_to_the_registry_still_gets_it(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    ben = pupil(upn, "Ben")
    send(settings, school_event(pupil=ben, source=OAKFIELD),
         move(ben, {"kind": "school", "urn": "100002"}, "2026-01-12"))
    (first,) = one_packet(settings, "urn-100002", upn)
    assert first.to_setting.in_registry is False  # not in the registry: delivered anyway
    # Oakfield records a review dated after Ben left: kept, no amendment of its own...
    send(settings, school_event("plan_reviewed", pupil=ben, source=OAKFIELD,
                                occurred_at="2026-02-02T15:00:00+00:00"))
    eventually(lambda: _stored_versions(settings, upn, 3))
    assert len(packets_for(settings, "urn-100002", upn)) == 1
    # ...then an assessment dated before he left: an amendment, which marks both.
    send(settings, school_event("assessment_completed", pupil=ben, source=OAKFIELD,
                                occurred_at="2026-01-09T11:00:00+00:00"))
    packets = one_packet(settings, "urn-100002", upn, count=2)
    (amendment,) = [p for p in packets if p.packet_id != first.packet_id]
    assert amendment.supersedes == first.packet_id
    assert [c.split("(")[-1] for c in amendment.changes] == [
        "recorded after the pupil had left, history version 3)",
        "recorded late, history version 4)"]
    assert {t.history_version: t.recorded_after_leaving for t in amendment.timeline} == {
        1: False, 2: False, 3: True, 4: False}
    assert amendment.sen_status == "sen_support" and amendment.history_version == 4

    rows = {r["packet_id"]: r for r in map(json.loads, cli(
        "transfers", "--receiver", "urn-100002", "--json").stdout.splitlines())}
    assert rows[str(first.packet_id)]["state"] == "superseded"
    assert rows[str(amendment.packet_id)]["kind"] == "amendment"
    listing = cli("transfers", "--receiver", "urn-100002").stdout
    assert "not in registry" in listing


def test_a_lost_pupil_goes_to_the_local_authority_then_to_the_school_that_is_found(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    upn = random_upn()
    grace = pupil(upn, "Grace")
    riverside = {"urn": "131002", "system": "Arbor"}
    send(settings, school_event(pupil=grace, source=riverside),
         move(grace, {"kind": "unknown"}, "2026-03-20", source=riverside))
    (lost,) = one_packet(settings, "lost-pupils.la-801", upn)  # Riverside is in LA 801
    assert lost.to_setting.kind == "unknown"
    send(settings, move(grace, {"kind": "school", "urn": "137004"}, "2026-03-20", source=riverside,
                        when="2026-04-20T10:00:00+01:00"))
    (found,) = one_packet(settings, "urn-137004", upn)
    assert found.supersedes == lost.packet_id and found.rerouted_from_lost_pupils
    assert found.to_setting.name == "Kingsweston Academy"
    assert [c.summary for c in found.concerns_open] == ["Reading well below peers."]
    rows = {r["packet_id"]: r for r in map(json.loads, cli(
        "transfers", "--receiver", "lost-pupils", "--json").stdout.splitlines())}
    assert rows[str(lost.packet_id)]["state"] == "rerouted"


def receipt(packet: TransferPacketV1, status: str, receiver: str | None = None,
            reason: str | None = None, at: datetime | None = None) -> PacketReceiptV1:
    return PacketReceiptV1(packet_id=packet.packet_id, receiver=receiver or
                           packet.to_setting.receiver, status=status,  # type: ignore[arg-type]
                           reason=reason, at=at or datetime.now(UTC))


def test_receipts_move_the_delivery_state_and_bad_receipts_are_kept_with_a_reason(
    services: RunningServices, settings: HubSettings, cli: CLI,
) -> None:
    ella, farhan = pupil(random_upn(), "Ella"), pupil(random_upn(), "Farhan")
    send(settings, move(ella, {"kind": "school", "urn": "137003"}, "2026-01-12"),
         move(farhan, {"kind": "school", "urn": "137004"}, "2026-01-12"))
    (to_hillcrest,) = one_packet(settings, "urn-137003", ella["upn"])
    (to_kingsweston,) = one_packet(settings, "urn-137004", farhan["upn"])
    received = receipt(to_hillcrest, "received")
    publish_receipts(settings, [received, received,  # the same receipt twice: stored once
                                receipt(to_hillcrest, "accepted"),
                                receipt(to_kingsweston, "rejected", reason="Not on our roll")])

    def states() -> dict[str, dict[str, Any]]:
        rows = {r["packet_id"]: r for r in map(json.loads, cli("transfers", "--json").stdout.splitlines())}
        assert rows[str(to_hillcrest.packet_id)]["state"] == "accepted"
        assert rows[str(to_kingsweston.packet_id)]["state"] == "rejected"
        return rows

    rows = eventually(states)
    assert rows[str(to_kingsweston.packet_id)]["reason"] == "Not on our roll"
    store = TransfersApplication.for_settings(settings)
    try:
        kept = [e.state for e in store.delivery_events(to_hillcrest.packet_id)]
    finally:
        store.close()
    assert kept == ["pending", "sent", "received", "accepted"]

    unknown = receipt(to_hillcrest, "received").model_copy(update={"packet_id": uuid4()})
    wrong = receipt(to_hillcrest, "accepted", receiver="urn-131001")
    unexplained = json.dumps({"packet_id": str(to_kingsweston.packet_id),
                              "receiver": "urn-137004", "status": "rejected",
                              "at": datetime.now(UTC).isoformat()}).encode()
    sent = publish_receipts(settings, [unknown, wrong, unexplained])

    def rejected() -> dict[tuple[int, int], Any]:
        letters = {(d.partition, d.offset): d for d in dead_letters(settings)
                   if d.source_topic == settings.topics.packet_receipts}
        assert all(p in letters for p in sent.positions), "dead letters not all there yet"
        return letters

    letters = eventually(rejected)
    by_position = [letters[p] for p in sent.positions]
    assert [d.reason for d in by_position] == ["unknown_packet", "wrong_receiver", "schema_invalid"]
    assert "was sent to urn-137003, not to urn-131001" in by_position[1].problems[0].message
    assert "must say why" in by_position[2].problems[0].message
    assert by_position[2].original == unexplained
    assert eventually(states)[str(to_hillcrest.packet_id)]["state"] == "accepted"


def test_a_packet_with_no_receipt_is_published_again_after_15_school_days(
    services: RunningServices, settings: HubSettings,
) -> None:
    dylan = pupil(random_upn(), "Dylan")
    send(settings, move(dylan, {"kind": "school", "urn": "139007"}, "2026-01-12"))
    (packet,) = one_packet(settings, "urn-139007", dylan["upn"])
    # Fifteen school days on (an injected clock; bank holidays are not school days, and
    # no term dates are imported here): the packet is overdue and queued again; the
    # running transfers service publishes it within its delivery interval.
    now = datetime.now(UTC)
    later = now + (BANK_HOLIDAYS_ONLY.add_school_days(now.date(), 15) - now.date())
    store = TransfersApplication.for_settings(settings, clock=lambda: later)
    try:
        (overdue,) = [d for d in store.deliveries(receiver="urn-139007", overdue_only=True)
                      if d.packet_id == packet.packet_id]
        assert overdue.school_days_waiting >= 15
        assert packet.packet_id in store.resend_overdue()

        def published_twice() -> list[dict[str, bytes]]:
            copies = [h for p, h in inbox(settings, "urn-139007") if p.packet_id == packet.packet_id]
            assert len(copies) == 2, f"{len(copies)} copies so far"
            return copies

        copies = eventually(published_twice)
        assert [h["sendhub-attempt"] for h in copies] == [b"1", b"2"]
        assert eventually(lambda: _attempts(store, packet.packet_id)) == 2
    finally:
        store.close()


def _attempts(store: TransfersApplication, packet_id: Any) -> int:
    (row,) = [d for d in store.deliveries() if d.packet_id == packet_id]
    assert row.delivery.attempts == 2
    return row.delivery.attempts


def _stored_versions(settings: HubSettings, upn: str, count: int) -> None:
    store = TransfersApplication.for_settings(settings)
    try:
        assert len(store.history_of(upn)) == count, "not all projected yet"
    finally:
        store.close()
