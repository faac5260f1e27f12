"""Transfers use cases: keep the history projection, build packets and amendments, track
their delivery from receipts, re-send what nobody acknowledged, keep the settings registry.

Application layer, on PostgreSQL through psycopg. Exactly-once effects: each
partition's consumed position is stored in the same transaction as the rows it produced;
a (pupil, version) already held and a receipt already held change nothing. Packets are
stored before they are published (an outbox), so a crash never loses one, and a re-send
carries the same `packet_id`. Delivery states are events, appended, never updated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from contracts.history import PupilHistoryEventV1
from contracts.packet import Setting, TransferPacketV1
from contracts.receipts import PacketReceiptV1
from contracts.school_events import PupilMovedV1
from services.transfers.domain import (
    Delivery,
    DeliveryEvent,
    amendment_changes,
    build_transfer_packet,
    delivery_of,
    is_late_entry,
)
from services.transfers.registry import RegisteredSetting

log = logging.getLogger("sendhub.transfers")

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
ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS history_version integer;
ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'first';
ALTER TABLE transfers_packets ADD COLUMN IF NOT EXISTS supersedes uuid;
CREATE INDEX IF NOT EXISTS transfers_packets_unpublished
    ON transfers_packets (built_at) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS transfers_packets_by_pupil ON transfers_packets (upn);
CREATE TABLE IF NOT EXISTS transfers_delivery (
    id bigserial PRIMARY KEY,
    packet_id uuid NOT NULL REFERENCES transfers_packets (packet_id),
    state text NOT NULL,
    at timestamptz NOT NULL,
    detail text,
    receipt_key text UNIQUE
);
CREATE INDEX IF NOT EXISTS transfers_delivery_by_packet ON transfers_delivery (packet_id, id);
CREATE OR REPLACE FUNCTION transfers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'transfers_delivery is append-only'; END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'transfers_delivery_append_only') THEN
        CREATE TRIGGER transfers_delivery_append_only BEFORE UPDATE OR DELETE
            ON transfers_delivery FOR EACH ROW EXECUTE FUNCTION transfers_append_only();
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS settings_registry (
    urn text PRIMARY KEY,
    name text NOT NULL,
    phase text NOT NULL,
    la_code text,
    la_name text,
    establishment_number text,
    ukprn text UNIQUE,
    trust text,
    imported_at timestamptz NOT NULL
);
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
    attempt: int


@dataclass(frozen=True)
class PacketDelivery:
    """A row of `sendhub transfers`: one packet and where its delivery stands."""

    packet_id: UUID
    upn: str
    pupil: str
    receiver: str
    receiver_name: str | None
    kind: str
    built_at: datetime
    supersedes: UUID | None
    delivery: Delivery
    overdue: bool
    school_days_waiting: int


ReceiptProblem = Literal["unknown_packet", "wrong_receiver"]


class TransfersStore:
    def __init__(self, conninfo: str, *, clock: Callable[[], datetime] | None = None,
                 resend_after_school_days: int = 15) -> None:
        self.pool = ConnectionPool(
            conninfo, min_size=1, max_size=4, open=True, kwargs={"autocommit": False}
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.resend_after_school_days = resend_after_school_days
        with self.pool.connection() as conn:
            # Serialise schema creation between processes starting together.
            conn.execute("SELECT pg_advisory_xact_lock(727001)")
            conn.execute(SCHEMA)

    def close(self) -> None:
        self.pool.close()

    # -- the history projection, packets and amendments ------------------------------

    def record_history(
        self, batch: Sequence[tuple[PupilHistoryEventV1, ConsumedPosition]]
    ) -> list[UUID]:
        """Store one partition's history events with its position; build packets on moves
        and an amendment for each pupil whose former school recorded late."""
        if not batch:
            return []
        topic, partition = batch[0][1].topic, batch[0][1].partition
        built: list[UUID] = []
        with self.pool.connection() as conn, conn.transaction():
            next_offset = self._next_offset(conn, topic, partition)
            fresh = [(h, p) for h, p in batch if p.offset >= next_offset]
            late: set[str] = set()
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
                if not inserted:
                    continue
                if history_event.event.event_type == "pupil_moved":
                    built.append(self._build_packet(conn, history_event))
                elif self._calls_for_amendment(conn, history_event):
                    late.add(history_event.upn)
            for upn in sorted(late):
                amendment = self._build_amendment(conn, upn)
                if amendment:
                    built.append(amendment)
            if fresh:
                self._save_offset(conn, topic, partition, max(p.offset for _, p in fresh))
        return built

    @staticmethod
    def _next_offset(conn: Connection[Any], topic: str, partition: int) -> int:
        row = conn.execute(
            "SELECT next_offset FROM transfers_positions "
            "WHERE topic = %s AND partition = %s FOR UPDATE",
            (topic, partition),
        ).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _save_offset(conn: Connection[Any], topic: str, partition: int, last: int) -> None:
        conn.execute(
            "INSERT INTO transfers_positions (topic, partition, next_offset) "
            "VALUES (%s, %s, %s) ON CONFLICT (topic, partition) "
            "DO UPDATE SET next_offset = EXCLUDED.next_offset",
            (topic, partition, last + 1),
        )

    def _latest_packet(self, conn: Connection[Any], upn: str
                       ) -> tuple[TransferPacketV1, int] | None:
        """The pupil's newest packet (latest move, latest amendment) and its move's version."""
        row = conn.execute(
            "SELECT body, move_version FROM transfers_packets WHERE upn = %s "
            "ORDER BY move_version DESC, coalesce(history_version, move_version) DESC LIMIT 1",
            (upn,),
        ).fetchone()
        return None if row is None else (TransferPacketV1.model_validate(row[0]), int(row[1]))

    def _calls_for_amendment(self, conn: Connection[Any], event: PupilHistoryEventV1) -> bool:
        latest = self._latest_packet(conn, event.upn)
        if latest is None or event.version <= latest[0].history_version:
            return False
        (move,) = self.history_of(event.upn, conn=conn, versions=(latest[1], latest[1]))
        assert isinstance(move.event, PupilMovedV1)
        return is_late_entry(event, move.event)

    def _build_packet(self, conn: Connection[Any], move: PupilHistoryEventV1) -> UUID:
        history = self.history_of(move.upn, conn=conn, versions=(1, move.version))
        latest = self._latest_packet(conn, move.upn)
        previous = latest[0] if latest else None
        rerouted = previous is not None and previous.to_setting.kind == "unknown"
        packet = build_transfer_packet(
            history, move.version, generated_at=self.clock(),
            supersedes=previous.packet_id if rerouted and previous else None,
            rerouted_from_lost_pupils=rerouted,
        )
        if self._store_packet(conn, packet, move.version, kind="reroute" if rerouted else "first"):
            if rerouted and previous:
                self._append(conn, previous.packet_id, "rerouted",
                             f"destination now known: re-sent as {packet.packet_id} "
                             f"to {packet.to_setting.receiver}")
        return packet.packet_id

    def _build_amendment(self, conn: Connection[Any], upn: str) -> UUID | None:
        latest = self._latest_packet(conn, upn)
        if latest is None:
            return None
        previous, move_version = latest
        history = self.history_of(upn, conn=conn)
        changes = amendment_changes(previous, history)
        if not changes:
            return None
        packet = build_transfer_packet(
            history, move_version, generated_at=self.clock(),
            up_to_version=max(h.version for h in history),
            supersedes=previous.packet_id, changes=changes,
        )
        if self._store_packet(conn, packet, move_version, kind="amendment"):
            self._append(conn, previous.packet_id, "superseded",
                         f"amended by {packet.packet_id}: {len(changes)} late entr(ies)")
            log.info("packet.amended", extra={"packet_id": str(packet.packet_id),
                                              "supersedes": str(previous.packet_id)})
        return packet.packet_id

    def _store_packet(self, conn: Connection[Any], packet: TransferPacketV1, move_version: int,
                      *, kind: str) -> bool:
        packet = self._with_registry(conn, packet)
        inserted = conn.execute(
            "INSERT INTO transfers_packets (packet_id, upn, receiver, move_version, body, "
            "built_at, history_version, kind, supersedes) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
            "RETURNING packet_id",
            (packet.packet_id, packet.pupil.upn, packet.to_setting.receiver, move_version,
             Jsonb(packet.model_dump(mode="json")), packet.generated_at,
             packet.history_version, kind, packet.supersedes),
        ).fetchone()
        if inserted is None:
            return False
        note = None
        if packet.to_setting.in_registry is False:
            note = f"{packet.to_setting.receiver} is not in the settings registry"
            log.warning("packet.receiver_not_in_registry",
                        extra={"packet_id": str(packet.packet_id),
                               "receiver": packet.to_setting.receiver})
        self._append(conn, packet.packet_id, "pending", note)
        return True

    def _with_registry(self, conn: Connection[Any], packet: TransferPacketV1) -> TransferPacketV1:
        return packet.model_copy(update={
            "from_setting": self._described(conn, packet.from_setting),
            "to_setting": self._described(conn, packet.to_setting),
        })

    def _described(self, conn: Connection[Any], setting: Setting) -> Setting:
        if setting.kind == "unknown":
            return setting
        column, value = ("urn", setting.urn) if setting.kind == "school" else ("ukprn",
                                                                              setting.ukprn)
        row = conn.execute(
            f"SELECT name, la_code, establishment_number FROM settings_registry "  # noqa: S608
            f"WHERE {column} = %s", (value,)).fetchone()
        if row is None:
            return setting.model_copy(update={"in_registry": False})
        return setting.model_copy(update={"name": row[0], "la_code": row[1],
                                          "establishment_number": row[2], "in_registry": True})

    def history_of(
        self, upn: str, *, conn: Connection[Any] | None = None,
        versions: tuple[int, int] | None = None,
    ) -> list[PupilHistoryEventV1]:
        query = "SELECT event FROM transfers_history WHERE upn = %s"
        params: list[Any] = [upn]
        if versions is not None:
            query += " AND version BETWEEN %s AND %s"
            params.extend(versions)
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

    # -- delivery -----------------------------------------------------------------------

    @staticmethod
    def _append(conn: Connection[Any], packet_id: UUID, state: str, detail: str | None,
                at: datetime | None = None, receipt_key: str | None = None) -> bool:
        row = conn.execute(
            "INSERT INTO transfers_delivery (packet_id, state, at, detail, receipt_key) "
            "VALUES (%s, %s, coalesce(%s, now()), %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (packet_id, state, at, detail, receipt_key),
        ).fetchone()
        return row is not None

    def pending_packets(self, limit: int = 100) -> list[PendingPacket]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT p.packet_id, p.receiver, p.body::text, "
                "(SELECT count(*) FROM transfers_delivery d "
                " WHERE d.packet_id = p.packet_id AND d.state = 'sent') + 1 "
                "FROM transfers_packets p "
                "WHERE p.published_at IS NULL ORDER BY p.built_at LIMIT %s",
                (limit,),
            ).fetchall()
        return [PendingPacket(r[0], r[1], r[2], int(r[3])) for r in rows]

    def mark_published(self, packets: Sequence[PendingPacket]) -> None:
        now = self.clock()
        with self.pool.connection() as conn, conn.transaction():
            for p in packets:
                conn.execute(
                    "UPDATE transfers_packets SET published_at = %s WHERE packet_id = %s",
                    (now, p.packet_id),
                )
                self._append(conn, p.packet_id, "sent", f"attempt {p.attempt}", at=now)

    def resend_overdue(self) -> list[UUID]:
        """Queue for re-sending every packet with no receipt for the re-send period."""
        today = self.clock().date()
        due = [d.packet_id for d in self.deliveries(unacknowledged_only=True)
               if d.delivery.resend_due(today, self.resend_after_school_days)]
        if due:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("UPDATE transfers_packets SET published_at = NULL "
                             "WHERE packet_id = ANY(%s)", (due,))
            log.info("packet.resend_due", extra={"count": len(due)})
        return due

    def deliveries(self, *, receiver: str | None = None, overdue_only: bool = False,
                   upn: str | None = None, unacknowledged_only: bool = False
                   ) -> list[PacketDelivery]:
        """Packets with their delivery state; `unacknowledged_only` leaves out, in SQL,
        those with a receipt or a successor (what the re-send check needs to look at)."""
        today = self.clock().date()
        query = ("SELECT p.packet_id, p.upn, p.receiver, p.kind, p.built_at, p.supersedes, "
                 "p.body->'pupil'->>'given_name' || ' ' || (p.body->'pupil'->>'family_name'), "
                 "p.body->'to_setting'->>'name', "
                 "coalesce((SELECT json_agg(json_build_array(d.state, d.at, d.detail) "
                 "ORDER BY d.id) FROM transfers_delivery d WHERE d.packet_id = p.packet_id), "
                 "'[]') FROM transfers_packets p WHERE true")
        params: list[Any] = []
        if receiver:
            query += " AND p.receiver = %s"
            params.append(receiver)
        if upn:
            query += " AND p.upn = %s"
            params.append(upn)
        if unacknowledged_only or overdue_only:
            query += (" AND p.published_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                      "transfers_delivery d WHERE d.packet_id = p.packet_id AND d.state IN "
                      "('received', 'accepted', 'rejected', 'superseded', 'rerouted'))")
        query += " ORDER BY p.built_at, p.packet_id"
        with self.pool.connection() as conn:
            rows = conn.execute(query, params).fetchall()
        found = []
        for r in rows:
            events = [DeliveryEvent(state, datetime.fromisoformat(at), detail)
                      for state, at, detail in r[8]]
            delivery = delivery_of(events)
            overdue = delivery.is_overdue(today, self.resend_after_school_days)
            if overdue_only and not overdue:
                continue
            found.append(PacketDelivery(
                packet_id=r[0], upn=r[1], pupil=r[6], receiver=r[2], receiver_name=r[7],
                kind=r[3], built_at=r[4], supersedes=r[5], delivery=delivery, overdue=overdue,
                school_days_waiting=delivery.school_days_waiting(today)))
        return found

    def delivery_events(self, packet_id: UUID) -> list[DeliveryEvent]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT state, at, detail FROM transfers_delivery "
                                "WHERE packet_id = %s ORDER BY id", (packet_id,)).fetchall()
        return [DeliveryEvent(r[0], r[1], r[2]) for r in rows]

    # -- receipts -----------------------------------------------------------------------

    def check_receipt(self, receipt: PacketReceiptV1) -> tuple[ReceiptProblem, str] | None:
        """Why a receipt cannot be used, or None: it names a packet the hub sent, and it
        comes from the setting the packet was sent to."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT receiver FROM transfers_packets WHERE packet_id = %s",
                               (receipt.packet_id,)).fetchone()
        if row is None:
            return "unknown_packet", f"no packet {receipt.packet_id} was sent by this hub"
        if row[0] != receipt.receiver:
            return "wrong_receiver", (f"packet {receipt.packet_id} was sent to {row[0]}, "
                                      f"not to {receipt.receiver}")
        return None

    def record_receipts(
        self, batch: Sequence[tuple[PacketReceiptV1 | None, ConsumedPosition]]
    ) -> int:
        """Append one partition's usable receipts as delivery events, with the position.
        (None marks a message already dead-lettered: only its position counts.)"""
        if not batch:
            return 0
        topic, partition = batch[0][1].topic, batch[0][1].partition
        recorded = 0
        with self.pool.connection() as conn, conn.transaction():
            next_offset = self._next_offset(conn, topic, partition)
            fresh = [(r, p) for r, p in batch if p.offset >= next_offset]
            for receipt, _ in fresh:
                if receipt is None:
                    continue
                owner = conn.execute(
                    "SELECT receiver FROM transfers_packets WHERE packet_id = %s",
                    (receipt.packet_id,)).fetchone()
                if owner is None or owner[0] != receipt.receiver:
                    continue  # dead-lettered by the caller
                key = f"{receipt.packet_id}/{receipt.status}/{receipt.at.isoformat()}"
                if self._append(conn, receipt.packet_id, receipt.status, receipt.reason,
                                at=receipt.at, receipt_key=key):
                    recorded += 1
            if fresh:
                self._save_offset(conn, topic, partition, max(p.offset for _, p in fresh))
        return recorded

    # -- reading packets ------------------------------------------------------------------

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT body FROM transfers_packets WHERE packet_id = %s", (packet_id,)
            ).fetchone()
        return None if row is None else TransferPacketV1.model_validate(row[0])

    def packets_for(self, receiver: str) -> list[TransferPacketV1]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT body FROM transfers_packets WHERE receiver = %s "
                                "ORDER BY built_at", (receiver,)).fetchall()
        return [TransferPacketV1.model_validate(r[0]) for r in rows]

    # -- the settings registry ----------------------------------------------------------

    def import_settings(self, settings: Sequence[RegisteredSetting]) -> int:
        now = self.clock()
        with self.pool.connection() as conn, conn.transaction():
            for s in settings:
                conn.execute(
                    "INSERT INTO settings_registry (urn, name, phase, la_code, la_name, "
                    "establishment_number, ukprn, trust, imported_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (urn) DO UPDATE "
                    "SET name = EXCLUDED.name, phase = EXCLUDED.phase, "
                    "la_code = EXCLUDED.la_code, la_name = EXCLUDED.la_name, "
                    "establishment_number = EXCLUDED.establishment_number, "
                    "ukprn = EXCLUDED.ukprn, trust = EXCLUDED.trust, "
                    "imported_at = EXCLUDED.imported_at",
                    (s.urn, s.name, s.phase, s.la_code, s.la_name, s.establishment_number,
                     s.ukprn, s.trust, now),
                )
        return len(settings)

    def registered_settings(self) -> list[RegisteredSetting]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT urn, name, phase, la_code, la_name, establishment_number, ukprn, trust "
                "FROM settings_registry ORDER BY la_code, urn").fetchall()
        return [RegisteredSetting(urn=r[0], name=r[1], phase=r[2], la_code=r[3], la_name=r[4],
                                  establishment_number=r[5], ukprn=r[6], trust=r[7])
                for r in rows]
