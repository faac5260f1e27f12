"""Transfers' repository on PostgreSQL (psycopg 3, a small connection pool).

Adapter layer: SQL lives here and nowhere else in the service; rows are read by column
name. The tables come from the hub's migrations (`sendhub db upgrade`). Delivery events
are appended only: a trigger refuses updates and deletes of `transfers_delivery`.
Pupils' histories and packets are sealed with each pupil's data key (`sealed_rows`):
SQL sees only their plain routing columns, and the rest is opened here, in Python.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from contracts.history import PupilHistoryEventV1
from contracts.packet import Setting, TransferPacketV1
from services.shared.access import inbox_of
from services.shared.pupil_keys import (
    SEALED_PREFIX,
    PostgresPupilKeys,
    PupilErased,
    PupilKeys,
    pupil_ref_for_upn,
)
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import (
    Addressee,
    DeliveryEvent,
    DeliveryStep,
    IssuedPacket,
    PacketRecord,
)
from services.transfers.registry import RegisteredSetting
from services.transfers.repository import (
    KeptHistories,
    KeptPackets,
    PendingPacket,
    StateSequence,
    TransfersRepository,
)
from services.transfers.sealed_rows import (
    Json,
    open_history,
    open_packet,
    packet_json,
    plain_history_event,
    plain_packet_body,
    prepare,
    pupil_named,
    seal_history,
    seal_packet,
)

_PACKET_ROWS = (
    "SELECT p.packet_id, p.upn, p.receiver, p.kind, p.built_at, p.supersedes, p.body, "
    "p.sealed, "
    "CASE WHEN p.kind = 'la_notice' THEN NULL ELSE p.body->'to_setting'->>'name' END "
    "AS receiver_name, "
    "CASE WHEN starts_with(p.receiver, 'la-') THEN substr(p.receiver, 4) "
    "ELSE p.body->'to_setting'->>'la_code' END AS receiver_la_code, "
    "coalesce((SELECT json_agg(json_build_array(d.state, d.at, d.detail) ORDER BY d.id) "
    "FROM transfers_delivery d WHERE d.packet_id = p.packet_id), '[]') AS events "
    "FROM transfers_packets p WHERE true")
_UNACKNOWLEDGED = (
    " AND p.published_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM transfers_delivery d "
    "WHERE d.packet_id = p.packet_id AND d.state IN "
    "('received', 'accepted', 'rejected', 'superseded', 'rerouted'))")
_REGISTRY_COLUMNS = "urn, name, phase, la_code, la_name, establishment_number, ukprn, trust"


class PostgresRepository(TransfersRepository):
    """The repository inside one open transaction on one connection."""

    def __init__(self, conn: Connection[DictRow], keys: PupilKeys) -> None:
        self.conn = conn
        self.keys = keys
        # The registry as this transaction read it: a batch's packets name the same few
        # settings again and again (`import_settings` forgets it).
        self._registered: dict[tuple[str, str | None], RegisteredSetting | None] = {}
        self._la_names: dict[str, str | None] = {}

    def _one(self, query: str, params: Sequence[Any] = ()) -> DictRow | None:
        return self.conn.execute(query, params).fetchone()

    def _all(self, query: str, params: Sequence[Any] = ()) -> list[DictRow]:
        return self.conn.execute(query, params).fetchall()

    def next_offset(self, topic: str, partition: int) -> int:
        row = self._one("SELECT next_offset FROM transfers_positions "
                        "WHERE topic = %s AND partition = %s FOR UPDATE", (topic, partition))
        return int(row["next_offset"]) if row else 0

    def save_next_offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.conn.execute(
            "INSERT INTO transfers_positions (topic, partition, next_offset) VALUES (%s, %s, %s) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
            (topic, partition, next_offset))

    def add_histories(self, messages: Sequence[PupilHistoryEventV1]) -> KeptHistories:
        """The batch's keys in one round trip, every row sealed before any SQL (an erased
        pupil's raise `PupilErased`), then one INSERT of them all."""
        refs = {pupil_ref_for_upn(m.upn): m.upn for m in messages}
        erased = {refs[ref] for ref in self.keys.prepare_for_writing(refs)}
        rows: dict[tuple[str, int], tuple[PupilHistoryEventV1, Json, bytes]] = {}
        for m in messages:
            if m.upn in erased or (m.upn, m.version) in rows:
                continue
            try:
                event, sealed = seal_history(self.keys, m)
            except PupilErased:  # erased since its key was fetched
                erased.add(m.upn)
                continue
            rows[(m.upn, m.version)] = (m, event, sealed)
        kept = [row for (upn, _), row in rows.items() if upn not in erased]
        if not kept:
            return KeptHistories(frozenset(), frozenset(erased))
        # One array a column, sent binary (`%b`): as text, each element is escaped.
        added = self._all(
            "INSERT INTO transfers_history (upn, version, notification_id, event, sealed) "
            "SELECT * FROM unnest(%b::text[], %b::integer[], %b::bigint[], %b::jsonb[], "
            "%b::bytea[]) ON CONFLICT DO NOTHING RETURNING upn, version",
            ([m.upn for m, _, _ in kept], [m.version for m, _, _ in kept],
             [m.notification_id for m, _, _ in kept], [Jsonb(e) for _, e, _ in kept],
             [s for _, _, s in kept]))
        return KeptHistories(frozenset((str(r["upn"]), int(r["version"])) for r in added),
                             frozenset(erased))

    def _entry(self, row: DictRow) -> HistoryEntry:
        return HistoryEntry.from_contract(open_history(
            self.keys, str(row["upn"]), int(row["version"]), row["event"], row["sealed"]))

    def history(self, upn: str, up_to_version: int | None = None) -> list[HistoryEntry]:
        rows = self._all("SELECT upn, version, event, sealed FROM transfers_history "
                         "WHERE upn = %s AND (%s::integer IS NULL OR version <= %s) "
                         "ORDER BY version", (upn, up_to_version, up_to_version))
        return [self._entry(r) for r in rows]

    def histories(self, upns: Collection[str],
                  known: Mapping[tuple[str, int], HistoryEntry] | None = None,
                  ) -> dict[str, list[HistoryEntry]]:
        found: dict[str, list[HistoryEntry]] = {upn: [] for upn in upns}
        if not found:
            return found
        known = known or {}
        # A sealed row's plain `event` is not read: it is all in the seal (no JSON decoded).
        rows = self._all("SELECT upn, version, CASE WHEN sealed IS NULL THEN event END AS event, "
                         "sealed FROM transfers_history "
                         "WHERE upn = ANY(%s) ORDER BY upn, version", (list(found),))
        prepare(self.keys, found)
        for r in rows:
            upn, version = str(r["upn"]), int(r["version"])
            entry = known.get((upn, version))
            found[upn].append(self._entry(r) if entry is None else entry)
        return found

    def history_extents(self, upns: Collection[str]) -> dict[str, tuple[int, int]]:
        if not upns:
            return {}
        rows = self._all("SELECT upn, max(version) AS highest, count(*) AS held "
                         "FROM transfers_history WHERE upn = ANY(%s) GROUP BY upn",
                         (list(upns),))
        return {str(r["upn"]): (int(r["highest"]), int(r["held"])) for r in rows}

    def latest_packets(self, upns: Collection[str]) -> dict[str, IssuedPacket]:
        if not upns:
            return {}
        rows = self._all(
            "SELECT DISTINCT ON (upn) packet_id, upn, body, sealed, move_version, kind "
            "FROM transfers_packets WHERE upn = ANY(%s) AND kind <> 'la_notice' "
            "ORDER BY upn, move_version DESC, coalesce(history_version, move_version) DESC",
            (list(upns),))
        prepare(self.keys, (str(r["upn"]) for r in rows))
        return {str(r["upn"]): IssuedPacket(self._packet(r), int(r["move_version"]), r["kind"])
                for r in rows}

    def packets_of(self, upns: Collection[str]) -> set[UUID]:
        if not upns:
            return set()
        rows = self._all("SELECT packet_id FROM transfers_packets WHERE upn = ANY(%s)",
                         (list(upns),))
        return {r["packet_id"] for r in rows}

    def _packet(self, row: DictRow) -> TransferPacketV1:
        return open_packet(self.keys, str(row["upn"]), row["packet_id"], row["body"],
                           row["sealed"])

    def add_packets(self, issued: Sequence[IssuedPacket]) -> KeptPackets:
        """The pupils' keys in one round trip, every packet sealed before any SQL, then
        one INSERT of them all (binary arrays, as `add_histories`)."""
        refs = {pupil_ref_for_upn(i.packet.pupil.upn): i.packet.pupil.upn for i in issued}
        erased = {refs[ref] for ref in self.keys.prepare_for_writing(refs)}
        rows = []
        for i in issued:
            if i.packet.pupil.upn in erased:
                continue
            try:
                body, sealed = seal_packet(self.keys, i.packet)
            except PupilErased:  # erased since its key was fetched
                erased.add(i.packet.pupil.upn)
                continue
            rows.append((i, body, sealed))
        kept = [(i, body, sealed) for i, body, sealed in rows
                if i.packet.pupil.upn not in erased]
        if not kept:
            return KeptPackets(frozenset(), frozenset(erased))
        added = self._all(
            "INSERT INTO transfers_packets (packet_id, upn, receiver, move_version, body, "
            "sealed, built_at, history_version, kind, supersedes) "
            "SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::integer[], "
            "%b::jsonb[], %b::bytea[], %b::timestamptz[], %b::integer[], %b::text[], "
            "%b::uuid[]) ON CONFLICT DO NOTHING RETURNING packet_id",
            ([i.packet.packet_id for i, _, _ in kept], [i.packet.pupil.upn for i, _, _ in kept],
             [i.packet.receiver for i, _, _ in kept], [i.move_version for i, _, _ in kept],
             [Jsonb(body) for _, body, _ in kept], [sealed for _, _, sealed in kept],
             [i.packet.generated_at for i, _, _ in kept],
             [i.packet.history_version for i, _, _ in kept], [i.kind for i, _, _ in kept],
             [i.packet.supersedes for i, _, _ in kept]))
        return KeptPackets(frozenset(r["packet_id"] for r in added), frozenset(erased))

    def packet(self, packet_id: UUID) -> TransferPacketV1 | None:
        row = self._one("SELECT packet_id, upn, body, sealed FROM transfers_packets "
                        "WHERE packet_id = %s", (packet_id,))
        return None if row is None else self._packet(row)

    def addressee_of(self, packet_id: UUID) -> Addressee | None:
        row = self._one("SELECT receiver, body->'from_setting'->>'la_code' AS la "
                        "FROM transfers_packets WHERE packet_id = %s", (packet_id,))
        if row is None:
            return None
        return Addressee(str(row["receiver"]), inbox_of(str(row["receiver"]), row["la"]))

    def packets_for(self, receiver: str) -> list[TransferPacketV1]:
        rows = self._all("SELECT packet_id, upn, body, sealed FROM transfers_packets "
                         "WHERE receiver = %s ORDER BY built_at, packet_id", (receiver,))
        prepare(self.keys, (str(r["upn"]) for r in rows))
        return [self._packet(r) for r in rows]

    def append_delivery(self, step: DeliveryStep) -> bool:
        return self._one(
            "INSERT INTO transfers_delivery (packet_id, state, at, detail, receipt_key) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (step.packet_id, step.event.state, step.event.at, step.event.detail,
             step.receipt_key)) is not None

    def append_deliveries(self, steps: Sequence[DeliveryStep]) -> None:
        if not steps:
            return
        with self.conn.cursor() as cur:  # pipelined: one round trip, appended in order
            cur.executemany(
                "INSERT INTO transfers_delivery (packet_id, state, at, detail, receipt_key) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(s.packet_id, s.event.state, s.event.at, s.event.detail, s.receipt_key)
                 for s in steps])

    def delivery_events(self, packet_id: UUID) -> list[DeliveryEvent]:
        rows = self._all("SELECT state, at, detail FROM transfers_delivery "
                         "WHERE packet_id = %s ORDER BY id", (packet_id,))
        return [DeliveryEvent(r["state"], r["at"], r["detail"]) for r in rows]

    def unpublished(self, limit: int) -> list[PendingPacket]:
        rows = self._all(
            "SELECT p.packet_id, p.upn, p.receiver, p.body, p.sealed, "
            "p.body->'from_setting'->>'la_code' AS la, "
            "(SELECT count(*) FROM transfers_delivery d "
            " WHERE d.packet_id = p.packet_id AND d.state = 'sent') + 1 AS attempt "
            "FROM transfers_packets p WHERE p.published_at IS NULL AND NOT EXISTS (SELECT 1 "
            "FROM transfers_delivery d WHERE d.packet_id = p.packet_id "
            "AND d.state = 'undeliverable') ORDER BY p.built_at, p.packet_id LIMIT %s", (limit,))
        pending = []
        for r in rows:
            try:
                body, erased = packet_json(self.keys, str(r["upn"]), r["packet_id"], r["body"],
                                           r["sealed"]), None
            except PupilErased as gone:
                body, erased = "", gone.erasure.describe_for_receivers()
            pending.append(PendingPacket(r["packet_id"], r["receiver"], body,
                                         int(r["attempt"]), inbox_of(r["receiver"], r["la"]),
                                         erased))
        return pending

    def mark_published(self, packet_ids: Sequence[UUID], at: datetime) -> None:
        self.conn.execute("UPDATE transfers_packets SET published_at = %s "
                          "WHERE packet_id = ANY(%s)", (at, list(packet_ids)))

    def requeue(self, packet_ids: Sequence[UUID]) -> None:
        self.conn.execute("UPDATE transfers_packets SET published_at = NULL "
                          "WHERE packet_id = ANY(%s)", (list(packet_ids),))

    def packet_records(self, *, receiver: str | None = None, upn: str | None = None,
                       unacknowledged_only: bool = False) -> list[PacketRecord]:
        query, params = _PACKET_ROWS, []
        if receiver:
            query += " AND p.receiver = %s"
            params.append(receiver)
        if upn:
            query += " AND p.upn = %s"
            params.append(upn)
        if unacknowledged_only:
            query += _UNACKNOWLEDGED
        rows = self._all(query + " ORDER BY p.built_at, p.packet_id", params)
        prepare(self.keys, (str(r["upn"]) for r in rows))
        return [PacketRecord(
            packet_id=r["packet_id"], upn=r["upn"], receiver=r["receiver"],
            pupil=pupil_named(self.keys, str(r["upn"]), r["packet_id"], r["body"], r["sealed"]),
            receiver_name=r["receiver_name"], receiver_la_code=r["receiver_la_code"],
            kind=r["kind"], built_at=r["built_at"],
            supersedes=r["supersedes"],
            events=tuple(DeliveryEvent(state, datetime.fromisoformat(at), detail)
                         for state, at, detail in r["events"]),
        ) for r in rows]

    def registered(self, setting: Setting) -> RegisteredSetting | None:
        key = (setting.kind, setting.urn if setting.kind == "school" else setting.ukprn)
        if key not in self._registered:
            self._registered[key] = self._registered_now(setting)
        return self._registered[key]

    def read_registry(self, urns: Collection[str]) -> None:
        wanted = sorted({u for u in urns if ("school", u) not in self._registered})
        if not wanted:
            return
        rows = self._all(f"SELECT {_REGISTRY_COLUMNS} FROM settings_registry "  # noqa: S608
                         "WHERE urn = ANY(%s)", (wanted,))
        found = {str(r["urn"]): RegisteredSetting(**r) for r in rows}
        for urn in wanted:
            self._registered[("school", urn)] = found.get(urn)

    def _registered_now(self, setting: Setting) -> RegisteredSetting | None:
        if setting.kind == "school":
            row = self._one(f"SELECT {_REGISTRY_COLUMNS} FROM settings_registry "  # noqa: S608
                            "WHERE urn = %s", (setting.urn,))
        else:
            row = self._one(f"SELECT {_REGISTRY_COLUMNS} FROM settings_registry "  # noqa: S608
                            "WHERE ukprn = %s", (setting.ukprn,))
        return None if row is None else RegisteredSetting(**row)

    def la_name(self, la_code: str) -> str | None:
        if la_code not in self._la_names:
            row = self._one("SELECT la_name FROM settings_registry WHERE la_code = %s "
                            "AND la_name IS NOT NULL ORDER BY urn LIMIT 1", (la_code,))
            self._la_names[la_code] = None if row is None else str(row["la_name"])
        return self._la_names[la_code]

    def import_settings(self, settings: Sequence[RegisteredSetting], at: datetime) -> int:
        self._registered.clear()
        self._la_names.clear()
        for s in settings:
            self.conn.execute(
                f"INSERT INTO settings_registry ({_REGISTRY_COLUMNS}, imported_at) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (urn) DO UPDATE "
                "SET name = EXCLUDED.name, phase = EXCLUDED.phase, "
                "la_code = EXCLUDED.la_code, la_name = EXCLUDED.la_name, "
                "establishment_number = EXCLUDED.establishment_number, "
                "ukprn = EXCLUDED.ukprn, trust = EXCLUDED.trust, "
                "imported_at = EXCLUDED.imported_at",
                (s.urn, s.name, s.phase, s.la_code, s.la_name, s.establishment_number,
                 s.ukprn, s.trust, at))
        return len(settings)

    def registered_settings(self) -> list[RegisteredSetting]:
        rows = self._all(f"SELECT {_REGISTRY_COLUMNS} FROM settings_registry "  # noqa: S608
                         "ORDER BY la_code, urn")
        return [RegisteredSetting(**r) for r in rows]

    def state_sequences(self) -> list[StateSequence]:
        rows = self._all(
            "SELECT states, count(*) AS packets FROM (SELECT p.packet_id, coalesce(array_agg("
            "d.state ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}') AS states "
            "FROM transfers_packets p LEFT JOIN transfers_delivery d USING (packet_id) "
            "GROUP BY p.packet_id) per_packet GROUP BY states")
        return [StateSequence(tuple(r["states"]), int(r["packets"])) for r in rows]

    def unpublished_count(self) -> int:
        row = self._one("SELECT count(*) AS waiting FROM transfers_packets "
                        "WHERE published_at IS NULL")
        return int(row["waiting"]) if row else 0


class PostgresTransfers:
    """Transactions on a pool of connections to the hub's database; `keys` (the pupils'
    data keys, `pupil_keys_for(settings)`) are closed with it."""

    def __init__(self, conninfo: str, keys: PupilKeys) -> None:
        self.keys = keys
        self.pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
            conninfo, min_size=1, max_size=4, open=True,
            kwargs={"autocommit": False, "row_factory": dict_row})

    @contextmanager
    def transaction(self) -> Iterator[TransfersRepository]:
        with self.pool.connection() as conn, conn.transaction():
            yield PostgresRepository(conn, self.keys)

    def close(self) -> None:
        self.pool.close()
        if isinstance(self.keys, PostgresPupilKeys):
            self.keys.close()


@dataclass(frozen=True)
class SealedRows:
    """What `seal_stored_rows` did: rows sealed, and erased pupils' rows whose plain
    content it shredded (sealed with a key nobody holds, as their key now is)."""

    sealed: int
    shredded: int


def plain_rows(conninfo: str) -> int:
    """Rows stored before sealing existed (revision 0008), still plain."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM transfers_history WHERE sealed IS NULL) + "
            "(SELECT count(*) FROM transfers_packets WHERE sealed IS NULL)").fetchone()
    return int(row[0]) if row else 0


def _shredded() -> bytes:
    """A sealed value of an erased pupil: random, as the content is to anyone now (their
    key is destroyed, so it reads as erased, like every other copy of their data)."""
    return SEALED_PREFIX + os.urandom(12 + 16)


def seal_stored_rows(conninfo: str, keys: PupilKeys, batch: int = 500) -> SealedRows:
    """Seal the rows stored before revision 0008 (the migration cannot: the keys are not
    in SQL), as transfers stores new ones: the whole packet or message sealed, the plain
    column cut to the routing fields. Run by the owner (`sendhub db seal-existing`),
    in batches of one transaction each; safe to run again, and beside the services."""
    sealed = shredded = 0
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT upn, version, event FROM transfers_history WHERE sealed IS NULL "
                    "ORDER BY upn, version LIMIT %s FOR UPDATE SKIP LOCKED", (batch,)).fetchall()
                for r in rows:
                    message = PupilHistoryEventV1.model_validate(
                        r["event"], extra="ignore", context={"trusted": True})
                    try:
                        event, seal = seal_history(keys, message)
                        sealed += 1
                    except PupilErased:
                        event, seal = plain_history_event(message), _shredded()
                        shredded += 1
                    conn.execute("UPDATE transfers_history SET event = %s, sealed = %s "
                                 "WHERE upn = %s AND version = %s",
                                 (Jsonb(event), seal, r["upn"], r["version"]))
            if not rows:
                break
        while True:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT packet_id, body FROM transfers_packets WHERE sealed IS NULL "
                    "ORDER BY built_at, packet_id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (batch,)).fetchall()
                for r in rows:
                    packet = TransferPacketV1.model_validate(r["body"])
                    try:
                        body, seal = seal_packet(keys, packet)
                        sealed += 1
                    except PupilErased:
                        body, seal = plain_packet_body(packet), _shredded()
                        shredded += 1
                    conn.execute("UPDATE transfers_packets SET body = %s, sealed = %s "
                                 "WHERE packet_id = %s", (Jsonb(body), seal, r["packet_id"]))
            if not rows:
                break
    return SealedRows(sealed, shredded)
