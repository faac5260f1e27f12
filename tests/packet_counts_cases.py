"""Packets counted by delivery state for the metrics, written once and run on both
backends (in memory: tests/unit/test_packet_counts_in_memory.py; PostgreSQL:
tests/integration/test_packet_counts_on_postgres.py), like tests/transfers_cases.py."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from services.shared.metrics import OUTBOX_BACKLOG, PACKETS, REGISTRY
from services.transfers.application import RefusedReceipt, TransfersApplication
from services.transfers.domain import Receipt
from services.transfers.gauges import TransfersGauges
from services.transfers.repository import ConsumedPosition
from tests.factories import random_upn
from tests.transfers_cases import (
    CONCERN,
    LATE,
    TO_SCHOOL,
    OnABackend,
    at,
    history_messages,
    moved,
)


class PacketCountsCases(OnABackend):
    def _move(self, app: TransfersApplication) -> tuple[str, str]:
        upn = random_upn()
        [packet_id] = app.record_history(at(f"history-{upn}", history_messages(
            upn, CONCERN, moved(TO_SCHOOL))))
        return upn, str(packet_id)

    def test_packets_are_counted_by_the_state_sendhub_transfers_shows(
        self, app: TransfersApplication,
    ) -> None:
        # Four pupils move: one packet waits, one is sent, one is received, and one is
        # sent and then replaced by an amendment (which waits).
        for _ in range(3):
            self._move(app)
        app.mark_published(app.pending_packets())
        self._move(app)
        received, amended = [d for d in app.deliveries() if d.delivery.state == "sent"][:2]
        receipt = Receipt(received.packet_id, received.receiver, "received", self.clock.now)
        refused: list[RefusedReceipt] = []
        assert app.record_receipts([(receipt, ConsumedPosition("receipts", 0, 0))],
                                   refused.extend) == 1
        self.clock.now += timedelta(weeks=3)
        app.record_history(at(f"history-{amended.upn}", history_messages(
            amended.upn, LATE, first_version=3), first_offset=2))

        counts = app.packet_counts()
        assert counts.by_state == dict(Counter(d.delivery.state for d in app.deliveries()))
        assert counts.by_state == {"pending": 2, "sent": 1, "received": 1, "superseded": 1}
        assert counts.unpublished == 2

    def test_the_gauges_report_a_state_that_emptied_as_zero(
        self, app: TransfersApplication,
    ) -> None:
        PACKETS.clear()  # the registry is the process's: start from no series
        OUTBOX_BACKLOG.clear()
        gauges = TransfersGauges(app)
        self._move(app)
        gauges()
        assert REGISTRY.get_sample_value("sendhub_packets", {"state": "pending"}) == 1
        assert REGISTRY.get_sample_value("sendhub_outbox_backlog", {
            "service": "transfers", "outbox": "packets"}) == 1
        app.mark_published(app.pending_packets())
        gauges()
        assert REGISTRY.get_sample_value("sendhub_packets", {"state": "pending"}) == 0
        assert REGISTRY.get_sample_value("sendhub_packets", {"state": "sent"}) == 1
        assert REGISTRY.get_sample_value("sendhub_outbox_backlog", {
            "service": "transfers", "outbox": "packets"}) == 0
