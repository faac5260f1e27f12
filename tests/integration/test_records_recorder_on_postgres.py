"""Records' recorder on PostgreSQL: the same test body as in memory, on a database of
this module's own (the pupil count must see only these rows)."""

from __future__ import annotations

import pytest

from services.records.application import RecordsApplication
from services.records.persistence import PostgresRecordsRecorder, RecordsRecorder
from services.shared.settings import HubSettings
from tests.unit.test_records_recorder import RecorderContract


class TestOnPostgres(RecorderContract):
    @pytest.fixture(autouse=True)
    def _database(self, scratch_db: HubSettings) -> None:
        self.settings = scratch_db

    def recorder(self) -> RecordsRecorder:
        # Kept: the application's factory owns the connection pool the recorder uses.
        self.app = RecordsApplication(env=self.settings.eventsourcing_env())
        assert isinstance(self.app.process_recorder, PostgresRecordsRecorder)
        return self.app.process_recorder
