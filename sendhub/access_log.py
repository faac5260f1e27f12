"""Who looked: every read of a pupil's history or packet through the hub's tools.

Reading needs an actor and a reason; each read is appended to `access_log` in
PostgreSQL, which refuses updates and deletes (a trigger), so the log itself is only
ever added to. `sendhub access-log UPN` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

SCHEMA = """
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


class AccessRefused(Exception):
    """A read asked for without saying who is reading and why."""


@dataclass(frozen=True)
class Access:
    at: datetime
    actor: str
    reason: str
    action: str
    upn: str | None
    packet_id: UUID | None
    detail: str | None


@dataclass(frozen=True)
class Reader:
    """Who is reading and why: both required, both recorded."""

    actor: str
    reason: str

    @classmethod
    def of(cls, actor: str | None, reason: str | None) -> Reader:
        missing = [what for what, value in (("an actor (--actor or SENDHUB_ACTOR)", actor),
                                            ("a reason (--reason)", reason))
                   if not (value and value.strip())]
        if missing:
            raise AccessRefused(
                "Reading a pupil's SEN record is recorded in the access log and needs "
                + " and ".join(missing)
                + ", for example: --actor 'j.smith@trust.example' --reason 'annual review prep'")
        assert actor and reason
        return cls(actor.strip(), reason.strip())


class AccessLog:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(727002)")
            conn.execute(SCHEMA)

    def record(self, reader: Reader, action: str, *, upn: str | None = None,
               packet_id: UUID | None = None, detail: str | None = None) -> None:
        with psycopg.connect(self.conninfo) as conn:
            conn.execute(
                "INSERT INTO access_log (actor, reason, action, upn, packet_id, detail) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (reader.actor, reader.reason, action, upn, packet_id, detail))

    def entries(self, upn: str) -> list[Access]:
        with psycopg.connect(self.conninfo) as conn:
            rows = conn.execute(
                "SELECT at, actor, reason, action, upn, packet_id, detail FROM access_log "
                "WHERE upn = %s ORDER BY id", (upn,)).fetchall()
        return [Access(*r) for r in rows]
