"""Principals, their credentials, webhooks, and where each read in the access log came from.

Tokens are kept only as slow hashes (scrypt), so a copy of this database does not let
anyone call the gateway. A webhook's signing secret must be kept readable to sign with,
as GitHub and Stripe keep theirs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE principals (
        name text PRIMARY KEY,
        kind text NOT NULL,
        identifier text NOT NULL,
        acts_for text[] NOT NULL DEFAULT '{}',
        uses_kafka boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    )""",
    """CREATE TABLE credentials (
        id uuid PRIMARY KEY,
        principal text NOT NULL REFERENCES principals (name),
        secret_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        last_used_at timestamptz
    )""",
    "CREATE INDEX credentials_by_principal ON credentials (principal)",
    """CREATE TABLE webhooks (
        id uuid PRIMARY KEY,
        principal text NOT NULL REFERENCES principals (name),
        url text NOT NULL,
        secret text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    )""",
    """CREATE TABLE webhook_deliveries (
        id bigserial PRIMARY KEY,
        webhook_id uuid NOT NULL REFERENCES webhooks (id),
        packet_id uuid NOT NULL,
        attempt integer NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        status integer,
        error text,
        delivered boolean NOT NULL,
        next_attempt_at timestamptz
    )""",
    "CREATE INDEX webhook_deliveries_by_packet ON webhook_deliveries (webhook_id, packet_id)",
    "ALTER TABLE access_log ADD COLUMN route text NOT NULL DEFAULT 'cli'",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhooks", "credentials", "principals"):
        op.execute(f"DROP TABLE {table}")
    op.execute("ALTER TABLE access_log DROP COLUMN route")
