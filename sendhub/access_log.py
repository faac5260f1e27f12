"""Who looked: every read of a pupil's history or packet through the hub's tools.

Reading needs an actor and a reason; each read is appended to `access_log` in
PostgreSQL, which refuses updates and deletes (a trigger), so the log itself is only
ever added to. `sendhub access-log UPN` shows it. The table and its trigger come from
the migrations (`services/shared/migrations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg


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
        actor, reason = (actor or "").strip(), (reason or "").strip()
        missing = [what for what, value in (("an actor (--actor or SENDHUB_ACTOR)", actor),
                                            ("a reason (--reason)", reason)) if not value]
        if missing:
            raise AccessRefused(
                "Reading a pupil's SEN record is recorded in the access log and needs "
                + " and ".join(missing)
                + ", for example: --actor 'j.smith@trust.example' --reason 'annual review prep'")
        return cls(actor, reason)


class AccessLog:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def record(self, reader: Reader, action: str, *, upn: str | None = None,
               packet_id: UUID | None = None, detail: str | None = None,
               route: str = "cli") -> None:
        """`route` is how the reader came in: `cli`, `https` (the gateway) or `kafka`."""
        with psycopg.connect(self.conninfo) as conn:
            conn.execute(
                "INSERT INTO access_log (actor, reason, action, upn, packet_id, detail, route) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (reader.actor, reader.reason, action, upn, packet_id, detail, route))

    def entries(self, upn: str) -> list[Access]:
        with psycopg.connect(self.conninfo) as conn:
            rows = conn.execute(
                "SELECT at, actor, reason, action, upn, packet_id, detail FROM access_log "
                "WHERE upn = %s ORDER BY id", (upn,)).fetchall()
        return [Access(*r) for r in rows]
