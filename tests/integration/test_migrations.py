"""The schema comes from migrations: on an empty database, on one the services built
themselves before migrations existed, twice, at once; and a service refuses a database
that was not upgraded, saying what to run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.records.application import RecordsApplication
from services.records.entrypoint import build_app
from services.shared.database import (
    SchemaNotCurrent,
    current_revision,
    drop_database,
    head_revision,
    require_current,
    upgrade,
)
from services.shared.settings import HubSettings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

HUB_TABLES = {"transfers_history", "transfers_positions", "transfers_packets",
              "transfers_delivery", "settings_registry", "access_log", "hub_binding",
              "records_events", "records_tracking", "alembic_version",
              "principals", "credentials", "webhooks", "webhook_deliveries", "school_terms",
              "web_sessions", "pupil_keys"}

# The DDL the constructors ran at start-up before migrations (TransfersStore,
# AccessLog, check_binding at a18b52c), verbatim: what existing databases hold.
OLD_TRANSFERS = """
CREATE TABLE IF NOT EXISTS transfers_history (
    upn text NOT NULL,
    version integer NOT NULL,
    notification_id bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (upn, version)
);
CREATE TABLE IF NOT EXISTS transfers_positions (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS transfers_packets (
    packet_id uuid PRIMARY KEY,
    upn text NOT NULL,
    receiver text NOT NULL,
    move_version integer NOT NULL,
    body jsonb NOT NULL,
    built_at timestamptz NOT NULL,
    published_at timestamptz
);
ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS history_version integer;
ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'first';
ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS supersedes uuid;
CREATE INDEX IF NOT EXISTS transfers_packets_unpublished
    ON transfers_packets (built_at) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS transfers_packets_by_pupil ON transfers_packets (upn);
CREATE TABLE IF NOT EXISTS transfers_delivery (
    id bigserial PRIMARY KEY,
    packet_id uuid NOT NULL REFERENCES transfers_packets (packet_id),
    state text NOT NULL,
    at timestamptz NOT NULL,
    detail text,
    receipt_key text UNIQUE
);
CREATE INDEX IF NOT EXISTS transfers_delivery_by_packet ON transfers_delivery (packet_id, id);
CREATE OR REPLACE FUNCTION transfers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'transfers_delivery is append-only'; END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'transfers_delivery_append_only') THEN
        CREATE TRIGGER transfers_delivery_append_only BEFORE UPDATE OR DELETE
            ON transfers_delivery FOR EACH ROW EXECUTE FUNCTION transfers_append_only();
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS settings_registry (
    urn text PRIMARY KEY,
    name text NOT NULL,
    phase text NOT NULL,
    la_code text,
    la_name text,
    establishment_number text,
    ukprn text UNIQUE,
    trust text,
    imported_at timestamptz NOT NULL
);
"""
OLD_ACCESS_LOG = """
CREATE TABLE IF NOT EXISTS access_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL CHECK (length(trim(actor)) > 0),
    reason text NOT NULL CHECK (length(trim(reason)) > 0),
    action text NOT NULL,
    upn text,
    packet_id uuid,
    detail text
);
CREATE INDEX IF NOT EXISTS access_log_by_upn ON access_log (upn, id);
CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'access_log_append_only') THEN
        CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
            FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
    END IF;
END $$;
"""
OLD_BINDING = """
CREATE TABLE IF NOT EXISTS hub_binding (
    only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    kafka_cluster_id text NOT NULL,
    topic_namespace text NOT NULL,
    bound_at timestamptz NOT NULL DEFAULT now()
);
"""
# Older still: transfers_packets before amendments added its last three columns.
OLD_TRANSFERS_BEFORE_AMENDMENTS = "\n".join(
    line for line in OLD_TRANSFERS.splitlines() if not line.startswith("ALTER TABLE"))


@pytest.fixture
def empty_database(database_url: str) -> Iterator[HubSettings]:
    """A database of one test's own, never upgraded."""
    name = f"{database_url.rsplit('/', 1)[1]}_m{uuid.uuid4().hex[:8]}"
    admin = HubSettings(database_url=database_url).database_conninfo
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield HubSettings(database_url=database_url.rsplit("/", 1)[0] + f"/{name}")
    drop_database(admin, name)


def schema_of(settings: HubSettings) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes and triggers, in a form two databases can be compared by."""
    with psycopg.connect(settings.database_conninfo) as conn:
        return {
            "columns": conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, column_name").fetchall(),
            "indexes": conn.execute("SELECT indexname, indexdef FROM pg_indexes "
                                    "WHERE schemaname = 'public' ORDER BY indexname").fetchall(),
            "triggers": conn.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger "
                                     "WHERE NOT tgisinternal ORDER BY tgname").fetchall(),
        }


def tables(settings: HubSettings) -> set[str]:
    return {table for table, *_ in schema_of(settings)["columns"]}


def test_an_empty_database_gets_every_table_and_the_services_can_use_it(
        empty_database: HubSettings) -> None:
    assert upgrade(empty_database) == head_revision()
    assert tables(empty_database) == HUB_TABLES
    triggers = {name for name, _ in schema_of(empty_database)["triggers"]}
    assert triggers == {"transfers_delivery_append_only", "access_log_append_only",
                        "pupil_keys_only_erased"}
    sealed = {(table, kind) for table, column, kind, *_ in schema_of(empty_database)["columns"]
              if column == "sealed"}  # transfers' copies, sealed with the pupil's key (0008)
    assert sealed == {("transfers_history", "bytea"), ("transfers_packets", "bytea")}
    require_current(empty_database)
    records = RecordsApplication(env=empty_database.eventsourcing_env())  # CREATE_TABLE off
    assert records.relayed_up_to() == 0
    records.mark_relayed(3)
    assert records.relayed_up_to() == 3


def test_a_second_upgrade_changes_nothing(empty_database: HubSettings) -> None:
    upgrade(empty_database)
    before = schema_of(empty_database)
    assert upgrade(empty_database) == head_revision()
    assert schema_of(empty_database) == before


def test_upgrades_started_together_apply_the_migrations_once(
        empty_database: HubSettings) -> None:
    """Three `sendhub db upgrade`s at once, as separate processes (the advisory lock)."""
    upgrade_in_a_process = ("from services.shared.database import upgrade; "
                            "from services.shared.settings import HubSettings; "
                            "print(upgrade(HubSettings()))")
    env = {**os.environ, "SENDHUB_DATABASE_URL": str(empty_database.database_url)}
    started = [subprocess.Popen([sys.executable, "-c", upgrade_in_a_process], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    finished = [process.communicate(timeout=120) for process in started]
    assert [(p.returncode, out.strip()) for p, (out, _) in zip(started, finished, strict=True)] \
        == [(0, head_revision())] * 3, [err for _, err in finished]
    assert tables(empty_database) == HUB_TABLES


def test_upgrades_in_threads_of_one_process_take_turns(empty_database: HubSettings) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(upgrade, [empty_database] * 3)) == [head_revision()] * 3


@pytest.mark.parametrize("old_transfers", [OLD_TRANSFERS, OLD_TRANSFERS_BEFORE_AMENDMENTS],
                         ids=["as-last-released", "before-amendments"])
def test_a_database_built_by_the_services_themselves_is_adopted_with_its_data(
        empty_database: HubSettings, database_url: str, old_transfers: str) -> None:
    # As the hub left it before migrations: tables created by each constructor,
    # records' by eventsourcing with CREATE_TABLE on.
    with psycopg.connect(empty_database.database_conninfo) as conn:
        for old in (old_transfers, OLD_ACCESS_LOG, OLD_BINDING):
            conn.execute(old)
        conn.execute("INSERT INTO access_log (actor, reason, action) VALUES ('a', 'b', 'c')")
    old_records = RecordsApplication(env={**empty_database.eventsourcing_env(),
                                          "CREATE_TABLE": "y"})
    old_records.mark_relayed(7)
    with pytest.raises(SchemaNotCurrent):
        require_current(empty_database)

    assert upgrade(empty_database) == head_revision()

    require_current(empty_database)
    fresh = HubSettings(database_url=database_url)  # upgraded from empty by the fixture
    assert schema_of(empty_database) == schema_of(fresh)
    assert RecordsApplication(env=empty_database.eventsourcing_env()).relayed_up_to() == 7
    with psycopg.connect(empty_database.database_conninfo) as conn:
        assert conn.execute("SELECT actor FROM access_log").fetchall() == [("a",)]
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM access_log")


def test_a_database_not_upgraded_is_refused_with_what_to_run(
        empty_database: HubSettings) -> None:
    name = empty_database.database_url.path.lstrip("/") if empty_database.database_url.path else ""
    expected = (f"database {name} is at revision none (never upgraded), the hub needs {head_revision()}: "
                "run `sendhub db upgrade`")
    with pytest.raises(SchemaNotCurrent) as refused:
        require_current(empty_database)
    assert str(refused.value) == expected
    assert isinstance(refused.value, RuntimeError)
    with pytest.raises(SchemaNotCurrent, match="run `sendhub db upgrade`"):
        build_app(empty_database)  # records refuses before touching Kafka or its tables
    assert current_revision(empty_database) is None


def test_a_database_from_a_newer_hub_is_refused(empty_database: HubSettings) -> None:
    upgrade(empty_database)
    with psycopg.connect(empty_database.database_conninfo) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(SchemaNotCurrent, match="at revision 0999, newer than this hub knows"):
        require_current(empty_database)


def test_drop_database_ends_the_owners_sessions_and_refuses_a_template(
        database_url: str) -> None:
    """The real PostgreSQL: a database with a session open is dropped; one this role may not
    drop (template1: not its own, and a template) is refused at once, not waited on."""
    admin = HubSettings(database_url=database_url).database_conninfo
    name = f"{database_url.rsplit('/', 1)[1]}_d{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    held = psycopg.connect(admin.rsplit("/", 1)[0] + f"/{name}")
    try:
        drop_database(admin, name)
        with psycopg.connect(admin) as conn:
            left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                                (name,)).fetchone()
        assert left == (0,)
    finally:
        held.close()
    started = time.monotonic()
    with pytest.raises(psycopg.Error, match="template"):
        drop_database(admin, "template1")
    assert time.monotonic() - started < 5
