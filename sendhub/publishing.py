"""Publishing school events as a school system would: JSON lines, keyed by UPN."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from kafka import KafkaProducer
from rich.progress import Progress

from contracts.receipts import PacketReceiptV1
from services.shared.kafka import client_options, ensure_topics
from services.shared.settings import HubSettings


@dataclass
class Sent:
    count: int = 0
    unkeyed: int = 0
    positions: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset)


def upn_key(line: bytes) -> bytes | None:
    """The message key that keeps related messages in order: an event's UPN, a
    receipt's packet id; None when it cannot be read."""
    try:
        message = json.loads(line)
        key = message["pupil"]["upn"] if "pupil" in message else message["packet_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return key.encode() if isinstance(key, str) else None


def publish_lines(settings: HubSettings, lines: Sequence[bytes], progress: bool = False,
                  topic: str | None = None) -> Sent:
    """Send each non-blank line as one message; wait until the broker has them all."""
    producer = KafkaProducer(
        **client_options(settings), acks="all", linger_ms=5,
        max_request_size=8 * 1024 * 1024,
    )
    sent = Sent()
    futures = []
    lines = [line for line in lines if line.strip()]
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("publishing", total=len(lines))
            for line in lines:
                key = upn_key(line)
                sent.unkeyed += key is None
                futures.append(producer.send(topic or settings.topics.school_events,
                                             value=line, key=key))
                bar.advance(task)
            producer.flush()
        for future in futures:
            metadata = future.get(timeout=30)
            sent.positions.append((metadata.partition, metadata.offset))
        sent.count = len(futures)
    finally:
        producer.close()
    return sent


def publish_receipts(settings: HubSettings, receipts: Sequence[PacketReceiptV1 | bytes]) -> Sent:
    """Receipts onto sen.packet-receipts.v1, keyed by packet id (bytes are sent as they are)."""
    ensure_topics(settings, [settings.topics.packet_receipts])
    lines = [r if isinstance(r, bytes) else r.model_dump_json().encode() for r in receipts]
    return publish_lines(settings, lines, topic=settings.topics.packet_receipts)


def publish_receipt(settings: HubSettings, receipt: PacketReceiptV1) -> Sent:
    return publish_receipts(settings, [receipt])
