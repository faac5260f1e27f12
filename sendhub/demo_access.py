"""The demonstration's principals, the schools that send over HTTPS, and the refused
attempts it shows: the hub is secured by default, and the demo proves it on the running
broker and gateway.

Riverside Primary gets its own Kafka credentials (a school whose system speaks Kafka);
an auditor gets a bearer token for the CLI (written to `.cache/local/demo-auditor.token`,
mode 600), so the commands the demo suggests act as an authenticated principal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from rich.console import Console
from rich.rule import Rule

from contracts.dead_letter import DeadLetterV1
from sendhub.principals_admin import KafkaAccess, SyncReport, kafka_user
from sendhub.summaries import dead_letter_summary
from sendhub.topics_reader import read_topic
from services.shared.access import Kind, Principal
from services.shared.kafka import client_options
from services.shared.principals import PrincipalStore
from services.shared.settings import HubSettings

ROOT = Path(__file__).resolve().parents[1]
AUDITOR_TOKEN = ROOT / ".cache" / "local" / "demo-auditor.token"
RIVERSIDE = Principal(Kind.school, "131002")
AUDITOR = Principal(Kind.auditor, "demo")
BRISTOL = Principal(Kind.la, "801")
BRISTOL_TOKEN = ROOT / ".cache" / "local" / "demo-la-801.token"


def add_demo_principals(settings: HubSettings) -> Path:
    """Riverside on Kafka, the demo's auditor and Bristol's SEND team (LA 801) with a
    token each; returns the auditor's token file."""
    store = PrincipalStore(settings.database_conninfo)
    store.add(RIVERSIDE, uses_kafka=True)
    access = KafkaAccess(settings)
    try:
        access.apply(RIVERSIDE, SyncReport())
    finally:
        access.close()
    for principal, token_file in ((AUDITOR, AUDITOR_TOKEN), (BRISTOL, BRISTOL_TOKEN)):
        store.add(principal)
        token_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(store.issue_token(principal.name, days=1).token + "\n")
    return AUDITOR_TOKEN


def _unauthenticated_refused(settings: HubSettings) -> str:
    try:
        KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=4000,
                         bootstrap_timeout_ms=4000, client_id="demo-anonymous").list_topics()
    except KafkaError as exc:
        return type(exc).__name__
    return "NOT REFUSED"


def _pretend_to_be_oakfield(settings: HubSettings, event: dict[str, object]) -> str:
    """Riverside's own system, with Riverside's credentials, sends an event that says it
    comes from Oakfield: the broker lets it write its own topic; ingest refuses it."""
    user = kafka_user(settings, RIVERSIDE)
    producer = KafkaProducer(**client_options(settings.model_copy(
        update={"kafka_username": user})), acks="all")
    topic = settings.topics.school_events_from("urn-131002")
    try:
        producer.send(topic, key=b"demo", value=json.dumps(event).encode()).get(timeout=30)
    finally:
        producer.close()
    return topic


def show_refused_attempts(settings: HubSettings, console: Console,
                          event: dict[str, object]) -> bool:
    """Two attempts the hub refuses, shown as a user would see them; True when both were."""
    console.print(Rule("Who may do what: two refused attempts"))
    refusal = _unauthenticated_refused(settings)
    console.print(f"A client without credentials asks the broker for its topics: refused "
                  f"({refusal}).")
    topic = _pretend_to_be_oakfield(settings, event)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for record in read_topic(settings, settings.topics.rejected):
            letter = DeadLetterV1.model_validate_json(record.value)
            if letter.source_topic == topic and letter.reason == "not_authorised" and \
                    json.loads(letter.original).get("event_id") == event["event_id"]:
                console.print("Riverside's system sends an event as Oakfield Primary, on "
                              "Riverside's own topic:")
                console.print(dead_letter_summary(letter))
                return refusal != "NOT REFUSED"
        time.sleep(1)
    console.print("[red]Riverside's event as Oakfield was not refused within 60 s.[/red]")
    return False


class HttpsSchools:
    """The gateway as the demo runs it, and the schools that send over HTTPS with their
    own bearer tokens (Oakfield and Riverside have no Kafka client of their own here)."""

    def __init__(self, settings: HubSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_path = log_dir / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        store = PrincipalStore(settings.database_conninfo)
        self.tokens: dict[str, str] = {}
        for urn in ("131001", "131002"):
            school = Principal(Kind.school, urn)
            store.add(school)
            self.tokens[urn] = store.issue_token(school.name, days=1).token

    def start(self) -> subprocess.Popen[bytes]:
        """`sendhub serve gateway` on any free port, over TLS with the local CA's cert."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sendhub.cli", "serve", "gateway"],
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "SENDHUB_GATEWAY_URL": "https://127.0.0.1:0"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.url:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.log_path}")
            for line in self.log_path.read_text().splitlines():
                if '"gateway.listening"' in line:
                    self.url = f"https://127.0.0.1:{json.loads(line)['port']}"
            time.sleep(0.2)
        if not self.url:
            raise RuntimeError(f"the gateway did not start within 60 s; see {self.log_path}")
        return self.process

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        """Each school posts its own events as one NDJSON batch; what each was told."""
        told = []
        ca = self.settings.kafka_ca()
        for urn, token in self.tokens.items():
            mine = [e for e in events if e["source"]["urn"] == urn]
            if not mine:
                continue
            body = b"".join(json.dumps(e).encode() + b"\n" for e in mine)
            answer = _post_when_ready(f"{self.url}/v1/events", body, token, ca)
            told.append(f"{SCHOOL_NAMES[urn]} posted {len(mine)} event(s) to "
                        f"{self.url}/v1/events: HTTP {answer.status_code}, "
                        f"{answer.json().get('accepted', 0)} accepted")
        return told


SCHOOL_NAMES = {"131001": "Oakfield Primary School", "131002": "Riverside Primary School"}


def _post_when_ready(url: str, body: bytes, token: str, ca: Path | None) -> httpx.Response:
    """The gateway answers /healthz before its Kafka producer is ready: 503 means wait."""
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.post(url, content=body, verify=str(ca) if ca else True, timeout=30,
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/x-ndjson"})
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(1)
