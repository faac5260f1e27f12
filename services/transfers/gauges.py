"""Transfers' gauges: packets by delivery state and packets waiting to be published.

Read from the store (both hub-wide: every transfers instance reports the same numbers),
by `services.shared.observing.StoreGauges`, off the event loop. A state that had packets
and now has none is reported as 0, not dropped, so a graph or an alert sees it end.
"""

from __future__ import annotations

from services.shared.metrics import OUTBOX_BACKLOG, PACKETS
from services.transfers.application import TransfersApplication

SERVICE = "transfers"


class TransfersGauges:
    """Sets `sendhub_packets{state}` and `sendhub_outbox_backlog{outbox="packets"}`."""

    def __init__(self, transfers: TransfersApplication) -> None:
        self.transfers = transfers
        self.seen: set[str] = set()

    def __call__(self) -> None:
        counts = self.transfers.packet_counts()
        self.seen |= set(counts.by_state)
        for state in self.seen:
            PACKETS.labels(state).set(counts.by_state.get(state, 0))
        OUTBOX_BACKLOG.labels(SERVICE, "packets").set(counts.unpublished)
