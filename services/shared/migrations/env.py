"""Alembic's entry: run the hub's migrations on the database its settings name.

`services.shared.database.upgrade` passes the settings in; run from the alembic
command line, the SENDHUB_* variables are read instead. Only online: revision 0001
creates records' tables through eventsourcing's own recorder, which needs a live
database, so there is no SQL script to print.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from services.shared import locks
from services.shared.database import engine
from services.shared.settings import HubSettings

if context.is_offline_mode():
    raise SystemExit("the hub's migrations run only against a database (no --sql)")

settings = context.config.attributes.setdefault("settings", HubSettings())
with engine(settings).connect() as connection:
    context.configure(connection=connection, target_metadata=None,
                      transaction_per_migration=False)
    with context.begin_transaction():
        # Held to the end of this transaction: a second upgrade waits, then finds the
        # revision already applied and does nothing.
        connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"),
                           {"lock": locks.MIGRATIONS})
        context.run_migrations()
