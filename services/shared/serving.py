"""Running one service: its faststream app, measured, with its HTTP endpoints beside it.

`sendhub serve NAME` calls `serve`. The app runs as it always has (`FastStream.run`: its
signal handling, its "started successfully" line, a failed start ends the process with
an error). Beside it, on the same event loop, uvicorn serves `/healthz`, `/readyz` and
`/metrics` (`services.shared.health`) on `SENDHUB_HTTP_HOST`:`SENDHUB_HTTP_PORT`
(per-service defaults; 0 picks a free port). The port actually bound is logged as
`http.listening`. The HTTP server stops after the app.

Why not `AsgiFastStream` under uvicorn: there the broker starts inside uvicorn's
lifespan, and an error after the lifespan reported "started" is logged by uvicorn while
the HTTP server carries on, so a service whose consumers failed would keep answering.
The socket is bound by the caller before the app is built, so a port in use is reported
before the service connects to anything.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import uvicorn
from faststream import FastStream
from faststream.kafka import KafkaBroker

from services.shared.health import Readiness, http_app
from services.shared.metrics import REGISTRY, start_counting
from services.shared.observing import LagMonitor, count_messages, run_beside, watch_consumers
from services.shared.settings import HubSettings

log = logging.getLogger("sendhub.http")


class HttpPortUnavailable(RuntimeError):
    """The service's HTTP port cannot be bound (another process holds it)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 asks the system for a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as error:
        sock.close()
        raise HttpPortUnavailable(
            f"cannot serve HTTP on {host}:{port} ({error.strerror}): another process may hold "
            "it; set SENDHUB_HTTP_PORT to a free port, or 0 for any") from None
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the faststream app owns SIGINT and SIGTERM."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def instrument(app: FastStream, service: str, settings: HubSettings) -> Readiness:
    """Count and time every broker's messages, watch its consumers (lag measured while
    the app runs), and say how readiness is judged."""
    namespace = settings.topics.namespace
    start_counting(service)
    consumers = []
    for broker in app.brokers:
        if isinstance(broker, KafkaBroker):
            count_messages(broker, service, namespace)
            consumers += watch_consumers(broker, namespace)
    run_beside(app, LagMonitor(service, consumers, namespace, settings.metrics_interval_seconds))

    async def broker_answers() -> bool:
        return all([await b.ping(timeout=2.0) for b in app.brokers])

    async def database_answers() -> None:
        async with await psycopg.AsyncConnection.connect(
                settings.database_conninfo, connect_timeout=2) as conn:
            await conn.execute("SELECT 1")

    uses_database = service != "ingest"
    return Readiness(service, broker_answers, database_answers if uses_database else None,
                     lambda: [c.state() for c in consumers])


async def serve(app: FastStream, service: str, settings: HubSettings,
                sock: socket.socket) -> None:
    """Run the app until it stops (SIGTERM, Ctrl-C), serving HTTP on `sock` meanwhile."""
    readiness = instrument(app, service, settings)
    host, port = sock.getsockname()[:2]
    log.info("http.listening", extra={"service": service, "host": host, "port": port,
                                      "paths": ["/healthz", "/readyz", "/metrics"]})
    server = _Server(uvicorn.Config(http_app(readiness, REGISTRY), lifespan="off",
                                    log_config=None, access_log=False))
    http = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await app.run()
    finally:
        server.should_exit = True
        await http
        sock.close()
