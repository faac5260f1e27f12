"""The demonstration's principals and the refused attempts it shows: the hub is secured
by default, and the demo proves it on the running broker.

Riverside Primary gets its own Kafka credentials (a school whose system speaks Kafka);
an auditor gets a bearer token for the CLI (written to `.cache/local/demo-auditor.token`,
mode 600), so the commands the demo suggests act as an authenticated principal.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

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


def add_demo_principals(settings: HubSettings) -> Path:
    """Riverside on Kafka, the demo's auditor with a token; returns the token's file."""
    store = PrincipalStore(settings.database_conninfo)
    store.add(RIVERSIDE, uses_kafka=True)
    access = KafkaAccess(settings)
    try:
        access.apply(RIVERSIDE, SyncReport())
    finally:
        access.close()
    store.add(AUDITOR)
    AUDITOR_TOKEN.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(AUDITOR_TOKEN, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(store.issue_token(AUDITOR.name, days=1).token + "\n")
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
