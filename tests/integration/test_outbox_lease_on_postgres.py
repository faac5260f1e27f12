"""The outbox lease on a real PostgreSQL: a holder whose session the server ended (as a
restart does) is told so at its next question, while another instance takes the lease;
the publishers ask again just before publishing (tests/unit/test_outbox_fence.py)."""

from __future__ import annotations

import logging
import random

import psycopg
import pytest

from services.shared.lease import OutboxLease
from services.shared.settings import HubSettings


def test_a_holder_whose_session_ended_is_told_at_its_next_question(
        db_settings: HubSettings) -> None:
    lock_id = random.randrange(1 << 40, 1 << 50)  # not a lock the running services use
    log = logging.getLogger("test")
    first = OutboxLease(db_settings.database_conninfo, lock_id, "test", log)
    second = OutboxLease(db_settings.database_conninfo, lock_id, "test", log)
    try:
        assert first.held() and not second.held()
        assert first._conn is not None
        with psycopg.connect(db_settings.database_conninfo, autocommit=True) as admin:
            # With a timeout: it returns once the backend has gone, its lock with it.
            admin.execute("SELECT pg_terminate_backend(%s, 5000)",
                          (first._conn.info.backend_pid,))
        assert second.held()  # the ended session's lock is free: the other instance takes it
        with pytest.raises(psycopg.OperationalError):
            first.held()  # not True: the relay stops before publishing
        assert not first.held()  # asks again on a new session: the lease is the other's
    finally:
        first.release()
        second.release()
