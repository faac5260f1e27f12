"""The hub's schema as it stood before versioned migrations: adopted, not recreated.

Every statement is IF NOT EXISTS (or checks first), so a database the services built
themselves, through their constructors, keeps its data and is only stamped with this
revision. Records' tables are eventsourcing's: they are created by eventsourcing's own
recorder (as the services did with CREATE_TABLE on), so their layout is the library's,
not a copy of it. The recorder is eventsourcing's plain one under records' name, not
records' code: a revision stays as it was written while the service changes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import context, op
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment

from services.shared import locks
from services.shared.settings import HubSettings

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RECORDS_APPLICATION = "records"  # names its tables: records_events, records_tracking

TRANSFERS = [
    """CREATE TABLE IF NOT EXISTS transfers_history (
        upn text NOT NULL,
        version integer NOT NULL,
        notification_id bigint NOT NULL,
        event jsonb NOT NULL,
        PRIMARY KEY (upn, version)
    )""",
    """CREATE TABLE IF NOT EXISTS transfers_positions (
        topic text NOT NULL,
        partition integer NOT NULL,
        next_offset bigint NOT NULL,
        PRIMARY KEY (topic, partition)
    )""",
    """CREATE TABLE IF NOT EXISTS transfers_packets (
        packet_id uuid PRIMARY KEY,
        upn text NOT NULL,
        receiver text NOT NULL,
        move_version integer NOT NULL,
        body jsonb NOT NULL,
        built_at timestamptz NOT NULL,
        published_at timestamptz
    )""",
    # Added to the table after its first release: kept as ALTERs so that databases
    # from before them gain the columns.
    "ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS history_version integer",
    "ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'first'",
    "ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS supersedes uuid",
    """CREATE INDEX IF NOT EXISTS transfers_packets_unpublished
        ON transfers_packets (built_at) WHERE published_at IS NULL""",
    "CREATE INDEX IF NOT EXISTS transfers_packets_by_pupil ON transfers_packets (upn)",
    """CREATE TABLE IF NOT EXISTS transfers_delivery (
        id bigserial PRIMARY KEY,
        packet_id uuid NOT NULL REFERENCES transfers_packets (packet_id),
        state text NOT NULL,
        at timestamptz NOT NULL,
        detail text,
        receipt_key text UNIQUE
    )""",
    "CREATE INDEX IF NOT EXISTS transfers_delivery_by_packet ON transfers_delivery (packet_id, id)",
    """CREATE OR REPLACE FUNCTION transfers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'transfers_delivery is append-only'; END $$""",
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger
                       WHERE tgname = 'transfers_delivery_append_only') THEN
            CREATE TRIGGER transfers_delivery_append_only BEFORE UPDATE OR DELETE
                ON transfers_delivery FOR EACH ROW EXECUTE FUNCTION transfers_append_only();
        END IF;
    END $$""",
    """CREATE TABLE IF NOT EXISTS settings_registry (
        urn text PRIMARY KEY,
        name text NOT NULL,
        phase text NOT NULL,
        la_code text,
        la_name text,
        establishment_number text,
        ukprn text UNIQUE,
        trust text,
        imported_at timestamptz NOT NULL
    )""",
]

ACCESS_LOG = [
    """CREATE TABLE IF NOT EXISTS access_log (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL CHECK (length(trim(actor)) > 0),
        reason text NOT NULL CHECK (length(trim(reason)) > 0),
        action text NOT NULL,
        upn text,
        packet_id uuid,
        detail text
    )""",
    "CREATE INDEX IF NOT EXISTS access_log_by_upn ON access_log (upn, id)",
    """CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$""",
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'access_log_append_only') THEN
            CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
                FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
        END IF;
    END $$""",
]

HUB_BINDING = [
    """CREATE TABLE IF NOT EXISTS hub_binding (
        only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one),
        kafka_cluster_id text NOT NULL,
        topic_namespace text NOT NULL,
        bound_at timestamptz NOT NULL DEFAULT now()
    )""",
]


def create_records_tables(settings: HubSettings) -> None:
    """records_events (the histories and their notification log) and records_tracking
    (Kafka positions, relay and anchor marks), by eventsourcing's recorder; it commits on
    its own connection, which is harmless: every statement of it is IF NOT EXISTS."""
    env = {**settings.eventsourcing_env(), "CREATE_TABLE": "y", "POSTGRES_POOL_SIZE": "1"}
    factory = PostgresFactory(Environment(RECORDS_APPLICATION, env))
    try:
        factory.process_recorder()
    finally:
        factory.close()


def upgrade() -> None:
    settings: HubSettings = context.config.attributes["settings"]
    create_records_tables(settings)
    # Hub versions before migrations created these tables at start-up, under these
    # locks: one of them starting now waits for this revision instead of racing it.
    for lock in (locks.TRANSFERS_SCHEMA, locks.ACCESS_LOG_SCHEMA, locks.BINDING):
        op.execute(f"SELECT pg_advisory_xact_lock({lock})")
    for statement in TRANSFERS + ACCESS_LOG + HUB_BINDING:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError(
        "revision 0001 is not undone: it holds every pupil's SEN history, the packets sent "
        "and the access log. Restore the database from a backup instead.")
