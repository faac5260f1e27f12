"""What `sendhub oversight` reads from the hub's database: the settings registry,
transfers' projection of the pupils' histories (`transfers_history`), and the packets
with their delivery events. Read-only (the CLI's `sendhub_reader` role).

Adapter: all of oversight's SQL is here, rows are read by column name, and what comes
out is the shared read model (`HistoryEntry`, as `services.transfers.postgres` makes it)
and `sendhub.oversight.MovedPacket`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

import psycopg
from psycopg.rows import DictRow, dict_row

from contracts.history import PupilHistoryEventV1
from sendhub.oversight import MovedPacket
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import DeliveryEvent, PacketRecord
from services.transfers.registry import RegisteredSetting

_REGISTRY = ("SELECT urn, name, phase, la_code, la_name, establishment_number, ukprn, trust "
             "FROM settings_registry ORDER BY la_code, urn")
_PUPILS = (
    "SELECT upn, event FROM transfers_history WHERE upn IN ("
    " SELECT DISTINCT upn FROM transfers_history"
    " WHERE event->'event'->'source'->>'urn' = ANY(%(urns)s)"
    " OR event->'event'->'source'->>'la' = %(la)s)"
    " ORDER BY upn, version")
_PACKETS = (
    "SELECT p.packet_id, p.upn, p.receiver, p.kind, p.built_at, p.supersedes, p.move_version, "
    "p.body->'pupil'->>'given_name' || ' ' || (p.body->'pupil'->>'family_name') AS pupil, "
    "p.body->'to_setting'->>'name' AS receiver_name, "
    "p.body->'to_setting'->>'la_code' AS receiver_la_code, "
    "p.body->'from_setting'->>'urn' AS from_urn, "
    "p.body->'move'->>'effective_date' AS effective_date, "
    "coalesce((SELECT json_agg(json_build_array(d.state, d.at, d.detail) ORDER BY d.id) "
    "FROM transfers_delivery d WHERE d.packet_id = p.packet_id), '[]') AS events "
    "FROM transfers_packets p WHERE p.body->'from_setting'->>'urn' = ANY(%(urns)s) "
    "ORDER BY p.built_at, p.packet_id")


class OversightStore:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def _connect(self) -> psycopg.Connection[DictRow]:
        return psycopg.connect(self.conninfo, row_factory=dict_row)

    def registry(self) -> list[RegisteredSetting]:
        with self._connect() as conn:
            return [RegisteredSetting(**r) for r in conn.execute(_REGISTRY).fetchall()]

    def histories(self, urns: Collection[str], la_code: str | None = None
                  ) -> dict[str, list[HistoryEntry]]:
        """The whole history of every pupil with an event recorded at one of `urns` (or by
        the LA `la_code`), by UPN, each in version order."""
        found: dict[str, list[HistoryEntry]] = {}
        with self._connect() as conn:
            for r in conn.execute(_PUPILS, {"urns": list(urns), "la": la_code}):
                message = PupilHistoryEventV1.model_validate(
                    r["event"], extra="ignore", context={"trusted": True})
                found.setdefault(str(r["upn"]), []).append(HistoryEntry.from_contract(message))
        return found

    def packets_from(self, urns: Collection[str]) -> list[MovedPacket]:
        """Every packet built for a move out of one of `urns`, with its delivery events."""
        with self._connect() as conn:
            rows = conn.execute(_PACKETS, {"urns": list(urns)}).fetchall()
        return [MovedPacket(
            record=PacketRecord(
                packet_id=r["packet_id"], upn=str(r["upn"]), pupil=str(r["pupil"]),
                receiver=str(r["receiver"]), receiver_name=r["receiver_name"],
                receiver_la_code=r["receiver_la_code"],
                kind=str(r["kind"]), built_at=r["built_at"], supersedes=r["supersedes"],
                events=tuple(DeliveryEvent(state, datetime.fromisoformat(at), detail)
                             for state, at, detail in r["events"])),
            from_urn=str(r["from_urn"]) if r["from_urn"] else None,
            move_version=int(r["move_version"]),
            effective_date=date.fromisoformat(str(r["effective_date"])),
        ) for r in rows]
