"""What every route of the gateway uses, built once at start-up and kept on the app.

Edge adapter wiring (CP's `bootstrap.py`): the settings, the principal store and its
authenticator, the rate limiter, the Kafka publisher, the transfers and records stores
(read as the tools read them), the gateway's own SQL and the access log.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from sendhub.access_log import AccessLog
from sendhub.gateway.ratelimit import RateLimiter
from sendhub.gateway.store import GatewayStore
from services.shared.settings import HubSettings
from services.transfers.application import TransfersApplication

if TYPE_CHECKING:
    from sendhub.gateway.auth import Authenticator
    from sendhub.gateway.publisher import Publisher
    from services.records.application import RecordsApplication


@dataclass
class Gateway:
    settings: HubSettings
    authenticator: Authenticator
    limiter: RateLimiter
    publisher: Publisher
    transfers: TransfersApplication
    store: GatewayStore
    access_log: AccessLog
    _records: RecordsApplication | None = None
    _records_lock: threading.Lock = field(default_factory=threading.Lock)

    def records(self) -> RecordsApplication:
        """The records store, opened at the first history read (most gateways never
        serve one, and need no grant on records' tables until they do)."""
        with self._records_lock:
            if self._records is None:
                from services.records.entrypoint import build_application

                self._records = build_application(self.settings)
            return self._records

    def close(self) -> None:
        self.transfers.close()
        if self._records is not None:
            self._records.close()


def gateway(request: Request) -> Gateway:
    hub: Gateway = request.app.state.gateway
    return hub
