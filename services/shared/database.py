"""The hub's database schema, versioned: every change is a migration, applied on purpose.

The services used to create their tables as they started, so a schema change reached a
database whenever some process happened to start first, half-applied if it failed. Now
the migrations (alembic, raw SQL, in `services/shared/migrations/versions/`) are run by
`sendhub db upgrade`, one at a time per database, and a service refuses to start on a
database that is not at the revision its code expects, saying what to run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import errors, sql
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from services.shared.settings import HubSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Alembic's `context` and `op` are process-wide: two upgrades in one process take turns
# (between processes, the advisory lock in migrations/env.py does it).
_IN_THIS_PROCESS = threading.Lock()


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the revision this hub's code was written for."""


def engine(settings: HubSettings) -> Engine:
    """SQLAlchemy over psycopg 3, connecting exactly as the rest of the hub does (the same
    conninfo, so the same password resolution); no pool, since upgrades are rare."""
    return create_engine("postgresql+psycopg://", poolclass=NullPool,
                         creator=lambda: psycopg.connect(settings.database_conninfo))


def _config(settings: HubSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["settings"] = settings
    return config


def head_revision() -> str:
    """The revision this code expects: the newest migration."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise SchemaNotCurrent(f"no migrations found in {MIGRATIONS}")
    return head


def current_revision(settings: HubSettings) -> str | None:
    """The database's revision, or None when no migration was ever applied to it."""
    with engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(settings: HubSettings) -> str:
    """Apply the migrations the database lacks; returns its revision, now the head.

    Safe to run twice, and from several processes or threads at once: one upgrade runs,
    and the others then find nothing to do.
    """
    with _IN_THIS_PROCESS:
        command.upgrade(_config(settings), "head")
    revision = current_revision(settings)
    if revision is None:
        raise SchemaNotCurrent(f"the upgrade of {_name(settings)} left it without a revision")
    return revision


def require_current(settings: HubSettings) -> None:
    """Refuse to run on a database whose schema is older or newer than this code's."""
    current, head = current_revision(settings), head_revision()
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaNotCurrent(
            f"database {_name(settings)} is at revision {current}, newer than this hub "
            f"knows (it needs {head}): run the hub version that upgraded it")
    raise SchemaNotCurrent(
            f"database {_name(settings)} is at revision {current or 'none (never upgraded)'}, "
            f"the hub needs {head}: run `sendhub db upgrade`")


def _name(settings: HubSettings) -> str:
    return (settings.database_url.path or "/").lstrip("/") or "(default)"


def drop_database(admin_conninfo: str, name: str, *, patience_s: float = 120.0) -> None:
    """Drop a database and end its sessions, waiting out an autovacuum worker in it.

    WITH (FORCE) ends the other sessions, but a role that is not a superuser may not end
    an autovacuum worker's (PostgreSQL 15-17 grant that to no role; 18 adds
    pg_signal_autovacuum_worker), and autovacuum visits any database that was busy: CI's
    teardown failed once so, "must be a member of the role whose process is being
    terminated". The worker ends by itself, so this waits for it; any other refusal
    (not the owner, say) is raised at once.
    """
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    deadline = time.monotonic() + patience_s
    retried_without_worker = False
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        while True:
            try:
                conn.execute(statement)
                return
            except (errors.InsufficientPrivilege, errors.ObjectInUse):
                # Another role's backend_type reads NULL; a worker is the session of no role.
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND (backend_type = 'autovacuum worker' OR usesysid IS NULL)",
                    (name,)).fetchone()
                vacuuming = bool(row and row[0])
                # A worker may end between the refusal and the look: one more try then.
                if time.monotonic() > deadline or (not vacuuming and retried_without_worker):
                    raise
                retried_without_worker = retried_without_worker or not vacuuming
            time.sleep(0.5)
