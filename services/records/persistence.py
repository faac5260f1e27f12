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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    InfrastructureFactory,
    Notification,
    ProcessRecorder,
    StoredEvent,
)
from eventsourcing.popo import POPOFactory, POPOProcessRecorder
from eventsourcing.postgres import PostgresFactory, PostgresProcessRecorder
from eventsourcing.utils import Environment, retry
from psycopg import InterfaceError, OperationalError
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from services.records.sealing import ENVELOPE, is_sealed_row

# Rows fetched per round trip by the server-side cursor: verify holds one page (and one
# pupil's history) in memory, never the whole store.
VERIFY_PAGE = 5_000

Rewrite = Callable[[Sequence["StoredRow"]], Sequence[bytes]]
"""The new states of a batch of stored rows, in their order."""

# A row stored before sealing existed (revision 0007): its state is not the envelope.
_PLAIN = SQL("substring(state FROM 1 FOR {}) <> %s").format(len(ENVELOPE))


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
    def stored_versions(self, pupil_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Each of these pupils' newest stored version (absent: no history yet), in one
        round trip: whether a state held in memory is still current."""

    def stored_rows_by_pupil(self) -> Iterator[StoredRow]:
        """Every stored event, pupil after pupil, each pupil's in version order."""
        for page in self.stored_pages_by_pupil():
            yield from page

    @abstractmethod
    def stored_pages_by_pupil(self, *, from_pupil: UUID | None = None,
                              to_pupil: UUID | None = None) -> Iterator[list[StoredRow]]:
        """The stored events of the pupils from `from_pupil` (included) to `to_pupil` (not),
        each bound open when None, pupil after pupil and each pupil's in version order, a
        page of rows at a time: one round trip each, and the keys of a page's pupils can
        be fetched together. A pupil's rows may go on into the next page."""

    @abstractmethod
    def newest_rows(self, up_to: int) -> Iterator[StoredRow]:
        """Each pupil's newest stored event among notifications up to `up_to`: the
        chain heads as they stood when an anchor was taken."""

    @abstractmethod
    def rewrite_plain_rows(self, rewrite: Rewrite, *, after: int, limit: int,
                           pupil_id: UUID | None = None) -> int | None:
        """In one transaction: lock the next `limit` plain rows (stored before sealing
        existed) after notification `after`, of one pupil if given, and replace each
        one's state by what `rewrite` makes of them. Returns the last notification id
        taken, None when no plain row is left after `after`.

        Over the whole store, rows another process has locked are skipped (it is sealing
        them); for one pupil (the erasure) their locks are waited for, so that when no
        row is left none of the pupil's rows is plain."""


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
        self.insert_events_statement = SQL(
            "    INSERT INTO {schema}.{table} AS t ("
            "    originator_id, originator_version, topic, state)"
            "    SELECT originator_id, originator_version, topic, state"
            "    FROM unnest(%b::{schema}.{stored_event_type}[])"
            " RETURNING notification_id").format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            stored_event_type=Identifier(self.stored_event_type_name))
        """eventsourcing's insert (the same words), its array of rows sent in binary
        (%b): in text, psycopg escapes each sealed state's hex inside the array's text in
        Python, 86 us of CPU an event (17 ms a batch of 200, against 1.9 to 3.7 ms)."""

    def _table(self) -> Composed:
        return SQL("{}.{}").format(Identifier(self.datastore.schema),
                                   Identifier(self.events_table_name))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Notification]:
        """eventsourcing's query (and its retries), its rows in binary, as `select_events`:
        the relay reads every event this way (500 rows: 5.2 to 6.3 ms of CPU in text, 1.3
        to 1.4 in binary)."""
        bounds = [(SQL("notification_id >= %s") if inclusive_of_start
                   else SQL("notification_id > %s"), start),
                  (SQL("notification_id <= %s"), stop),
                  (SQL("topic = ANY(%s)"), list(topics) if topics else None)]
        given = [(test, value) for test, value in bounds if value is not None]
        where = SQL("WHERE {} ").format(SQL(" AND ").join(t for t, _ in given)) if given \
            else SQL("")
        query = SQL("SELECT notification_id, originator_id, originator_version, topic, state "
                    "FROM {} {}ORDER BY notification_id LIMIT %s").format(self._table(), where)
        with (self.datastore.get_connection() as conn,
              conn.cursor(binary=True, row_factory=tuple_row) as curs):
            curs.execute(query, [*(value for _, value in given), limit], prepare=True)
            return [Notification(id=n, originator_id=pupil_id, originator_version=version,
                                 topic=topic, state=state)
                    for n, pupil_id, version, topic, state in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                      lte: int | None = None, desc: bool = False, limit: int | None = None
                      ) -> Sequence[StoredEvent]:
        """eventsourcing's query (and its retries), its rows in binary: bytea in text
        format is hex, and decoding it was more than half of reading a 200-event pupil
        (3.1 against 1.2 ms)."""
        bounds = [(SQL(" AND originator_version > %s"), gt),
                  (SQL(" AND originator_version <= %s"), lte)]
        given = [(test, value) for test, value in bounds if value is not None]
        query = SQL("SELECT originator_id, originator_version, topic, state FROM {} "
                    "WHERE originator_id = %s{} ORDER BY originator_version {}{}").format(
            self._table(), SQL("").join(test for test, _ in given),
            SQL("DESC") if desc else SQL("ASC"), SQL(" LIMIT %s") if limit is not None
            else SQL(""))
        params = [originator_id, *(value for _, value in given),
                  *([limit] if limit is not None else [])]
        with (self.datastore.get_connection() as conn,
              conn.cursor(binary=True, row_factory=tuple_row) as curs):
            curs.execute(query, params, prepare=True)
            return [StoredEvent(originator_id=pupil_id, originator_version=version,
                                topic=topic, state=state)
                    for pupil_id, version, topic, state in curs.fetchall()]

    def pupil_count(self) -> int:
        query = SQL("SELECT count(DISTINCT originator_id) AS pupils FROM {}").format(self._table())
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            row = curs.execute(query).fetchone()
        return int(row["pupils"]) if row else 0

    def stored_versions(self, pupil_ids: Sequence[UUID]) -> dict[UUID, int]:
        query = SQL("SELECT originator_id, max(originator_version) AS version FROM {} "
                    "WHERE originator_id = ANY(%s) GROUP BY originator_id").format(self._table())
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            rows = curs.execute(query, (list(pupil_ids),)).fetchall()
        return {UUID(str(row["originator_id"])): int(row["version"]) for row in rows}

    def stored_pages_by_pupil(self, *, from_pupil: UUID | None = None,
                              to_pupil: UUID | None = None) -> Iterator[list[StoredRow]]:
        """Binary rows as tuples: bytea in text format is hex, and decoding it cost more
        than verify's SHA-256 of the rows."""
        bounds = [(SQL("originator_id >= %s"), from_pupil), (SQL("originator_id < %s"), to_pupil)]
        given = [(test, pupil) for test, pupil in bounds if pupil is not None]
        where = SQL("WHERE {} ").format(SQL(" AND ").join(t for t, _ in given)) if given \
            else SQL("")
        query = SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {} "
            "{}ORDER BY originator_id, originator_version").format(self._table(), where)
        with (self.datastore.get_connection() as conn, conn.transaction(),
              conn.cursor(name="sendhub_records_pages", row_factory=tuple_row,
                          binary=True) as curs):
            curs.execute(query, tuple(pupil for _, pupil in given))
            while page := curs.fetchmany(VERIFY_PAGE):
                yield [StoredRow(pupil_id, version, topic, state, notification_id)
                       for pupil_id, version, topic, state, notification_id in page]

    def newest_rows(self, up_to: int) -> Iterator[StoredRow]:
        return self._stream(SQL(
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, "
            "state, notification_id FROM {} WHERE notification_id <= %s "
            "ORDER BY originator_id, originator_version DESC").format(self._table()), (up_to,))

    def rewrite_plain_rows(self, rewrite: Rewrite, *, after: int, limit: int,
                           pupil_id: UUID | None = None) -> int | None:
        one_pupil = SQL("AND originator_id = %s ") if pupil_id else SQL("")
        query = SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {} "
            "WHERE notification_id > %s AND {} {}ORDER BY notification_id LIMIT %s "
            "FOR UPDATE{}").format(self._table(), _PLAIN, one_pupil,
                                   SQL("") if pupil_id else SQL(" SKIP LOCKED"))
        params: tuple[object, ...] = (after, ENVELOPE, *([pupil_id] if pupil_id else []), limit)
        with (self.datastore.get_connection() as conn, conn.transaction(),
              conn.cursor() as curs):
            rows = [StoredRow.of_row(row) for row in curs.execute(query, params).fetchall()]
            if not rows:
                return None
            states = rewrite(rows)
            curs.executemany(SQL("UPDATE {} SET state = %s WHERE notification_id = %s")
                             .format(self._table()),
                             [(state, row.notification_id) for row, state in zip(
                                 rows, states, strict=True)])
        return rows[-1].notification_id

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

    def stored_versions(self, pupil_ids: Sequence[UUID]) -> dict[UUID, int]:
        wanted = set(pupil_ids)
        versions: dict[UUID, int] = {}
        for row in self._rows():
            if row.pupil_id in wanted:
                versions[row.pupil_id] = max(row.version, versions.get(row.pupil_id, 0))
        return versions

    def stored_pages_by_pupil(self, *, from_pupil: UUID | None = None,
                              to_pupil: UUID | None = None) -> Iterator[list[StoredRow]]:
        rows = sorted((row for row in self._rows()
                       if (from_pupil is None or row.pupil_id >= from_pupil)
                       and (to_pupil is None or row.pupil_id < to_pupil)),
                      key=lambda row: (row.pupil_id, row.version))
        for start in range(0, len(rows), VERIFY_PAGE):
            yield rows[start:start + VERIFY_PAGE]

    def newest_rows(self, up_to: int) -> Iterator[StoredRow]:
        newest: dict[UUID, StoredRow] = {}
        for row in self._rows():
            if row.notification_id <= up_to and (
                    row.pupil_id not in newest or newest[row.pupil_id].version < row.version):
                newest[row.pupil_id] = row
        return iter(sorted(newest.values(), key=lambda row: row.pupil_id))


    def rewrite_plain_rows(self, rewrite: Rewrite, *, after: int, limit: int,
                           pupil_id: UUID | None = None) -> int | None:
        """The in-memory store has no public way to replace a row: its list, under its
        lock (which also stands for the row locks)."""
        with self._database_lock:
            rows = [row for row in self._rows() if row.notification_id > after
                    and not is_sealed_row(row.state)
                    and (pupil_id is None or row.pupil_id == pupil_id)][:limit]
            if not rows:
                return None
            for row, state in zip(rows, rewrite(rows), strict=True):
                # notification ids are positions in the list, from 1
                self._stored_events[row.notification_id - 1] = replace(
                    row.stored_event, state=state)
        return rows[-1].notification_id


def plain_events(conninfo: str) -> int:
    """records' rows stored before sealing existed (revision 0007), still plain (for
    `sendhub db upgrade`, which has no master key to build the application with)."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(SQL("SELECT count(*) FROM records_events WHERE {}").format(_PLAIN),
                           (ENVELOPE,)).fetchone()
    return int(row[0]) if row else 0


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
