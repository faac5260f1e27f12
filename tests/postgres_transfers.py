"""An emptied PostgreSQL transfers store, for the use-case tests run on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from services.shared.pupil_keys import pupil_keys_for
from services.shared.settings import HubSettings
from services.transfers.postgres import PostgresTransfers
from services.transfers.repository import Transfers


class OnPostgres:
    """Mix in before a cases class: each test gets the module's scratch database with
    transfers' tables emptied (the delivery trigger set aside for the truncation)."""

    @pytest.fixture(autouse=True)
    def _database(self, scratch_db: HubSettings) -> None:
        self.conninfo = scratch_db.database_conninfo
        self.settings = scratch_db

    def transfers(self) -> Iterator[Transfers]:
        store = PostgresTransfers(self.conninfo, pupil_keys_for(self.settings))
        with psycopg.connect(self.conninfo) as conn:
            conn.execute("ALTER TABLE transfers_delivery DISABLE TRIGGER USER")
            conn.execute("TRUNCATE transfers_history, transfers_positions, settings_registry, "
                         "transfers_delivery, transfers_packets")
            conn.execute("ALTER TABLE transfers_delivery ENABLE TRIGGER USER")
        yield store
