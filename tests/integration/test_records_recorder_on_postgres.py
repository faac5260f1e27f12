"""Records' recorder on PostgreSQL: the same test body as in memory, on a database of
this module's own (the pupil count must see only these rows)."""

from __future__ import annotations

import pytest
from eventsourcing.postgres import PostgresProcessRecorder

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


def test_records_insert_is_eventsourcings_with_its_rows_in_binary(scratch_db: HubSettings) -> None:
    """Written out in records' recorder for %b: noticed here if eventsourcing's changes."""
    app = RecordsApplication(env=scratch_db.eventsourcing_env())
    ours = app.process_recorder
    assert isinstance(ours, PostgresRecordsRecorder)
    theirs = PostgresProcessRecorder(ours.datastore, events_table_name=ours.events_table_name)
    with ours.datastore.get_connection() as conn:
        expected = theirs.insert_events_statement.as_string(conn)
        assert "unnest(%s::" in expected
        assert ours.insert_events_statement.as_string(conn) == expected.replace(
            "unnest(%s::", "unnest(%b::")
    app.close()
