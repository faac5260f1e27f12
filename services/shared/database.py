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


def drop_database(admin_conninfo: str, name: str, *, patience_s: float = 30.0) -> None:
    """Drop a database and end its sessions, an autovacuum worker's too.

    WITH (FORCE) ends only the sessions this role may signal, and an autovacuum worker's
    has no role: to a role that is neither superuser nor in pg_signal_backend, FORCE is
    refused while autovacuum visits the database ("must be a member of the role whose
    process is being terminated": CI's teardown failed so on PostgreSQL 15). A plain
    DROP DATABASE ends autovacuum workers itself (it signals them and waits up to 5 s),
    so then this ends its own roles' sessions and drops plainly, again until
    `patience_s` has passed while sessions it may not end remain. A database this role
    may not drop (another role's) is refused at once.
    """
    named = sql.Identifier(name)
    deadline = time.monotonic() + patience_s
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(named))
            return
        except (errors.InsufficientPrivilege, errors.ObjectInUse):
            owner = conn.execute("SELECT pg_has_role(datdba, 'MEMBER') FROM pg_database "
                                 "WHERE datname = %s", (name,)).fetchone()
            if owner is not None and not owner[0]:
                raise
        while True:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid() "
                         "AND usesysid IS NOT NULL AND pg_has_role(usesysid, 'MEMBER')",
                         (name,))
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(named))
                return
            except errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
