"""What the inbox page reads besides the packets: which of them this principal has
opened (the access log) and each one's delivery events (transfers' delivery table, read
as `sendhub transfers` reads it).

Adapter layer, on the gateway's own connection pool: one query each for a whole page.
It asks the access log (readable by the gateway since migration 0006) only about the
signed-in principal's own reads, never who else read what or why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from contracts.packet import TransferPacketV1
from sendhub.gateway.store import GatewayStore
from sendhub.web.inbox_view import OPENED_ACTIONS
from services.transfers.domain import DeliveryEvent


def _rows(store: GatewayStore, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    with store.pool.connection() as conn:
        return list(conn.execute(query, params).fetchall())


def opened_by(store: GatewayStore, actor: str, packets: Sequence[TransferPacketV1]
              ) -> set[UUID]:
    """The packets among these that `actor` has opened (by the API or a page)."""
    if not packets:
        return set()
    rows = _rows(store, "SELECT DISTINCT packet_id FROM access_log WHERE upn = ANY(%s) "
                 "AND actor = %s AND packet_id = ANY(%s) AND starts_with(action, %s)",
                 [sorted({p.pupil.upn for p in packets}), actor,
                  [p.packet_id for p in packets], OPENED_ACTIONS])
    return {r["packet_id"] for r in rows}


def delivery_events(store: GatewayStore, packet_ids: Sequence[UUID]
                    ) -> dict[UUID, list[DeliveryEvent]]:
    """Each packet's delivery events, in the order they were stored."""
    found: dict[UUID, list[DeliveryEvent]] = {p: [] for p in packet_ids}
    if not packet_ids:
        return found
    for r in _rows(store, "SELECT packet_id, state, at, detail FROM transfers_delivery "
                   "WHERE packet_id = ANY(%s) ORDER BY id", [list(packet_ids)]):
        found[r["packet_id"]].append(DeliveryEvent(r["state"], r["at"], r["detail"]))
    return found
