"""Who looked: every read of a pupil's history or packet through the hub's tools.

Reading needs an authenticated principal and a reason; each read is appended to
`access_log` in PostgreSQL with the principal's name, the reason and the route it came by
(`cli`, `https`), which refuses updates and deletes (a trigger), so the log itself is only
ever added to. `sendhub access-log UPN` shows it. The table and its trigger come from
the migrations (`services/shared/migrations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg


class AccessRefused(Exception):
    """A read asked for without saying why, or by a principal that may not make it."""


@dataclass(frozen=True)
class Access:
    at: datetime
    actor: str
    reason: str
    action: str
    upn: str | None
    packet_id: UUID | None
    detail: str | None
    route: str = "cli"


@dataclass(frozen=True)
class Reader:
    """Who is reading (an authenticated principal's name), why, and by which route: all
    required, all recorded."""

    actor: str
    reason: str
    route: str = "cli"

    @classmethod
    def of(cls, principal: str, reason: str | None, route: str = "cli") -> Reader:
        reason = (reason or "").strip()
        if not reason:
            raise AccessRefused(
                "Reading a pupil's SEN record is recorded in the access log and needs a "
                "reason, for example: --reason 'annual review preparation'")
        return cls(principal, reason, route)


class AccessLog:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def record(self, reader: Reader, action: str, *, upn: str | None = None,
               packet_id: UUID | None = None, detail: str | None = None,
               route: str | None = None) -> None:
        """`route` is how the reader came in: `cli`, `https` (the gateway) or `kafka`;
        unset, the reader's own."""
        with psycopg.connect(self.conninfo) as conn:
            conn.execute(
                "INSERT INTO access_log (actor, reason, action, upn, packet_id, detail, route) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (reader.actor, reader.reason, action, upn, packet_id, detail,
                 route or reader.route))

    def record_pupils(self, reader: Reader, action: str, upns: Sequence[str], *,
                      detail: str | None = None) -> None:
        """One read that showed several pupils (an oversight figure's pupils): an entry
        per pupil, in one transaction."""
        with psycopg.connect(self.conninfo) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO access_log (actor, reason, action, upn, detail, route) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(reader.actor, reader.reason, action, upn, detail, reader.route)
                 for upn in upns])

    def entries(self, upn: str) -> list[Access]:
        with psycopg.connect(self.conninfo) as conn:
            rows = conn.execute(
                "SELECT at, actor, reason, action, upn, packet_id, detail, route FROM access_log "
                "WHERE upn = %s ORDER BY id", (upn,)).fetchall()
        return [Access(*r) for r in rows]
