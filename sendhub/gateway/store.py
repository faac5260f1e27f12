"""The gateway's own SQL: inbox pages with a cursor, the packets a principal oversees,
webhooks and their delivery attempts.

Adapter layer; rows are read by column name into dataclasses. Packets are read from
transfers' tables (`transfers_packets`, `transfers_delivery`) without changing them;
`webhooks` and `webhook_deliveries` are the gateway's (migration 0002). A packet is in
an inbox once transfers has sent it (its first `sent` delivery step), and that step's
id is the inbox's order and cursor, so a packet built early but sent late is not
skipped by a client polling with `since`. Packets are sealed with their pupil's data key
(`services.transfers.sealed_rows`): SQL selects by their plain routing columns, and each
packet is opened here; one whose pupil was erased comes back as an `ErasedPacket`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from contracts.packet import TransferPacketV1
from services.shared.pupil_keys import PostgresPupilKeys, PupilKeys
from services.transfers.sealed_rows import ErasedPacket, prepare, read_packet

LOST_PUPILS_PREFIX = "lost-pupils.la-"
_SENT = ("JOIN LATERAL (SELECT min(d.id) AS position, min(d.at) AS sent_at "
         "FROM transfers_delivery d WHERE d.packet_id = p.packet_id AND d.state = 'sent') s "
         "ON s.position IS NOT NULL")


def inbox_filter(inbox: str) -> tuple[str, list[Any]]:
    """SQL selecting an inbox's packets: a receiver's own, or an LA's lost pupils (packets
    to `lost-pupils` from a school in that LA; `access.inbox_of`)."""
    if inbox.startswith(LOST_PUPILS_PREFIX):
        la_code = inbox[len(LOST_PUPILS_PREFIX):]
        if la_code == "unknown":
            return ("p.receiver = 'lost-pupils' AND p.body->'from_setting'->>'la_code' IS NULL",
                    [])
        return "p.receiver = 'lost-pupils' AND p.body->'from_setting'->>'la_code' = %s", [la_code]
    return "p.receiver = %s", [inbox]


def inboxes_filter(inboxes: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL selecting the packets of any of these inboxes (an LA reads two)."""
    parts = [inbox_filter(inbox) for inbox in inboxes]
    if not parts:
        return "false", []
    return (" OR ".join(f"({where})" for where, _ in parts),
            [param for _, params in parts for param in params])


@dataclass(frozen=True)
class InboxPacket:
    position: int
    packet: TransferPacketV1 | ErasedPacket


@dataclass(frozen=True)
class Ends:
    """A packet's two settings, for scoping transfers lists."""

    packet_id: uuid.UUID
    from_urn: str | None
    to_urn: str | None


@dataclass(frozen=True)
class Webhook:
    id: uuid.UUID
    principal: str
    url: str
    created_at: datetime


@dataclass(frozen=True)
class DueDelivery:
    """A packet to push to a webhook now: attempt 1, or a retry whose time has come."""

    webhook: Webhook
    secret: str
    packet: TransferPacketV1
    attempt: int


class GatewayStore:
    """`keys` (`pupil_keys_for(settings)`, closed with the store) open the packets; a
    store for webhooks alone (the admin console, `sendhub webhooks`) needs none."""

    def __init__(self, conninfo: str, keys: PupilKeys | None = None) -> None:
        self._keys = keys
        self.pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            conninfo, min_size=1, max_size=8, open=True,
            kwargs={"row_factory": dict_row, "autocommit": True})

    @property
    def keys(self) -> PupilKeys:
        if self._keys is None:
            raise RuntimeError("this GatewayStore was built without the pupils' data keys, "
                               "so it reads no packet: give it pupil_keys_for(settings)")
        return self._keys

    def close(self) -> None:
        self.pool.close()
        if isinstance(self._keys, PostgresPupilKeys):
            self._keys.close()

    def _read(self, row: DictRow) -> TransferPacketV1 | ErasedPacket:
        return read_packet(self.keys, str(row["upn"]), str(row["receiver"]), row["body"],
                           row["sealed"])

    def _all(self, query: str, params: Sequence[Any]) -> list[DictRow]:
        with self.pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    # -- packets --------------------------------------------------------------------

    def inbox(self, inboxes: Sequence[str], *, since: int | None, limit: int,
              before: int | None = None) -> tuple[list[InboxPacket], bool]:
        """The packets of these inboxes (one position order across them), newest first:
        without `since`, the newest `limit` (sent before `before`, a web page's "older
        packets"); with it, the oldest `limit` sent after it. True when more are waiting
        after (or, with `before`, before) these."""
        where, params = inboxes_filter(inboxes)
        query = ("SELECT s.position, p.upn, p.receiver, p.body, p.sealed "
                 f"FROM transfers_packets p {_SENT} WHERE ({where})")
        if since is None:
            if before is not None:
                query += " AND s.position < %s"
                params = [*params, before]
            query += " ORDER BY s.position DESC LIMIT %s"
            rows = self._all(query, [*params, limit + 1])
            more, rows = len(rows) > limit, rows[:limit]
        else:
            query += " AND s.position > %s ORDER BY s.position LIMIT %s"
            rows = self._all(query, [*params, since, limit + 1])
            more, rows = len(rows) > limit, rows[:limit][::-1]
        prepare(self.keys, (str(r["upn"]) for r in rows))
        return [InboxPacket(int(r["position"]), self._read(r)) for r in rows], more

    def packets_touching(self, urns: Sequence[str]) -> list[Ends]:
        """Packets sent from or to any of these URNs."""
        rows = self._all(
            "SELECT packet_id, body->'from_setting'->>'urn' AS from_urn, "
            "body->'to_setting'->>'urn' AS to_urn FROM transfers_packets "
            "WHERE body->'from_setting'->>'urn' = ANY(%s) OR body->'to_setting'->>'urn' = ANY(%s)",
            [list(urns), list(urns)])
        return [Ends(r["packet_id"], r["from_urn"], r["to_urn"]) for r in rows]

    # -- webhooks ---------------------------------------------------------------------

    def add_webhook(self, principal: str, url: str, secret: str) -> Webhook:
        rows = self._all("INSERT INTO webhooks (id, principal, url, secret) "
                         "VALUES (%s, %s, %s, %s) RETURNING id, principal, url, created_at",
                         [uuid.uuid4(), principal, url, secret])
        return Webhook(**rows[0])

    def webhooks(self, principal: str | None = None) -> list[Webhook]:
        """Active webhooks (of one principal, or all) whose principal is not revoked."""
        rows = self._all(
            "SELECT w.id, w.principal, w.url, w.created_at FROM webhooks w "
            "JOIN principals p ON p.name = w.principal AND p.revoked_at IS NULL "
            "WHERE w.revoked_at IS NULL AND (%s::text IS NULL OR w.principal = %s) "
            "ORDER BY w.created_at", [principal, principal])
        return [Webhook(**r) for r in rows]

    def revoke_webhook(self, webhook_id: uuid.UUID, principal: str) -> bool:
        return bool(self._all("UPDATE webhooks SET revoked_at = now() WHERE id = %s AND "
                              "principal = %s AND revoked_at IS NULL RETURNING id",
                              [webhook_id, principal]))

    def due(self, webhook: Webhook, inbox: str, limit: int) -> list[DueDelivery]:
        """Packets sent to the webhook's inbox since it was registered that were never
        pushed, or whose last failed attempt's retry time has come. A packet whose pupil
        was erased is never pushed: its attempt is recorded as failed, with the erasure,
        and no retry."""
        where, params = inbox_filter(inbox)
        rows = self._all(
            "SELECT p.upn, p.receiver, p.body, p.sealed, w.secret, last.attempt "
            f"FROM transfers_packets p {_SENT} "
            "JOIN webhooks w ON w.id = %s "
            "LEFT JOIN LATERAL (SELECT wd.attempt, wd.delivered, wd.next_attempt_at "
            "  FROM webhook_deliveries wd WHERE wd.webhook_id = w.id "
            "  AND wd.packet_id = p.packet_id ORDER BY wd.attempt DESC LIMIT 1) last ON true "
            f"WHERE {where} AND s.sent_at >= w.created_at AND (last.attempt IS NULL OR "
            "(NOT last.delivered AND last.next_attempt_at <= now())) "
            "ORDER BY s.position LIMIT %s", [webhook.id, *params, limit])
        prepare(self.keys, (str(r["upn"]) for r in rows))
        found = []
        for r in rows:
            packet, attempt = self._read(r), int(r["attempt"] or 0) + 1
            if isinstance(packet, ErasedPacket):
                self._all(
                    "INSERT INTO webhook_deliveries (webhook_id, packet_id, attempt, status, "
                    "error, delivered, next_attempt_at) VALUES (%s, %s, %s, NULL, %s, false, "
                    "NULL) RETURNING id", [webhook.id, packet.packet_id, attempt,
                                           f"not pushed: the pupil's data was {packet.describe()}"])
                continue
            found.append(DueDelivery(webhook, r["secret"], packet, attempt))
        return found

    def record_attempt(self, due: DueDelivery, *, status: int | None, error: str | None,
                       delivered: bool, retry_in: float | None) -> None:
        self._all(
            "INSERT INTO webhook_deliveries (webhook_id, packet_id, attempt, status, error, "
            "delivered, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s::interval IS NULL THEN NULL ELSE now() + %s::interval END) "
            "RETURNING id",
            [due.webhook.id, due.packet.packet_id, due.attempt, status, error, delivered,
             _interval(retry_in), _interval(retry_in)])


def _interval(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
