"""The principals the hub knows and their bearer tokens, kept in PostgreSQL.

A token is `shb_<credential id>_<secret>`: the id finds the one row to check, the secret
is kept only as an scrypt hash (slow on purpose: a stolen table does not yield tokens),
and a token that verified once is remembered in this process by its SHA-256 for a
minute, so the gateway does not pay scrypt on every request. Revocation and expiry are
still read from the table at every check, so `sendhub principals revoke` takes effect on
the next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from services.shared.access import Kind, Principal, PrincipalError, slug

TOKEN_PREFIX = "shb_"
DEFAULT_TOKEN_DAYS = 90
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_VERIFIED_FOR_SECONDS = 60.0


class Unauthenticated(Exception):
    """No valid credentials: the message says which check failed, never the secret."""


class UnknownPrincipal(LookupError):
    pass


@dataclass(frozen=True)
class StoredPrincipal:
    principal: Principal
    uses_kafka: bool
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredToken:
    """A token as the operator sees it: its id and dates, never its secret."""

    credential_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    credential_id: uuid.UUID
    expires_at: datetime


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def secret_matches(secret: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    again = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(again, base64.b64decode(digest))


def _split_token(token: str) -> tuple[uuid.UUID, str]:
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        raise Unauthenticated("not a sendhub token")
    ident, _, secret = token[len(TOKEN_PREFIX):].partition("_")
    try:
        return uuid.UUID(hex=ident), secret
    except ValueError:
        raise Unauthenticated("not a sendhub token") from None


def credential_id_of(token: str) -> uuid.UUID:
    """The credential a token was issued as (a web sign-in lives only while it does)."""
    return _split_token(token)[0]


class PrincipalStore:
    def __init__(self, conninfo: str, *, with_members: bool = True) -> None:
        """`with_members=False` for a caller that never needs a trust's or an LA's
        settings (ingest, which may read the principals table only)."""
        self.conninfo = conninfo
        self.members = with_members
        self._verified: dict[str, tuple[float, uuid.UUID]] = {}

    def _connect(self) -> psycopg.Connection[dict[str, object]]:
        return psycopg.connect(self.conninfo, row_factory=dict_row)

    def add(self, principal: Principal, *, uses_kafka: bool = False) -> StoredPrincipal:
        """Adds the principal, or updates what it acts for (idempotent); a revoked one
        comes back only by adding it again, on purpose."""
        with self._connect() as conn:
            conn.execute(
                """INSERT INTO principals (name, kind, identifier, acts_for, uses_kafka)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (name) DO UPDATE SET acts_for = EXCLUDED.acts_for,
                       uses_kafka = principals.uses_kafka OR EXCLUDED.uses_kafka,
                       revoked_at = NULL""",
                (principal.name, principal.kind.value, principal.identifier,
                 sorted(principal.acts_for), uses_kafka))
        stored = self.get(principal.name)
        assert stored is not None
        return stored

    def get(self, name: str) -> StoredPrincipal | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM principals WHERE name = %s", (name,)).fetchone()
        return self._stored(row) if row else None

    def active(self, name: str) -> Principal | None:
        """The principal as it may act now (with its members), or None when unknown or
        revoked."""
        stored = self.get(name)
        if stored is None or stored.revoked_at is not None:
            return None
        return self.with_members(stored.principal) if self.members else stored.principal

    def all(self) -> list[StoredPrincipal]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM principals ORDER BY kind, name").fetchall()
        return [self._stored(row) for row in rows]

    def with_members(self, principal: Principal) -> Principal:
        """A trust's member schools and an LA's settings, from the settings registry now."""
        if principal.kind not in (Kind.trust, Kind.la):
            return principal
        with self._connect() as conn:
            rows = conn.execute("SELECT urn, trust, la_code FROM settings_registry").fetchall()
        if principal.kind is Kind.la:
            urns = [r["urn"] for r in rows if r["la_code"] == principal.identifier]
        else:
            urns = [r["urn"] for r in rows if r["trust"]
                    and slug(str(r["trust"])) == principal.identifier]
        return principal.with_members(str(u) for u in urns)

    def revoke(self, name: str) -> None:
        """The principal and every credential it holds stop working now."""
        with self._connect() as conn:
            found = conn.execute(
                "UPDATE principals SET revoked_at = now() WHERE name = %s RETURNING name",
                (name,)).fetchone()
            if not found:
                raise UnknownPrincipal(f"no principal {name!r}: see `sendhub principals list`")
            conn.execute("UPDATE credentials SET revoked_at = now() "
                         "WHERE principal = %s AND revoked_at IS NULL", (name,))
            conn.execute("UPDATE webhooks SET revoked_at = now() "
                         "WHERE principal = %s AND revoked_at IS NULL", (name,))

    def issue_token(self, name: str, *, days: int = DEFAULT_TOKEN_DAYS) -> IssuedToken:
        if self.active(name) is None:
            raise UnknownPrincipal(f"no active principal {name!r}: add it first "
                                   "(`sendhub principals add KIND ID`)")
        credential = uuid.uuid4()
        secret = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=days)
        with self._connect() as conn:
            conn.execute("INSERT INTO credentials (id, principal, secret_hash, expires_at) "
                         "VALUES (%s, %s, %s, %s)",
                         (credential, name, hash_secret(secret), expires))
        return IssuedToken(f"{TOKEN_PREFIX}{credential.hex}_{secret}", credential, expires)

    def revoke_tokens_except(self, name: str, keep: uuid.UUID | None = None) -> int:
        """Revoke the principal's tokens (all but `keep`, when rotating)."""
        with self._connect() as conn:
            cur = conn.execute("UPDATE credentials SET revoked_at = now() WHERE principal = %s "
                               "AND revoked_at IS NULL AND id IS DISTINCT FROM %s", (name, keep))
            return cur.rowcount

    def tokens(self, name: str) -> list[StoredToken]:
        """A principal's tokens, newest first (revoked ones too)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, created_at, expires_at, last_used_at, revoked_at FROM credentials "
                "WHERE principal = %s ORDER BY created_at DESC", (name,)).fetchall()
        return [StoredToken(r["id"], r["created_at"], r["expires_at"],  # type: ignore[arg-type]
                            r["last_used_at"], r["revoked_at"])  # type: ignore[arg-type]
                for r in rows]

    def revoke_token(self, name: str, credential_id: uuid.UUID) -> bool:
        """One of the principal's tokens stops working now; False if it had no such live
        token."""
        with self._connect() as conn:
            cur = conn.execute("UPDATE credentials SET revoked_at = now() WHERE id = %s "
                               "AND principal = %s AND revoked_at IS NULL",
                               (credential_id, name))
            return cur.rowcount == 1

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for, checked against the table now."""
        credential, secret = _split_token(token)
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        with self._connect() as conn:
            row = conn.execute(
                """SELECT c.secret_hash, c.expires_at, c.revoked_at, p.name,
                          p.revoked_at AS principal_revoked
                   FROM credentials c JOIN principals p ON p.name = c.principal
                   WHERE c.id = %s""", (credential,)).fetchone()
            if row is None:
                raise Unauthenticated("unknown token")
            if row["revoked_at"] is not None or row["principal_revoked"] is not None:
                raise Unauthenticated("token revoked")
            if row["expires_at"] <= datetime.now(UTC):  # type: ignore[operator]
                raise Unauthenticated("token expired")
            remembered = self._verified.get(fingerprint)
            if remembered is None or remembered[0] < time.monotonic() \
                    or remembered[1] != credential:
                if not secret_matches(secret, str(row["secret_hash"])):
                    raise Unauthenticated("token does not match")
                self._verified[fingerprint] = (time.monotonic() + _VERIFIED_FOR_SECONDS,
                                               credential)
            conn.execute("UPDATE credentials SET last_used_at = now() WHERE id = %s",
                         (credential,))
        principal = self.active(str(row["name"]))
        if principal is None:
            raise Unauthenticated("token revoked")
        return principal

    @staticmethod
    def _stored(row: dict[str, object]) -> StoredPrincipal:
        try:
            principal = Principal(Kind(str(row["kind"])), str(row["identifier"]),
                                  frozenset(row["acts_for"] or ()))  # type: ignore[call-overload]
        except (ValueError, PrincipalError) as exc:
            raise PrincipalError(f"principal {row['name']!r} in the database: {exc}") from None
        return StoredPrincipal(principal, bool(row["uses_kafka"]),
                               row["created_at"], row["revoked_at"])  # type: ignore[arg-type]

