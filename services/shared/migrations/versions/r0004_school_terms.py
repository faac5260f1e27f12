"""Local authorities' term dates, so that the hub's clocks count school days.

One row per term or half-term of one LA (both days inclusive), as imported from a CSV
by `sendhub calendar import` (`services/shared/school_days.py` parses it), which
replaces an LA's rows in one transaction. England's bank holidays are not stored: they
come from the `holidays` library. The owner writes the table (the operator imports);
transfers reads it for its re-send window, the reader for `sendhub transfers` and
`sendhub calendar list`, the gateway for `/v1/transfers`. Granted explicitly, as
revision 0003 does, to the roles that exist; the others get nothing.

Revision ID: 0004_school_terms
Revises: 0003_roles
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0004_school_terms"
down_revision = "0003_roles"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE school_terms (
        la_code text NOT NULL,
        name text NOT NULL,
        starts_on date NOT NULL,
        ends_on date NOT NULL CHECK (ends_on >= starts_on),
        imported_at timestamptz NOT NULL,
        PRIMARY KEY (la_code, starts_on)
    )""",
]

# Per role: (privileges, object) pairs, granted as `GRANT <privileges> ON <object> TO role`.
GRANTS: dict[str, list[tuple[str, str]]] = {
    "sendhub_transfers": [("SELECT", "school_terms")],
    "sendhub_reader": [("SELECT", "school_terms")],
    "sendhub_gateway": [("SELECT", "school_terms")],
}


def existing_roles() -> list[str]:
    """The roles of GRANTS that exist on this server (roles are cluster-wide)."""
    rows = op.get_bind().execute(
        text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(GRANTS)})
    return [row[0] for row in rows]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for role in existing_roles():
        for privileges, target in GRANTS[role]:
            op.execute(f"GRANT {privileges} ON {target} TO {role}")


def downgrade() -> None:
    op.execute("DROP TABLE school_terms")  # its grants go with it
