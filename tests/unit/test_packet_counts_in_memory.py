"""Packets counted by delivery state, on the in-memory repository: no I/O."""

from __future__ import annotations

from collections.abc import Iterator

from services.transfers.memory import InMemoryTransfers
from services.transfers.repository import Transfers
from tests.packet_counts_cases import PacketCountsCases


class TestPacketCountsInMemory(PacketCountsCases):
    def transfers(self) -> Iterator[Transfers]:
        yield InMemoryTransfers()
