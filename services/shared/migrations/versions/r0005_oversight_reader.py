"""The CLI's reading role may read transfers' projection of the histories, which
`sendhub oversight` counts its figures from (the histories, packets and deliveries of
every pupil of a trust's or an LA's schools). The role stays read-only: this grants
SELECT only, and only to the role when it exists (as revisions 0003 and 0004 do).

Revision ID: 0005_oversight_reader
Revises: 0004_school_terms
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0005_oversight_reader"
down_revision = "0004_school_terms"
branch_labels = None
depends_on = None

GRANTS: dict[str, list[tuple[str, str]]] = {
    "sendhub_reader": [("SELECT", "transfers_history")],
}


def upgrade() -> None:
    rows = op.get_bind().execute(
        text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(GRANTS)})
    for (role,) in rows:
        for privileges, target in GRANTS[role]:
            op.execute(f"GRANT {privileges} ON {target} TO {role}")


def downgrade() -> None:
    rows = op.get_bind().execute(
        text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(GRANTS)})
    for (role,) in rows:
        for privileges, target in GRANTS[role]:
            op.execute(f"REVOKE {privileges} ON {target} FROM {role}")
