"""Publishing for the gateway's callers: school events and packet receipts onto the
gateway's own inbound topics (`<stream>.gateway`), the caller named in a header.

The only Kafka code of the gateway. It connects as `service-gateway`, whose ACLs allow
writing these two topics and nothing else; ingest and transfers check the header's
principal again. `acks=all` with idempotence (`make_broker`); a publish returns only
when the broker has acknowledged it, so a 202 means the event is durably on the topic.
"""

from __future__ import annotations

import asyncio

from contracts.topics import GATEWAY_SENDER, PRINCIPAL_HEADER
from services.shared.kafka import make_broker
from services.shared.settings import HubSettings

SERVICE = "gateway"


class Publisher:
    def __init__(self, settings: HubSettings) -> None:
        self.broker = make_broker(settings, SERVICE)
        self.events_topic = settings.topics.school_events_from(GATEWAY_SENDER)
        self.receipts_topic = settings.topics.packet_receipts_from(GATEWAY_SENDER)

    async def start(self) -> None:
        await self.broker.connect()

    async def stop(self) -> None:
        await self.broker.stop()

    async def publish_events(self, principal: str, events: list[tuple[bytes, bytes]]
                             ) -> list[BaseException | None]:
        """(key, body) pairs sent together; each one's outcome once all are acknowledged."""
        headers = {PRINCIPAL_HEADER: principal}
        pending: list[asyncio.Future[object]] = []
        for key, body in events:  # appended one by one: one pupil's events stay in order
            try:
                sent = await self.broker.publish(body, self.events_topic, key=key,
                                                 headers=headers, no_confirm=True)
            except Exception as exc:  # refused before sending (too large, not connected)
                sent = asyncio.get_running_loop().create_future()
                sent.set_exception(exc)
            pending.append(sent)
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    async def publish_receipt(self, principal: str, packet_id: str, body: bytes) -> None:
        await self.broker.publish(body, self.receipts_topic, key=packet_id.encode(),
                                  headers={PRINCIPAL_HEADER: principal})
