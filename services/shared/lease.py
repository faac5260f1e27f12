"""One publisher per outbox, however many instances of a service run.

Several processes of one service share its consumer group, but an outbox (records'
notification log, transfers' unpublished packets) must be published by one of them
only, or every instance publishes the same rows (duplicate packets, doubled "sent"
steps). The instance that holds a PostgreSQL session-level advisory lock publishes; the
others wait. When the holder dies, its connection closes, the lock is free, and the
next instance to ask takes over.

Infrastructure layer: one psycopg connection per lease, used from a worker thread.
"""

from __future__ import annotations

import logging
import threading

import psycopg


class OutboxLease:
    def __init__(self, conninfo: str, lock_id: int, name: str, log: logging.Logger) -> None:
        self.conninfo = conninfo
        self.lock_id = lock_id
        self.name = name
        self.log = log
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False
        self._lock = threading.Lock()  # asked from several worker threads at once

    def held(self) -> bool:
        """True while this process holds the lease (taking it when it is free). A lost
        connection loses the lease with it: reconnect and ask again next time."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.conninfo, autocommit=True)
                    self._held = False
                if self._held:
                    self._conn.execute("SELECT 1")  # the session, and so the lock, lives
                    return True
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_id,)
                                         ).fetchone()
                self._held = bool(row and row[0])
                if self._held:
                    self.log.info("outbox.lease_taken", extra={"outbox": self.name})
                return self._held
            except psycopg.Error:
                self._close()
                raise

    def release(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._held = None, False
