"""Is a service alive, is it ready, and what does it measure: `/healthz`, `/readyz`,
`/metrics`, as one small ASGI app (served by `services.shared.serving`).

- `/healthz`: 200 while the process answers at all (its event loop runs).
- `/readyz`: 200 when the broker answers, the database answers (records, transfers)
  and every consumer has joined its group; else 503. The body says, check by check, why.
- `/metrics`: the registry of `services.shared.metrics`, in Prometheus' text format.

**Ready** means "can do its share of the work": a consumer that has joined its group
is ready whether or not it was given partitions. When a group has more members than
its topics have partitions (say a fourth instance of a service on three partitions),
the extra member holds none: it is ready, standing by, and takes partitions over when
a member leaves; `/readyz` says "idle" for it. A consumer not yet started, or started
but still waiting for the group's first answer, is not ready. A rebalance after
joining does not make a member unready (every member of a group rebalances whenever
one comes or goes; failing them all would turn one restart into an outage).

The readiness rules (`consumer_check`, `Readiness`) are pure over what they are given,
so they are tested with fakes; the ASGI app does no I/O of its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from faststream.asgi import AsgiResponse
from faststream.asgi.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, make_asgi_app

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    """One reason a service is, or is not, ready."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ConsumerState:
    """A consumer as readiness sees it: its group, whether its client has started and
    joined the group, and the partitions (topic, partition) it holds now."""

    group: str
    topics: tuple[str, ...]
    started: bool
    joined: bool
    rebalancing: bool
    partitions: tuple[tuple[str, int], ...]


def consumer_check(state: ConsumerState) -> Check:
    name = f"consumer {state.group}"
    topics = ", ".join(state.topics)
    if not state.started:
        return Check(name, False, f"not started (reads {topics})")
    if not state.joined:
        return Check(name, False, f"waiting for group {state.group} to assign partitions "
                                  f"of {topics}")
    if state.rebalancing:
        return Check(name, True, f"rebalancing: group {state.group} is re-assigning {topics}")
    if not state.partitions:
        return Check(name, True, f"idle: joined group {state.group} and was given no "
                                 f"partition of {topics}, as the group has more members "
                                 "than partitions; takes some over when a member leaves")
    held = ", ".join(f"{topic}#{partition}" for topic, partition in state.partitions)
    return Check(name, True, f"{len(state.partitions)} partition(s): {held}")


async def dependency_check(name: str, probe: Callable[[], Awaitable[object]],
                           timeout: float = CHECK_TIMEOUT_SECONDS) -> Check:
    """Run a probe: ok when it returns anything but False in time, not when it raises."""
    try:
        answered = await asyncio.wait_for(probe(), timeout)
    except Exception as error:  # TimeoutError included: the dependency did not answer
        return Check(name, False, f"unreachable ({type(error).__name__})")
    return Check(name, answered is not False, "reachable" if answered is not False
                 else "unreachable")


class Readiness:
    """What `/readyz` asks: the broker, the database (when the service has one), and the
    state of each consumer."""

    def __init__(self, service: str, broker: Callable[[], Awaitable[bool]],
                 database: Callable[[], Awaitable[object]] | None,
                 consumers: Callable[[], Sequence[ConsumerState]]) -> None:
        self.service = service
        self.broker = broker
        self.database = database
        self.consumers = consumers

    async def checks(self) -> list[Check]:
        probes = [dependency_check("broker", self.broker)]
        if self.database is not None:
            probes.append(dependency_check("database", self.database))
        found = list(await asyncio.gather(*probes))
        consumers = self.consumers()
        if not consumers:
            found.append(Check("consumers", False, "this service declares no consumer"))
        return found + [consumer_check(c) for c in consumers]

    async def report(self) -> tuple[bool, dict[str, Any]]:
        checks = await self.checks()
        ready = all(c.ok for c in checks)
        return ready, {"service": self.service, "ready": ready,
                       "checks": [asdict(c) for c in checks]}


def _json(body: dict[str, Any], status: int) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status,
                        headers={"content-type": "application/json"})


def http_app(readiness: Readiness, registry: CollectorRegistry) -> ASGIApp:
    """The service's HTTP endpoints as one ASGI app (GET and HEAD only)."""
    metrics = make_asgi_app(registry)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            response = AsgiResponse(b"Method Not Allowed", 405, headers={"allow": "GET, HEAD"})
        elif path == "/metrics":
            await metrics(scope, receive, send)
            return
        elif path == "/healthz":
            response = _json({"service": readiness.service, "alive": True}, 200)
        elif path == "/readyz":
            ready, body = await readiness.report()
            response = _json(body, 200 if ready else 503)
        else:
            response = AsgiResponse(b"Not Found: try /healthz, /readyz or /metrics", 404)
        await response(scope, receive, send)

    return app
