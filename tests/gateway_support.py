"""The gateway as tests and the bench run it: a real `sendhub serve gateway` process over
HTTPS on a free port, packets issued the way transfers issues them, a local HTTPS
server standing in for a receiver's webhook endpoint and a trust's identity provider,
and the records on a topic with their headers.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.inbound import INBOUND_EVENT
from contracts.packet import TransferPacketV1
from sendhub.topics_reader import TopicRecord, read_topic
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_history_contract, to_school_event_record
from services.shared.settings import LOCAL_DIR, HubSettings
from services.transfers.application import TransfersApplication
from services.transfers.repository import ConsumedPosition as HistoryPosition
from tests.factories import random_upn, school_event

ROOT = Path(__file__).resolve().parents[1]
TLS_DIR = LOCAL_DIR / "tls"
CA_FILE = TLS_DIR / "ca.pem"


def trust() -> ssl.SSLContext:
    """The hub's local CA, which signed the gateway's certificate."""
    return ssl.create_default_context(cafile=str(CA_FILE))


class GatewayProcess:
    """`sendhub serve gateway` on https://127.0.0.1:<free port>, its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "SENDHUB_GATEWAY_URL": "https://127.0.0.1:0"}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "sendhub.cli", "serve", "gateway"],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                        env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.log_path.read_text()[-3000:]}")
            for line in self.log_path.read_text().splitlines():
                if '"gateway.listening"' in line:
                    self.port = int(json.loads(line)["port"])
            if self.port and self._healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the gateway did not start: {self.log_path.read_text()[-3000:]}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", verify=trust(), timeout=2).is_success
        except httpx.HTTPError:
            return False

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=trust(), headers=headers, timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self) -> str:
        return self.log_path.read_text()


def issue_packet(settings: HubSettings, from_urn: str, to: dict[str, str],
                 upn: str | None = None) -> TransferPacketV1:
    """A concern and a move recorded by records, the packet built and sent by transfers,
    in this process, on the given database (as the services would)."""
    [packet] = issue_packets(settings, from_urn, to, upn)
    return packet


def issue_packets(settings: HubSettings, from_urn: str, to: dict[str, str],
                  upn: str | None = None, before: Sequence[dict[str, Any]] = ()
                  ) -> list[TransferPacketV1]:
    """As `issue_packet`, with `before` (a local authority's EHC events, say) recorded
    ahead of the move: the setting's packet first, then any notices to LAs."""
    upn = upn or random_upn()
    pupil = {"upn": upn, "given_name": "Ada", "family_name": "Test",
             "date_of_birth": "2015-04-01"}
    source = {"urn": from_urn, "system": "SIMS"}
    moved = school_event("pupil_moved", pupil=pupil, source=source,
                         occurred_at="2025-10-20T09:00:00+01:00",
                         payload={"destination": to, "move_kind": "in_year",
                                  "effective_date": "2025-11-10"})
    records = RecordsApplication(env=settings.eventsourcing_env())
    topic = f"gateway-tests-{upn}"
    events = [school_event(pupil=pupil, source=source), *({**e, "pupil": pupil} for e in before),
              moved]
    records.record_school_events([(_record(e), ConsumedPosition(topic, 0, n))
                                  for n, e in enumerate(events)])
    messages = [to_history_contract(e, n) for n, e in enumerate(records.history_events(upn), 1)]
    records.close()
    transfers = TransfersApplication.for_settings(settings)
    try:
        packet_ids = transfers.record_history(
            [(m, HistoryPosition(topic, 0, i)) for i, m in enumerate(messages)])
        transfers.mark_published([p for p in transfers.pending_packets(1000)
                                  if p.packet_id in packet_ids])
        packets = [transfers.packet(packet_id) for packet_id in packet_ids]
    finally:
        transfers.close()
    assert packets and all(p is not None for p in packets)
    return [p for p in packets if p is not None]


def _record(event: dict[str, Any]) -> Any:
    return to_school_event_record(AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=0),
        event=INBOUND_EVENT.validate_python(event)))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalHTTPS:
    """A receiver's webhook endpoint (POST, answering `answers` in turn, then 200) and an
    identity provider's JWKS (GET /jwks.json), over HTTPS with the hub's local cert."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._answer(200, json.dumps(outer.jwks).encode())

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(Received(self.path, dict(self.headers.items()), body))
                self._answer(outer.answers.pop(0) if outer.answers else 200, b"{}")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()


def records_on(settings: HubSettings, topic: str) -> list[TopicRecord]:
    """Every record now on `topic` with its headers (read as the operator)."""
    return list(read_topic(settings, topic))


def wait_for(check: Callable[[], Any], seconds: float = 30) -> Any:
    """`check()`'s first truthy answer within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"not true within {seconds} s")
