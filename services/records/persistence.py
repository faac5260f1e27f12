"""Records' own reads of its event store, behind typed methods of its recorder.

Verification and the audit anchors read the stored rows themselves, not the
repository: a tampered row must be reported at its version, not fail the read. Those
reads are SQL over eventsourcing's events table, so they live here, in a subclass of
the process recorder, selected by the infrastructure factory, as eventsourcing's
searchable-timestamps example extends its recorder. The application only calls typed
methods. The in-memory recorder answers the same methods, so unit tests run every use
case with no database.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InfrastructureFactory,
    Notification,
    ProcessRecorder,
    StoredEvent,
)
from eventsourcing.popo import POPOFactory, POPOProcessRecorder
from eventsourcing.postgres import PostgresFactory, PostgresProcessRecorder
from eventsourcing.utils import Environment
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

# Rows fetched per round trip by the server-side cursor: verify holds one pupil's
# history in memory, never the whole store.
VERIFY_PAGE = 5_000


@dataclass(frozen=True)
class StoredRow:
    """One stored history event as the table holds it, with its place in the outbox."""

    pupil_id: UUID
    version: int
    topic: str
    state: bytes
    notification_id: int

    @property
    def stored_event(self) -> StoredEvent:
        return StoredEvent(originator_id=self.pupil_id, originator_version=self.version,
                           topic=self.topic, state=self.state)

    @classmethod
    def of_notification(cls, notification: Notification) -> StoredRow:
        return cls(pupil_id=UUID(str(notification.originator_id)),
                   version=notification.originator_version, topic=notification.topic,
                   state=notification.state, notification_id=notification.id)

    @classmethod
    def of_row(cls, row: DictRow) -> StoredRow:
        return cls(pupil_id=UUID(str(row["originator_id"])),
                   version=row["originator_version"], topic=row["topic"],
                   state=bytes(row["state"]), notification_id=row["notification_id"])


class RecordsRecorder(ProcessRecorder):
    """The records store: eventsourcing's process recorder, plus the audit's reads."""

    @abstractmethod
    def pupil_count(self) -> int:
        """How many pupils have a history (for verify's progress bar)."""

    @abstractmethod
    def stored_rows_by_pupil(self) -> Iterator[StoredRow]:
        """Every stored event, pupil after pupil, each pupil's in version order."""

    @abstractmethod
    def newest_rows(self, up_to: int) -> Iterator[StoredRow]:
        """Each pupil's newest stored event among notifications up to `up_to`: the
        chain heads as they stood when an anchor was taken."""


class PostgresRecordsRecorder(RecordsRecorder, PostgresProcessRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """eventsourcing serialises inserts with LOCK TABLE ... IN EXCLUSIVE MODE, which
        needs UPDATE or DELETE on the table; records' role has neither (migration 0003),
        so the same lock is taken by a procedure that runs as the table's owner."""
        super().__init__(*args, **kwargs)
        self.lock_table_statements = [
            *self.lock_table_statements[:-1],  # the lock timeout, kept
            SQL("CALL {}.records_lock_events()").format(Identifier(self.datastore.schema)),
        ]

    def _table(self) -> Composed:
        return SQL("{}.{}").format(Identifier(self.datastore.schema),
                                   Identifier(self.events_table_name))

    def pupil_count(self) -> int:
        query = SQL("SELECT count(DISTINCT originator_id) AS pupils FROM {}").format(self._table())
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            row = curs.execute(query).fetchone()
        return int(row["pupils"]) if row else 0

    def stored_rows_by_pupil(self) -> Iterator[StoredRow]:
        return self._stream(SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {} "
            "ORDER BY originator_id, originator_version").format(self._table()))

    def newest_rows(self, up_to: int) -> Iterator[StoredRow]:
        return self._stream(SQL(
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, "
            "state, notification_id FROM {} WHERE notification_id <= %s "
            "ORDER BY originator_id, originator_version DESC").format(self._table()), (up_to,))

    def _stream(self, query: Composed, params: tuple[object, ...] = ()) -> Iterator[StoredRow]:
        """Rows from a server-side cursor, a page at a time (it needs a transaction: the
        datastore's connections are in autocommit)."""
        with (self.datastore.get_connection() as conn, conn.transaction(),
              conn.cursor(name="sendhub_records_rows") as curs):
            curs.itersize = VERIFY_PAGE
            curs.execute(query, params)
            for row in curs:
                yield StoredRow.of_row(row)


class POPORecordsRecorder(RecordsRecorder, POPOProcessRecorder):
    """The same reads over the in-memory store (unit tests), through its public API."""

    def _rows(self) -> list[StoredRow]:
        every = self.select_notifications(start=None, limit=self.max_notification_id() or 0)
        return [StoredRow.of_notification(n) for n in every]

    def pupil_count(self) -> int:
        return len({row.pupil_id for row in self._rows()})

    def stored_rows_by_pupil(self) -> Iterator[StoredRow]:
        return iter(sorted(self._rows(), key=lambda row: (row.pupil_id, row.version)))

    def newest_rows(self, up_to: int) -> Iterator[StoredRow]:
        newest: dict[UUID, StoredRow] = {}
        for row in self._rows():
            if row.notification_id <= up_to and (
                    row.pupil_id not in newest or newest[row.pupil_id].version < row.version):
                newest[row.pupil_id] = row
        return iter(sorted(newest.values(), key=lambda row: row.pupil_id))


class RecordsPostgresFactory(PostgresFactory):
    process_recorder_class = PostgresRecordsRecorder


class RecordsPOPOFactory(POPOFactory):
    def process_recorder(self) -> ProcessRecorder:
        return POPORecordsRecorder()


class UnsupportedStore(ValueError):
    """Records keeps pupils' histories in PostgreSQL, or in memory for tests: nothing else
    has its audit reads."""


FACTORIES: dict[str, type[InfrastructureFactory[Any]]] = {
    "eventsourcing.postgres": RecordsPostgresFactory,
    "eventsourcing.popo": RecordsPOPOFactory,
}


def records_factory(env: Environment) -> InfrastructureFactory[Any]:
    """The factory for eventsourcing's PERSISTENCE_MODULE, with records' recorder."""
    module = env.get(InfrastructureFactory.PERSISTENCE_MODULE) or "eventsourcing.popo"
    if module not in FACTORIES:
        raise UnsupportedStore(f"records cannot keep histories with {module!r}: use one of "
                               f"{', '.join(sorted(FACTORIES))}")
    return FACTORIES[module](env)
