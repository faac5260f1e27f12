"""One PostgreSQL role per service, each granted exactly what its work needs.

The hub holds special category data for many settings; until now every process
connected as the owner and could rewrite any pupil's history. From here each service
has its own role (created cluster-wide by deploy/local/up, or by the DBA elsewhere):
records may add to the histories but never UPDATE or DELETE them, readers only read
(and add to the access log), ingest only reads principals. The grants live in this
revision, not in the roles' creation, because tables belong to databases: every database
the migrations build (each test session's too) gets them. A role that does not exist is
skipped, so a database where nobody created the roles still upgrades; it is then used by
one role only (SENDHUB_DATABASE_URL naming its user). Grants are explicit: default
privileges would hand every future table to every role, which is what this undoes.

eventsourcing serialises inserts with `LOCK TABLE records_events IN EXCLUSIVE MODE`, which
PostgreSQL allows only to roles that may UPDATE, DELETE or TRUNCATE the table. Records
takes that lock through `records_lock_events()`, a procedure that runs as the owner and
does nothing else, so its role never needs those privileges.

Revision ID: 0003_roles
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0003_roles"
down_revision = "0002"
branch_labels = None
depends_on = None

LOCK_PROCEDURE = """
CREATE OR REPLACE PROCEDURE records_lock_events()
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN LOCK TABLE public.records_events IN EXCLUSIVE MODE; END $$"""

# Per role: (privileges, object) pairs, granted as `GRANT <privileges> ON <object> TO role`.
GRANTS: dict[str, list[tuple[str, str]]] = {
    # Checks which settings a connector may speak for; nothing else.
    "sendhub_ingest": [("SELECT", "principals")],
    # Histories are appended to, never changed; positions and relay marks are upserted.
    "sendhub_records": [
        ("SELECT, INSERT", "records_events"),
        ("USAGE", "SEQUENCE records_events_notification_id_seq"),
        ("SELECT, INSERT, UPDATE", "records_tracking"),
        ("EXECUTE", "PROCEDURE records_lock_events()"),
        ("SELECT, INSERT", "hub_binding"),
        ("SELECT", "alembic_version"),
    ],
    "sendhub_transfers": [
        ("SELECT, INSERT", "transfers_history"),
        ("SELECT, INSERT, UPDATE", "transfers_positions"),
        ("SELECT, INSERT, UPDATE (published_at)", "transfers_packets"),
        ("SELECT, INSERT", "transfers_delivery"),
        ("USAGE", "SEQUENCE transfers_delivery_id_seq"),
        ("SELECT", "settings_registry"),
        ("SELECT, INSERT", "hub_binding"),
        ("SELECT", "alembic_version"),
    ],
    # Reads what it serves, authenticates callers (recording a token's last use),
    # pushes webhooks and records every read in the access log.
    "sendhub_gateway": [
        ("SELECT", "transfers_packets"),
        ("SELECT", "transfers_delivery"),
        ("SELECT", "settings_registry"),
        ("SELECT", "records_events"),
        ("SELECT", "principals"),
        ("SELECT, UPDATE (last_used_at)", "credentials"),
        ("SELECT, INSERT, UPDATE (revoked_at)", "webhooks"),
        ("SELECT, INSERT, UPDATE", "webhook_deliveries"),
        ("USAGE", "SEQUENCE webhook_deliveries_id_seq"),
        ("INSERT", "access_log"),
        ("USAGE", "SEQUENCE access_log_id_seq"),
        ("SELECT", "hub_binding"),
        ("SELECT", "alembic_version"),
    ],
    # The CLI's reading commands: history, packet, inbox, transfers, report, verify and
    # access-log. Read-only, except that each read is added to the access log and the
    # reader's token records its last use (the caller is authenticated, as at the gateway).
    "sendhub_reader": [
        ("SELECT", "records_events"),
        ("SELECT", "transfers_packets"),
        ("SELECT", "transfers_delivery"),
        ("SELECT", "settings_registry"),
        ("SELECT", "principals"),
        ("SELECT, UPDATE (last_used_at)", "credentials"),
        ("SELECT, INSERT", "access_log"),
        ("USAGE", "SEQUENCE access_log_id_seq"),
        ("SELECT", "alembic_version"),
    ],
}


def existing_roles() -> list[str]:
    """The hub's roles that exist on this server (roles are cluster-wide)."""
    rows = op.get_bind().execute(
        text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(GRANTS)})
    return [row[0] for row in rows]


def upgrade() -> None:
    op.execute(LOCK_PROCEDURE)
    # Functions and procedures are executable by PUBLIC unless revoked.
    op.execute("REVOKE ALL ON PROCEDURE records_lock_events() FROM PUBLIC")
    for role in existing_roles():
        for privileges, target in GRANTS[role]:
            op.execute(f"GRANT {privileges} ON {target} TO {role}")


def downgrade() -> None:
    for role in existing_roles():
        for _, target in GRANTS[role]:
            op.execute(f"REVOKE ALL ON {target} FROM {role}")
    op.execute("DROP PROCEDURE IF EXISTS records_lock_events()")
