"""Packets counted by delivery state on the real PostgreSQL: the same bodies as in memory."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from services.shared.settings import HubSettings
from services.transfers.postgres import PostgresTransfers
from services.transfers.repository import Transfers
from tests.packet_counts_cases import PacketCountsCases

pytestmark = pytest.mark.integration


class TestPacketCountsOnPostgres(PacketCountsCases):
    @pytest.fixture(autouse=True)
    def _database(self, scratch_db: HubSettings) -> None:
        self.conninfo = scratch_db.database_conninfo

    def transfers(self) -> Iterator[Transfers]:
        store = PostgresTransfers(self.conninfo)
        with psycopg.connect(self.conninfo) as conn:  # each test starts from empty tables
            conn.execute("ALTER TABLE transfers_delivery DISABLE TRIGGER USER")
            conn.execute("TRUNCATE transfers_history, transfers_positions, settings_registry, "
                         "transfers_delivery, transfers_packets")
            conn.execute("ALTER TABLE transfers_delivery ENABLE TRIGGER USER")
        yield store
