"""Per-pupil data keys, and erasure by destroying them.

`pupil_keys` holds each pupil's AES-256 data key wrapped by the master key (which the
database never sees; `services/shared/pupil_keys.py`). A row is never deleted and can
change only once: its key destroyed, with when, by whose authority and why (UK GDPR
Article 17 erasure, or the retention schedule). After that every sealed copy of the
pupil's data is unreadable, and the row is the erasure's record.

The plain UPN kept to find a pupil's rows (transfers' tables, the access log) is
replaced at erasure by the pupil's pseudonym (`erased:<stream id>`) through one
function owned by the owner; the access log's append-only trigger allows exactly that
change while the function runs, and nothing else.

Revision ID: 0007_pupil_keys
Revises: 0006_web_sessions
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0007_pupil_keys"
down_revision = "0006_web_sessions"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE pupil_keys (
        pupil_ref text PRIMARY KEY,
        wrapped_key bytea,
        master_key_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        erased_at timestamptz,
        erased_by text,
        erasure_reason text,
        CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL)),
        CHECK (erased_at IS NULL OR (length(trim(erased_by)) > 0
                                     AND length(trim(erasure_reason)) > 0))
    )""",
    """CREATE FUNCTION pupil_keys_only_erased() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'pupil_keys rows are never deleted: an erasure destroys the key';
        END IF;
        IF OLD.wrapped_key IS NULL THEN
            RAISE EXCEPTION 'pupil % was erased: the erasure record cannot change', OLD.pupil_ref;
        END IF;
        IF NEW.wrapped_key IS NOT NULL OR NEW.pupil_ref <> OLD.pupil_ref
           OR NEW.created_at <> OLD.created_at THEN
            RAISE EXCEPTION 'a pupil key can only be destroyed, never replaced';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER pupil_keys_only_erased BEFORE UPDATE OR DELETE ON pupil_keys
        FOR EACH ROW EXECUTE FUNCTION pupil_keys_only_erased()""",
    # The access log stays append-only, except for the erasure's one change.
    """CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.upn IS NOT NULL
           AND current_setting('sendhub.erasing', true) = OLD.upn
           AND NEW.upn = current_setting('sendhub.pseudonym', true)
           AND (NEW.id, NEW.at, NEW.actor, NEW.reason, NEW.action, NEW.packet_id, NEW.route,
                NEW.detail)
               IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.reason, OLD.action,
                                     OLD.packet_id, OLD.route, OLD.detail) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'access_log is append-only';
    END $$""",
    """CREATE FUNCTION sendhub_pseudonymise_pupil(plain_upn text, pseudonym text)
        RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp AS $$
    DECLARE changed integer := 0; n integer;
    BEGIN
        PERFORM set_config('sendhub.erasing', plain_upn, true);
        PERFORM set_config('sendhub.pseudonym', pseudonym, true);
        -- What is left plain of each history event (its kind, date and source) goes too:
        -- with a derivable pseudonym it would still say what happened to the pupil, when.
        UPDATE transfers_history SET upn = pseudonym,
            event = jsonb_build_object('version', version, 'erased', true)
            WHERE upn = plain_upn;
        GET DIAGNOSTICS n = ROW_COUNT; changed := changed + n;
        UPDATE transfers_packets SET upn = pseudonym WHERE upn = plain_upn;
        GET DIAGNOSTICS n = ROW_COUNT; changed := changed + n;
        UPDATE access_log SET upn = pseudonym WHERE upn = plain_upn;
        GET DIAGNOSTICS n = ROW_COUNT; changed := changed + n;
        PERFORM set_config('sendhub.erasing', '', true);
        RETURN changed;
    END $$""",
    "REVOKE ALL ON FUNCTION sendhub_pseudonymise_pupil(text, text) FROM PUBLIC",
]
GRANTS: dict[str, list[tuple[str, str]]] = {
    # Each service that stores a pupil's data makes the pupil's key on first write.
    "sendhub_records": [("SELECT, INSERT", "pupil_keys")],
    "sendhub_transfers": [("SELECT, INSERT", "pupil_keys")],
    # Those that read it back only read keys.
    "sendhub_gateway": [("SELECT", "pupil_keys")],
    "sendhub_reader": [("SELECT", "pupil_keys")],
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
    op.execute("DROP FUNCTION sendhub_pseudonymise_pupil(text, text)")
    op.execute("""CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$""")
    op.execute("DROP TABLE pupil_keys")
    op.execute("DROP FUNCTION pupil_keys_only_erased()")
