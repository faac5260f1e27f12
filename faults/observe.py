"""What the hub did, read back at the end of a phase: its topics and its database.

Messages are read with `json.loads`, not the contracts' models, so a message the hub
should never have written is still counted rather than failing the read.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka.admin import KafkaAdminClient
from kafka.partitioner.default import murmur2

from contracts.topics import Topics
from sendhub.topics_reader import read_topic
from services.records.application import RecordsApplication
from services.records.domain import SENHistoryEvent
from services.shared.kafka import client_options
from services.shared.settings import HubSettings

READ_SECONDS = 120.0


@dataclass(frozen=True)
class HistoryCopy:
    upn: str
    version: int
    event_id: str
    ts_ms: int
    partition: int


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    service: str
    source_topic: str
    original: bytes
    problems: str


@dataclass(frozen=True)
class PacketCopy:
    packet_id: str
    upn: str
    move_event_id: str
    receiver: str
    supersedes: str | None
    ts_ms: int
    size: int


@dataclass
class Observed:
    """Everything the checker reads. `progress` is (stage, lane, broker time in ms) of
    every record showing a stage moved on: lane = the partition of the pupil's UPN."""

    history: list[HistoryCopy] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    packets: list[PacketCopy] = field(default_factory=list)
    stored: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # upn -> (version, id)
    unreadable_stored: int = 0
    projected: dict[str, list[int]] = field(default_factory=dict)  # transfers_history versions
    deliveries: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # packet -> states
    packet_rows: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # id -> upn, move, published
    progress: list[tuple[str, int, int]] = field(default_factory=list)


def lane(upn: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives this UPN as a key."""
    return int(murmur2(upn.encode()) & 0x7FFFFFFF) % partitions


def _json(value: bytes) -> Any:
    try:
        return json.loads(value)
    except Exception:
        return None


def read_history(observed: Observed, settings: HubSettings, topics: Topics) -> None:
    for r in read_topic(settings, topics.pupil_history, READ_SECONDS):
        message = _json(r.value)
        if not isinstance(message, dict):
            continue
        event = message.get("event") or {}
        observed.history.append(HistoryCopy(str(message.get("upn")), int(message.get("version", 0)),
                                            str(event.get("event_id")), r.timestamp_ms, r.partition))
        observed.progress.append(("records", r.partition, r.timestamp_ms))


def read_accepted_and_rejected(observed: Observed, settings: HubSettings, topics: Topics) -> None:
    for r in read_topic(settings, topics.accepted, READ_SECONDS):
        observed.progress.append(("ingest", r.partition, r.timestamp_ms))
    for r in read_topic(settings, topics.rejected, READ_SECONDS):
        letter = _json(r.value)
        if not isinstance(letter, dict):
            continue
        original = base64.b64decode(letter.get("original_base64") or "")
        problems = "; ".join(f"{p.get('path')}: {p.get('message')}"
                             for p in letter.get("problems") or [] if isinstance(p, dict))
        observed.dead_letters.append(DeadLetter(str(letter.get("reason")), str(letter.get("service")),
                                                str(letter.get("source_topic")), original, problems))
        if letter.get("service") == "ingest":
            observed.progress.append(("ingest", r.partition, r.timestamp_ms))


def read_inboxes(observed: Observed, settings: HubSettings, topics: Topics) -> None:
    prefix = topics.inbox("")
    admin = KafkaAdminClient(**client_options(settings), client_id="sendhub-faults")
    try:
        inboxes = sorted(t for t in admin.list_topics() if t.startswith(prefix))
    finally:
        admin.close()
    for topic in inboxes:
        for r in read_topic(settings, topic, READ_SECONDS):
            packet = _json(r.value)
            if not isinstance(packet, dict):
                continue
            upn = str((packet.get("pupil") or {}).get("upn"))
            observed.packets.append(PacketCopy(
                str(packet.get("packet_id")), upn, str((packet.get("move") or {}).get("event_id")),
                topic.removeprefix(prefix), packet.get("supersedes"), r.timestamp_ms,
                len(r.value)))
            observed.progress.append(("transfers", lane(upn, settings.topic_partitions),
                                      r.timestamp_ms))


def read_records_store(observed: Observed, settings: HubSettings) -> None:
    app = RecordsApplication(env=settings.eventsourcing_env())
    try:
        for _, events in app.stored_streams():
            upn = next((e.upn for _, e in events if isinstance(e, SENHistoryEvent)), None)
            if upn is None:
                observed.unreadable_stored += len(events)
                continue
            observed.stored[upn] = [(v, e.event_id if isinstance(e, SENHistoryEvent) else str(e))
                                    for v, e in events]
    finally:
        app.close()


def read_transfers(observed: Observed, settings: HubSettings) -> None:
    with psycopg.connect(settings.database_conninfo) as conn:
        for upn, version in conn.execute("SELECT upn, version FROM transfers_history ORDER BY 1, 2"):
            observed.projected.setdefault(upn, []).append(version)
        for packet_id, state, detail in conn.execute(
                "SELECT packet_id, state, coalesce(detail, '') FROM transfers_delivery ORDER BY id"):
            observed.deliveries.setdefault(str(packet_id), []).append((state, detail))
        for packet_id, upn, move, published in conn.execute(
                "SELECT packet_id, upn, body->'move'->>'event_id', published_at IS NOT NULL "
                "FROM transfers_packets"):
            observed.packet_rows[str(packet_id)] = (upn, str(move), bool(published))


def observe(settings: HubSettings) -> Observed:
    topics = settings.topics
    observed = Observed()
    read_history(observed, settings, topics)
    read_accepted_and_rejected(observed, settings, topics)
    read_inboxes(observed, settings, topics)
    read_records_store(observed, settings)
    read_transfers(observed, settings)
    return observed
