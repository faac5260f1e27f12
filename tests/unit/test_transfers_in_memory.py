"""Transfers' use cases on the in-memory repository: no I/O."""

from __future__ import annotations

from collections.abc import Iterator

from services.transfers.memory import InMemoryTransfers
from services.transfers.repository import Transfers
from tests.transfers_cases import TransfersCases


class TestTransfersInMemory(TransfersCases):
    def transfers(self) -> Iterator[Transfers]:
        yield InMemoryTransfers()
