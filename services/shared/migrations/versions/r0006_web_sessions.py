"""The web application's sign-in sessions.

A session is created when a person signs in (with their organisation's OpenID Connect
account, or with a hub token) and ends when they sign out, when it expires, or, for a
token sign-in, when that token is revoked. Only the SHA-256 of the session's cookie is
kept, so the table never yields a usable cookie. `csrf` is the session's secret that
every form carries back. The gateway (which serves the web application) creates, reads
and ends sessions; the owner (the operator's admin console) too. The gateway also reads
the access log now: the auditor's pupil page lists who has read the pupil's record.
Granted explicitly, as revision 0003 does, to the roles that exist.

Revision ID: 0006_web_sessions
Revises: 0005_oversight_reader
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006_web_sessions"
down_revision = "0005_oversight_reader"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE web_sessions (
        cookie_hash text PRIMARY KEY,
        principal text NOT NULL,
        signed_in_with text NOT NULL CHECK (signed_in_with IN ('token', 'oidc')),
        credential_id uuid,
        csrf text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        ended_at timestamptz
    )""",
    "CREATE INDEX web_sessions_by_principal ON web_sessions (principal)",
]
GRANTS: dict[str, list[tuple[str, str]]] = {
    "sendhub_gateway": [("SELECT, INSERT, UPDATE (last_seen_at, ended_at)", "web_sessions"),
                        ("SELECT", "transfers_history"),
                        # the auditor's pupil page shows who has read the pupil's record
                        ("SELECT", "access_log")],
}


def _roles() -> list[str]:
    rows = op.get_bind().execute(
        text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(GRANTS)})
    return [role for (role,) in rows]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for role in _roles():
        for privileges, target in GRANTS[role]:
            op.execute(f"GRANT {privileges} ON {target} TO {role}")


def downgrade() -> None:
    for role in _roles():  # only what this revision granted (0003 grants INSERT on access_log)
        for privileges, target in GRANTS[role]:
            op.execute(f"REVOKE {privileges} ON {target} FROM {role}")
    op.execute("DROP TABLE web_sessions")
