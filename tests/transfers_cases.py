"""Every transfers use case, written once and run on two backends: in memory
(tests/unit/test_transfers_in_memory.py, no I/O) and on the real PostgreSQL
(tests/integration/test_transfers_on_postgres.py), as eventsourcing's own tests run one
case over several recorders.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.history import PupilHistoryEventV1
from contracts.inbound import INBOUND_EVENT
from services.shared.school_days import BANK_HOLIDAYS_ONLY, SchoolCalendar, TermPeriod
from services.transfers.application import RefusedReceipt, TransfersApplication
from services.transfers.domain import NotAuthorised, Receipt, UnknownPacket, WrongReceiver
from services.transfers.packets import packet_id_for
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import ConsumedPosition, Transfers
from tests.factories import correction, la_event, random_upn, school_event

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def history_messages(upn: str, *events: dict[str, Any], first_version: int = 1
                     ) -> list[PupilHistoryEventV1]:
    """A pupil's history as records relays it, versions from `first_version`."""
    pupil = {"upn": upn, "given_name": "Amira", "family_name": "Khan",
             "date_of_birth": "2016-05-14"}
    return [PupilHistoryEventV1(
        pupil_id=UUID(int=1), upn=upn, version=v, notification_id=v, recorded_at=NOW,
        upn_is_temporary=False, event=INBOUND_EVENT.validate_python(
            {**e, "pupil": pupil}, context={"trusted": True}),
        event_hash=f"{v:064x}") for v, e in enumerate(events, start=first_version)]


def at(topic: str, messages: list[PupilHistoryEventV1], first_offset: int = 0
       ) -> list[tuple[PupilHistoryEventV1, ConsumedPosition]]:
    return [(m, ConsumedPosition(topic, 0, first_offset + i)) for i, m in enumerate(messages)]


def moved(to: dict[str, str], effective: str = "2025-11-10") -> dict[str, Any]:
    return school_event("pupil_moved", occurred_at="2025-10-20T09:00:00+01:00",
                        payload={"destination": to, "move_kind": "in_year",
                                 "effective_date": effective})


CONCERN = school_event(occurred_at="2025-03-01T10:00:00+00:00")
LATE = school_event("assessment_completed", occurred_at="2025-11-01T11:00:00+00:00")
TO_SCHOOL = {"kind": "school", "urn": "100002"}
LA_801_PLAN = (  # LA 801's EHC sequence for one pupil, ending with the plan it maintains
    la_event("ehc_request_received", occurred_at="2025-01-13T10:00:00+00:00"),
    la_event("ehc_assessment_decision", occurred_at="2025-02-17T10:00:00+00:00"),
    la_event("ehc_plan_decision", occurred_at="2025-04-28T10:00:00+01:00"),
    la_event("ehc_plan_issued", occurred_at="2025-05-26T10:00:00+01:00"),
)


def registry_with(destination_la: str) -> list[RegisteredSetting]:
    """The sending school in LA 801, the receiving one in `destination_la`."""
    names = {"801": "Bristol, City of", "803": "South Gloucestershire"}
    return [RegisteredSetting(urn="100001", name="Oak Primary", phase="Primary", la_code="801",
                              la_name=names["801"], establishment_number="2001"),
            RegisteredSetting(urn="100002", name="Brook Lane", phase="Primary",
                              la_code=destination_la, la_name=names[destination_la],
                              establishment_number="2002")]


class OnABackend:
    """Subclasses provide `transfers()`: a fresh, empty store of their backend; each
    test gets an application on it with a clock it can move."""

    def transfers(self) -> Iterator[Transfers]:
        raise NotImplementedError

    def import_registry(self, app: TransfersApplication,
                        settings: list[RegisteredSetting]) -> None:
        """The settings registry as the operator imports it (a backend whose transfers
        may not write it imports it otherwise)."""
        app.import_settings(settings)

    @pytest.fixture
    def app(self) -> Iterator[TransfersApplication]:
        for store in self.transfers():
            self.clock = Clock()
            application = TransfersApplication(store, clock=self.clock)
            yield application
            application.close()


class TransfersCases(OnABackend):
    """Every transfers use case."""

    def test_a_move_issues_one_packet_whatever_is_redelivered_or_replayed(
        self, app: TransfersApplication,
    ) -> None:
        upn = random_upn()
        batch = at(f"history-{upn}", history_messages(upn, CONCERN, moved(TO_SCHOOL)))
        [packet_id] = app.record_history(batch)
        # The same positions again (a redelivery) and the same events at new positions
        # (the relay re-sent them) add nothing.
        assert app.record_history(batch) == []
        assert app.record_history(at(f"history-{upn}", [m for m, _ in batch], 10)) == []

        [pending] = [p for p in app.pending_packets() if p.packet_id == packet_id]
        assert pending.receiver == "urn-100002" and pending.attempt == 1
        app.mark_published([pending])
        assert all(p.packet_id != packet_id for p in app.pending_packets())
        packet = app.packet(packet_id)
        assert packet is not None and packet.pupil.upn == upn and packet.history_version == 2
        assert [c.areas_of_need for c in packet.concerns_open] == [["SPLD"]]
        assert [e.state for e in app.delivery_events(packet_id)] == ["pending", "sent"]
        assert [h.version for h in app.history_of(upn)] == [1, 2]

    def test_a_batch_of_two_partitions_keeps_each_position_and_a_redelivery_of_either_adds_nothing(
        self, app: TransfersApplication,
    ) -> None:
        first, second = random_upn(), random_upn()
        topic = f"history-{first}"
        on_0 = at(topic, history_messages(first, CONCERN, moved(TO_SCHOOL)))
        on_1 = [(m, ConsumedPosition(topic, 1, 5 + i)) for i, m in
                enumerate(history_messages(second, CONCERN, moved(TO_SCHOOL)))]
        # Interleaved as a poll of two partitions returns them.
        issued = app.record_history([on_0[0], on_1[0], on_0[1], on_1[1]])
        assert len(issued) == 2
        # Partition 1 was kept up to offset 6: an event at a position before is not new
        # (a redelivery), one after is.
        later = history_messages(second, LATE, first_version=3)
        assert app.record_history([(later[0], ConsumedPosition(topic, 1, 4))]) == []
        assert [h.version for h in app.history_of(second)] == [1, 2]
        assert app.record_history(on_0) == [] and app.record_history(on_1[1:]) == []
        app.record_history([(later[0], ConsumedPosition(topic, 1, 7))])
        assert [h.version for h in app.history_of(second)] == [1, 2, 3]
        assert [h.version for h in app.history_of(first)] == [1, 2]

    def test_a_move_after_a_missing_event_waits_until_the_history_is_complete(
        self, app: TransfersApplication,
    ) -> None:
        upn = random_upn()
        topic = f"history-{upn}"
        concern, move = history_messages(upn, CONCERN, moved(TO_SCHOOL))
        # The concern was set aside (dead-lettered): the move alone must not make a
        # packet that says the pupil has no SEN history.
        assert app.record_history(at(topic, [move], 1)) == []
        assert app.deliveries(upn=upn) == []
        # Delivered again (after the fault was fixed): the packet goes out, complete.
        [packet_id] = app.record_history(at(topic, [concern], 2))
        packet = app.packet(packet_id)
        assert packet is not None and packet.has_sen_history and packet.history_version == 2
        assert [c.areas_of_need for c in packet.concerns_open] == [["SPLD"]]

    def test_a_late_entry_from_the_former_school_issues_an_amendment(
        self, app: TransfersApplication,
    ) -> None:
        upn = random_upn()
        topic = f"history-{upn}"
        [first] = app.record_history(at(topic, history_messages(upn, CONCERN, moved(TO_SCHOOL))))
        # Weeks later the former school records an assessment dated before the move.
        self.clock.now += timedelta(weeks=3)
        [amendment] = app.record_history(at(topic, history_messages(upn, LATE, first_version=3),
                                            first_offset=2))
        packet = app.packet(amendment)
        assert packet is not None and packet.supersedes == first and packet.history_version == 3
        assert len(packet.changes) == 1 and "recorded late" in packet.changes[0]
        [old, new] = app.deliveries(upn=upn)
        assert (old.packet_id, old.delivery.state, new.kind) == (first, "superseded", "amendment")

    def test_a_retraction_of_what_the_receiver_had_issues_an_amendment_once(
        self, app: TransfersApplication,
    ) -> None:
        upn = random_upn()
        topic = f"history-{upn}"
        [first] = app.record_history(at(topic, history_messages(upn, CONCERN, moved(TO_SCHOOL))))
        self.clock.now += timedelta(weeks=5)
        withdrawn = history_messages(upn, correction("entry_retracted", CONCERN),
                                     first_version=3)
        [amendment] = app.record_history(at(topic, withdrawn, first_offset=2))
        packet = app.packet(amendment)
        assert packet is not None and packet.supersedes == first and packet.history_version == 3
        [change] = packet.changes
        assert change.startswith("Withdrawn: the entry of 1 March 2025 recorded by URN 100001")
        assert CONCERN["payload"]["summary"] not in packet.model_dump_json()
        assert packet.concerns_open == [] and not packet.has_sen_history
        # The same correction again (the relay re-sent it) amends nothing more.
        assert app.record_history(at(topic, withdrawn, first_offset=7)) == []
        states = {d.packet_id: d.delivery.state for d in app.deliveries(upn=upn)}
        assert states == {first: "superseded", amendment: "pending"}

    def test_a_late_entry_in_the_same_batch_as_the_move_still_amends_its_packet(
        self, app: TransfersApplication,
    ) -> None:
        """The move and, behind it, the LA's plan amended before the pupil arrives, in one
        batch (a backfill): the packet goes out, then its amendment with the plan."""
        upn = random_upn()
        amended = la_event("ehc_plan_amended", occurred_at="2025-11-03T10:00:00+00:00",
                           payload={"amended_on": "2025-11-03", "named_setting_urn": "100002"})
        first, amendment = app.record_history(at(f"history-{upn}", history_messages(
            upn, *LA_801_PLAN, moved(TO_SCHOOL), amended)))
        packet = app.packet(amendment)
        assert packet is not None and packet.supersedes == first
        assert packet.ehc_plan is not None and packet.ehc_plan.named_setting_urn == "100002"
        assert any("LA 801 amended the EHC plan" in c for c in packet.changes)

    def test_a_lost_pupils_packet_is_rerouted_when_the_school_is_known(
        self, app: TransfersApplication,
    ) -> None:
        upn = random_upn()
        topic = f"history-{upn}"
        [lost] = app.record_history(at(topic, history_messages(upn, moved({"kind": "unknown"}))))
        assert app.packets_for("lost-pupils")[-1].packet_id == lost
        [found] = app.record_history(at(topic, history_messages(
            upn, moved(TO_SCHOOL, effective="2025-12-01"), first_version=2), first_offset=1))
        packet = app.packet(found)
        assert packet is not None and packet.supersedes == lost and packet.rerouted_from_lost_pupils
        states = {d.packet_id: d.delivery.state for d in app.deliveries(upn=upn)}
        assert states == {lost: "rerouted", found: "pending"}

    def _sent_packet(self, app: TransfersApplication) -> UUID:
        upn = random_upn()
        [packet_id] = app.record_history(at(f"history-{upn}", history_messages(
            upn, moved(TO_SCHOOL))))
        app.mark_published(app.pending_packets())
        return packet_id

    def test_a_receipt_sent_twice_or_redelivered_is_stored_once(
        self, app: TransfersApplication,
    ) -> None:
        packet_id = self._sent_packet(app)
        receipt = Receipt(packet_id, "urn-100002", "received", NOW)
        topic = f"receipts-{packet_id}"
        refused: list[RefusedReceipt] = []
        assert app.record_receipts([(receipt, ConsumedPosition(topic, 0, 0)),
                                    (receipt, ConsumedPosition(topic, 0, 1))], refused.extend) == 1
        assert app.record_receipts([(receipt, ConsumedPosition(topic, 0, 0))],
                                   refused.extend) == 0
        assert refused == []
        assert [e.state for e in app.delivery_events(packet_id)] == ["pending", "sent", "received"]

    def test_receipts_for_unknown_packets_or_from_the_wrong_setting_are_refused(
        self, app: TransfersApplication,
    ) -> None:
        packet_id = self._sent_packet(app)
        topic = f"receipts-{packet_id}"
        wrong = Receipt(packet_id, "urn-100003", "accepted", NOW)
        unknown = Receipt(uuid4(), "urn-100002", "accepted", NOW)
        refused: list[RefusedReceipt] = []
        assert app.record_receipts([(wrong, ConsumedPosition(topic, 0, 0)), (None, ConsumedPosition(
            topic, 0, 1)), (unknown, ConsumedPosition(topic, 0, 2))], refused.extend) == 0
        assert [(type(r.error), r.position.offset) for r in refused] == [
            (WrongReceiver, 0), (UnknownPacket, 2)]
        assert str(refused[0].error) == (
            f"packet {packet_id} was sent to urn-100002, not to urn-100003")
        assert app.deliveries(upn=None)[-1].delivery.state == "sent"

    def test_when_refused_receipts_cannot_be_kept_their_position_is_not_stored(
        self, app: TransfersApplication,
    ) -> None:
        packet_id = self._sent_packet(app)
        topic = f"receipts-{packet_id}"
        good = Receipt(packet_id, "urn-100002", "accepted", NOW)
        wrong = Receipt(packet_id, "urn-100009", "accepted", NOW)

        def broker_down(refused: list[RefusedReceipt]) -> None:
            raise ConnectionError("broker unreachable")

        batch = [(good, ConsumedPosition(topic, 0, 0)), (wrong, ConsumedPosition(topic, 0, 1))]
        with pytest.raises(ConnectionError):
            app.record_receipts(batch, broker_down)
        # Nothing was kept: the good receipt and the position come back with the retry.
        assert [e.state for e in app.delivery_events(packet_id)] == ["pending", "sent"]
        kept: list[RefusedReceipt] = []
        assert app.record_receipts(batch, kept.extend) == 1
        assert len(kept) == 1

    def test_a_packet_with_no_receipt_for_15_school_days_is_sent_again(
        self, app: TransfersApplication,
    ) -> None:
        packet_id = self._sent_packet(app)
        assert app.resend_overdue() == []
        self.clock.now = NOW + timedelta(days=21)  # 15 weekdays later
        assert [d.packet_id for d in app.deliveries(overdue_only=True)] == [packet_id]
        assert app.resend_overdue() == [packet_id]
        [again] = app.pending_packets()
        assert (again.packet_id, again.attempt) == (packet_id, 2)
        app.mark_published([again])
        [delivery] = app.deliveries()
        # Still overdue (counted from the first send), but not due again for 15 days.
        assert delivery.delivery.attempts == 2 and delivery.overdue
        assert app.resend_overdue() == []

    def test_the_resend_window_counts_the_school_days_of_the_receivers_la(
        self, app: TransfersApplication,
    ) -> None:
        """A half-term of the receiving school's LA (801, in the registry) is not counted;
        without term dates, the same days are 15 weekdays less bank holidays."""
        self.import_registry(app, [RegisteredSetting(
            urn="100002", name="Brook Lane Primary", phase="Primary", la_code="801",
            establishment_number="2002")])
        app.calendar_source = SchoolCalendar([
            TermPeriod("801", "Autumn 1", date(2025, 9, 3), date(2025, 10, 24)),
            TermPeriod("801", "Spring 1", date(2026, 1, 5), date(2026, 2, 13)),
            TermPeriod("801", "Spring 2", date(2026, 2, 23), date(2026, 3, 27)),
            TermPeriod("801", "Summer 2", date(2026, 6, 8), date(2026, 7, 22))])
        self.clock.now = datetime(2026, 2, 2, 9, tzinfo=UTC)  # a Monday
        packet_id = self._sent_packet(app)
        self.clock.now = datetime(2026, 2, 23, 9, tzinfo=UTC)  # half-term 16-20 February
        [row] = app.deliveries()
        assert (row.receiver_la_code, row.school_days_waiting, row.overdue) == ("801", 10, False)
        assert app.resend_overdue() == []
        app.calendar_source = BANK_HOLIDAYS_ONLY
        assert app.deliveries()[0].school_days_waiting == 15
        app.calendar_source = lambda: SchoolCalendar([  # as StoredCalendar gives it
            TermPeriod("801", "Autumn 1", date(2025, 9, 3), date(2025, 10, 24)),
            TermPeriod("801", "Spring 1", date(2026, 1, 5), date(2026, 2, 13)),
            TermPeriod("801", "Spring 2", date(2026, 2, 23), date(2026, 3, 27)),
            TermPeriod("801", "Summer 2", date(2026, 6, 8), date(2026, 7, 22))])
        self.clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
        assert app.deliveries()[0].school_days_waiting == 15
        assert app.resend_overdue() == [packet_id]

    def test_a_packet_too_large_is_condensed_or_kept_undeliverable_and_never_published(
        self, app: TransfersApplication,
    ) -> None:
        long = school_event(occurred_at="2025-03-01T10:00:00+00:00", payload={
            "raised_by": "teacher", "areas_of_need": ["SPLD"], "summary": "y" * 5_000})
        upn, other = random_upn(), random_upn()
        app.max_packet_bytes = 6_000  # the 5,000-character concern does not fit whole
        [condensed] = app.record_history(at(f"history-{upn}", history_messages(
            upn, long, moved(TO_SCHOOL))))
        packet = app.packet(condensed)
        assert packet is not None and packet.condensed
        assert len(packet.concerns_open[0].summary) < 1_200
        app.max_packet_bytes = 2_000  # too small even condensed
        [refused] = app.record_history(at(f"history-{other}", history_messages(
            other, long, moved(TO_SCHOOL))))
        [step] = app.delivery_events(refused)
        assert step.state == "undeliverable" and "over the 2,000-byte limit" in (step.detail or "")
        assert [p.packet_id for p in app.pending_packets()] == [condensed]
        [row] = [d for d in app.deliveries() if d.packet_id == refused]
        assert row.delivery.state == "undeliverable"

    def test_packets_carry_the_registry_names_and_unknown_receivers_are_noted(
        self, app: TransfersApplication,
    ) -> None:
        app.import_settings([RegisteredSetting(urn="100001", name="Oak Primary",
                                               phase="Primary", la_code="801",
                                               establishment_number="2001")])
        assert [s.name for s in app.registered_settings()] == ["Oak Primary"]
        upn = random_upn()
        [packet_id] = app.record_history(at(f"history-{upn}", history_messages(
            upn, moved(TO_SCHOOL))))
        packet = app.packet(packet_id)
        assert packet is not None
        assert (packet.from_setting.name, packet.from_setting.in_registry) == ("Oak Primary", True)
        assert packet.to_setting.in_registry is False
        assert app.delivery_events(packet_id)[0].detail == (
            "urn-100002 is not in the settings registry")

    # -- the local authority's notices (issue 13) ---------------------------------------

    def test_a_plan_moving_to_another_la_notifies_both_las_once_beside_the_settings_packet(
        self, app: TransfersApplication,
    ) -> None:
        self.import_registry(app, registry_with("803"))
        upn = random_upn()
        messages = history_messages(upn, *LA_801_PLAN, moved(TO_SCHOOL))
        batch = at(f"history-{upn}", messages)
        move_id = messages[-1].event.event_id
        issued = app.record_history(batch)
        into, out_of = (packet_id_for(upn, move_id, receiver=r) for r in ("la-803", "la-801"))
        assert issued == [packet_id_for(upn, move_id), into, out_of]
        # Redelivered, or re-sent at new positions: stored once.
        assert app.record_history(batch) == []
        assert app.record_history(at(f"history-{upn}", [m for m, _ in batch], 10)) == []
        [setting] = app.packets_for("urn-100002")
        [notice_in] = app.packets_for("la-803")
        [notice_out] = app.packets_for("la-801")
        assert setting.la_notice is None and setting.ehc_plan is not None
        assert setting.ehc_plan.confirmed_by_la and setting.ehc_plan.maintaining_la == "801"
        assert setting.ehc_plan.maintaining_la_name == "Bristol, City of"
        assert (notice_in.la_notice, notice_in.receiver) == ("ehc_plan_transfer_in", "la-803")
        assert (notice_out.la_notice, notice_out.receiver) == ("ehc_plan_transfer_out", "la-801")
        assert [c.la_code for c in notice_in.clocks_now_running] == ["803", "803"]
        assert notice_in.clocks_now_running == notice_out.clocks_now_running
        assert notice_in.timeline == setting.timeline and notice_in.ehc_plan == setting.ehc_plan
        inboxes = {p.packet_id: p.inbox for p in app.pending_packets()}
        assert inboxes == {setting.packet_id: "urn-100002", into: "la-803", out_of: "la-801"}
        kinds = {d.packet_id: (d.kind, d.receiver, d.receiver_name)
                 for d in app.deliveries(upn=upn)}
        assert kinds == {setting.packet_id: ("first", "urn-100002", "Brook Lane"),
                         into: ("la_notice", "la-803", None), out_of: ("la_notice", "la-801", None)}

    def test_an_la_notice_is_never_taken_for_the_settings_packet(
        self, app: TransfersApplication,
    ) -> None:
        self.import_registry(app, registry_with("803"))
        upn = random_upn()
        topic = f"history-{upn}"
        [first, into, out_of] = app.record_history(at(topic, history_messages(
            upn, *LA_801_PLAN, moved(TO_SCHOOL))))
        # The former school catches up: the amendment replaces the setting's packet only.
        self.clock.now += timedelta(weeks=3)
        [amendment] = app.record_history(at(topic, history_messages(
            upn, LATE, first_version=6), first_offset=5))
        packet = app.packet(amendment)
        assert packet is not None and packet.supersedes == first and packet.la_notice is None
        assert packet.receiver == "urn-100002"
        states = {d.packet_id: d.delivery.state for d in app.deliveries(upn=upn)}
        assert states == {first: "superseded", into: "pending", out_of: "pending",
                          amendment: "pending"}

    def test_a_plan_moving_within_its_la_or_a_pupil_without_one_notifies_no_la(
        self, app: TransfersApplication,
    ) -> None:
        self.import_registry(app, registry_with("801"))
        with_plan, without = random_upn(), random_upn()
        assert len(app.record_history(at(f"history-{with_plan}", history_messages(
            with_plan, *LA_801_PLAN, moved(TO_SCHOOL))))) == 1
        assert len(app.record_history(at(f"history-{without}", history_messages(
            without, CONCERN, moved(TO_SCHOOL))))) == 1
        assert app.packets_for("la-801") == [] and app.packets_for("la-803") == []

    def test_a_lost_pupil_with_a_plan_is_a_cme_notice_and_once_found_elsewhere_the_plan_follows(
        self, app: TransfersApplication,
    ) -> None:
        self.import_registry(app, registry_with("803"))
        upn = random_upn()
        topic = f"history-{upn}"
        [lost] = app.record_history(at(topic, history_messages(
            upn, *LA_801_PLAN, moved({"kind": "unknown"}))))
        packet = app.packet(lost)
        assert packet is not None and packet.la_notice == "children_missing_education"
        assert [p.inbox for p in app.pending_packets()] == ["lost-pupils.la-801"]
        [found, into, out_of] = app.record_history(at(topic, history_messages(
            upn, moved(TO_SCHOOL, effective="2025-12-01"), first_version=6), first_offset=5))
        rerouted = app.packet(found)
        assert rerouted is not None and rerouted.supersedes == lost and rerouted.la_notice is None
        notice = app.packet(into)
        assert notice is not None and notice.supersedes is None
        assert not notice.rerouted_from_lost_pupils and notice.receiver == "la-803"
        states = {d.packet_id: d.delivery.state for d in app.deliveries(upn=upn)}
        assert states == {lost: "rerouted", found: "pending", into: "pending",
                          out_of: "pending"}

    def test_an_la_answers_for_the_packets_in_either_of_its_inboxes_only(
        self, app: TransfersApplication,
    ) -> None:
        self.import_registry(app, registry_with("803"))
        upn, lost_upn = random_upn(), random_upn()
        [_, into, _] = app.record_history(at(f"history-{upn}", history_messages(
            upn, *LA_801_PLAN, moved(TO_SCHOOL))))
        [lost] = app.record_history(at(f"history-{lost_upn}", history_messages(
            lost_upn, moved({"kind": "unknown"}))))
        app.mark_published(app.pending_packets())
        la_803 = ("lost-pupils.la-803", "la-803")
        la_801 = ("lost-pupils.la-801", "la-801")
        topic = f"receipts-{upn}"
        refused: list[RefusedReceipt] = []
        assert app.record_receipts([
            (Receipt(into, "la-803", "received", NOW, from_inboxes=la_803),
             ConsumedPosition(topic, 0, 0)),
            (Receipt(lost, "lost-pupils", "accepted", NOW, from_inboxes=la_801),
             ConsumedPosition(topic, 0, 1)),
            (Receipt(into, "la-803", "accepted", NOW, from_inboxes=la_801),
             ConsumedPosition(topic, 0, 2)),
            (Receipt(lost, "lost-pupils", "accepted", NOW, from_inboxes=la_803),
             ConsumedPosition(topic, 0, 3)),
        ], refused.extend) == 2
        assert [(type(r.error), r.position.offset) for r in refused] == [
            (NotAuthorised, 2), (NotAuthorised, 3)]
        assert [e.state for e in app.delivery_events(into)] == ["pending", "sent", "received"]
