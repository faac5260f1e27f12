"""Who is signed in to the web application: sessions kept in PostgreSQL.

A session's cookie is 32 random bytes; the table keeps only its SHA-256, so a copy of
the table signs nobody in. A session lasts `SENDHUB_WEB_SESSION_HOURS` at most and ends
after `SENDHUB_WEB_IDLE_MINUTES` without a request, at sign-out, and (a token sign-in)
as soon as its token is revoked or expires. Every form carries the session's `csrf`
secret back (`csrf_matches`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
from psycopg.rows import dict_row

SignedInWith = Literal["token", "oidc", "link"]


@dataclass(frozen=True)
class WebSession:
    principal: str
    signed_in_with: SignedInWith
    credential_id: uuid.UUID | None
    csrf: str
    expires_at: datetime


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def csrf_matches(session: WebSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf, str(given))


class ConsoleSessions:
    """The admin console's sessions, in its own process's memory only: no row that the
    gateway's database role could write ever makes anyone the operator, and a restart of
    the console signs the operator out."""

    def __init__(self, *, hours: float = 8, idle_minutes: float = 60) -> None:
        self.lifetime = timedelta(hours=hours)
        self.idle = timedelta(minutes=idle_minutes)
        self._live: dict[str, tuple[WebSession, datetime]] = {}

    def begin(self, principal: str, signed_in_with: SignedInWith,
              credential_id: uuid.UUID | None = None) -> str:
        if signed_in_with != "link":
            raise ValueError("the console signs in only by its one-time link")
        cookie = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        self._live[_digest(cookie)] = (WebSession(principal, "link", None,
                                                  secrets.token_urlsafe(24),
                                                  now + self.lifetime), now)
        return cookie

    def find(self, cookie: str) -> WebSession | None:
        key, now = _digest(cookie), datetime.now(UTC)
        found = self._live.get(key)
        if found is None or found[0].expires_at <= now or found[1] <= now - self.idle:
            self._live.pop(key, None)
            return None
        self._live[key] = (found[0], now)
        return found[0]

    def end(self, cookie: str) -> None:
        self._live.pop(_digest(cookie), None)


class WebSessions:
    def __init__(self, conninfo: str, *, hours: float = 8, idle_minutes: float = 60) -> None:
        self.conninfo = conninfo
        self.lifetime = timedelta(hours=hours)
        self.idle = timedelta(minutes=idle_minutes)

    def _connect(self) -> psycopg.Connection[dict[str, object]]:
        return psycopg.connect(self.conninfo, row_factory=dict_row)

    def begin(self, principal: str, signed_in_with: SignedInWith,
              credential_id: uuid.UUID | None = None) -> str:
        """A new session; returns the cookie to set (never stored)."""
        cookie = secrets.token_urlsafe(32)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO web_sessions (cookie_hash, principal, signed_in_with, "
                "credential_id, csrf, expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (_digest(cookie), principal, signed_in_with, credential_id,
                 secrets.token_urlsafe(24), datetime.now(UTC) + self.lifetime))
        return cookie

    def find(self, cookie: str) -> WebSession | None:
        """The live session of a cookie (its idle clock restarted), or None. A token
        sign-in lives only while its token does; the principal must still be active."""
        with self._connect() as conn:
            row = conn.execute(
                """UPDATE web_sessions s SET last_seen_at = now()
                   WHERE s.cookie_hash = %s AND s.ended_at IS NULL AND s.expires_at > now()
                     AND s.last_seen_at > now() - %s
                     AND s.signed_in_with IN ('token', 'oidc') AND EXISTS (
                          SELECT 1 FROM principals p WHERE p.name = s.principal
                          AND p.revoked_at IS NULL)
                     AND (s.credential_id IS NULL OR EXISTS (
                          SELECT 1 FROM credentials c WHERE c.id = s.credential_id
                          AND c.revoked_at IS NULL AND c.expires_at > now()))
                   RETURNING s.principal, s.signed_in_with, s.credential_id, s.csrf,
                             s.expires_at""",
                (_digest(cookie), self.idle)).fetchone()
        if row is None:
            return None
        return WebSession(str(row["principal"]), row["signed_in_with"],  # type: ignore[arg-type]
                          row["credential_id"], str(row["csrf"]),  # type: ignore[arg-type]
                          row["expires_at"])  # type: ignore[arg-type]

    def end(self, cookie: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE web_sessions SET ended_at = now() "
                         "WHERE cookie_hash = %s AND ended_at IS NULL", (_digest(cookie),))
