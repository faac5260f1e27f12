"""Transfers use cases: keep the history projection, build packets, track their delivery.

Application layer, on PostgreSQL through psycopg. Exactly-once effects: each
partition's consumed position is stored in the same transaction as the history rows
and packets it produced; a (pupil, version) already held changes nothing. Packets are
stored before they are published (an outbox), so a crash never loses one, and a
re-send carries the same `packet_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from contracts.history import PupilHistoryEventV1
from contracts.packet import TransferPacketV1
from services.transfers.domain import build_transfer_packet

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers_history (
    upn text NOT NULL,
    version integer NOT NULL,
    notification_id bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (upn, version)
);
CREATE TABLE IF NOT EXISTS transfers_positions (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS transfers_packets (
    packet_id uuid PRIMARY KEY,
    upn text NOT NULL,
    receiver text NOT NULL,
    move_version integer NOT NULL,
    body jsonb NOT NULL,
    built_at timestamptz NOT NULL,
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS transfers_packets_unpublished
    ON transfers_packets (built_at) WHERE published_at IS NULL;
"""


@dataclass(frozen=True)
class ConsumedPosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class PendingPacket:
    packet_id: UUID
    receiver: str
    body: str


class TransfersStore:
    def __init__(self, conninfo: str, *, clock: Any = None) -> None:
        self.pool = ConnectionPool(
            conninfo, min_size=1, max_size=4, open=True, kwargs={"autocommit": False}
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        with self.pool.connection() as conn:
            # Serialise schema creation between processes starting together.
            conn.execute("SELECT pg_advisory_xact_lock(727001)")
            conn.execute(SCHEMA)

    def close(self) -> None:
        self.pool.close()

    def record_history(
        self, batch: Sequence[tuple[PupilHistoryEventV1, ConsumedPosition]]
    ) -> list[UUID]:
        """Store one partition's history events with its position; build packets on moves."""
        if not batch:
            return []
        topic, partition = batch[0][1].topic, batch[0][1].partition
        built: list[UUID] = []
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT next_offset FROM transfers_positions "
                "WHERE topic = %s AND partition = %s FOR UPDATE",
                (topic, partition),
            ).fetchone()
            next_offset = row[0] if row else 0
            fresh = [(h, p) for h, p in batch if p.offset >= next_offset]
            for history_event, _ in fresh:
                inserted = conn.execute(
                    "INSERT INTO transfers_history (upn, version, notification_id, event) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING version",
                    (
                        history_event.upn,
                        history_event.version,
                        history_event.notification_id,
                        Jsonb(history_event.model_dump(mode="json")),
                    ),
                ).fetchone()
                if inserted and history_event.event.event_type == "pupil_moved":
                    built.append(self._build_packet(conn, history_event))
            if fresh:
                last = max(p.offset for _, p in fresh)
                conn.execute(
                    "INSERT INTO transfers_positions (topic, partition, next_offset) "
                    "VALUES (%s, %s, %s) ON CONFLICT (topic, partition) "
                    "DO UPDATE SET next_offset = EXCLUDED.next_offset",
                    (topic, partition, last + 1),
                )
        return built

    def _build_packet(self, conn: Connection[Any], move: PupilHistoryEventV1) -> UUID:
        history = self.history_of(move.upn, conn=conn, up_to=move.version)
        packet = build_transfer_packet(history, move.version, generated_at=self.clock())
        conn.execute(
            "INSERT INTO transfers_packets "
            "(packet_id, upn, receiver, move_version, body, built_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                packet.packet_id,
                move.upn,
                packet.to_setting.receiver,
                move.version,
                Jsonb(packet.model_dump(mode="json")),
                packet.generated_at,
            ),
        )
        return packet.packet_id

    def history_of(
        self, upn: str, *, conn: Connection[Any] | None = None, up_to: int | None = None
    ) -> list[PupilHistoryEventV1]:
        query = "SELECT event FROM transfers_history WHERE upn = %s"
        params: list[Any] = [upn]
        if up_to is not None:
            query += " AND version <= %s"
            params.append(up_to)
        query += " ORDER BY version"

        def read(c: Connection[Any]) -> list[PupilHistoryEventV1]:
            rows = c.execute(query, params).fetchall()
            return [
                PupilHistoryEventV1.model_validate(
                    r[0], extra="ignore", context={"trusted": True}
                )
                for r in rows
            ]

        if conn is not None:
            return read(conn)
        with self.pool.connection() as own:
            return read(own)

    def pending_packets(self, limit: int = 100) -> list[PendingPacket]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT packet_id, receiver, body::text FROM transfers_packets "
                "WHERE published_at IS NULL ORDER BY built_at LIMIT %s",
                (limit,),
            ).fetchall()
        return [PendingPacket(r[0], r[1], r[2]) for r in rows]

    def mark_published(self, packet_ids: Sequence[UUID]) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE transfers_packets SET published_at = %s WHERE packet_id = ANY(%s)",
                (self.clock(), list(packet_ids)),
            )

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT body FROM transfers_packets WHERE packet_id = %s", (packet_id,)
            ).fetchone()
        return None if row is None else TransferPacketV1.model_validate(row[0])
