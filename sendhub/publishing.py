"""Publishing school events as a school system would: JSON lines, keyed by UPN."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from kafka import KafkaProducer
from rich.progress import Progress

from services.shared.settings import HubSettings


@dataclass
class Sent:
    count: int = 0
    unkeyed: int = 0
    positions: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset)


def upn_key(line: bytes) -> bytes | None:
    """The UPN of an event, if it can be read: the message key that keeps a pupil in order."""
    try:
        upn = json.loads(line)["pupil"]["upn"]
    except (ValueError, KeyError, TypeError):
        return None
    return upn.encode() if isinstance(upn, str) else None


def publish_lines(settings: HubSettings, lines: Sequence[bytes], progress: bool = False) -> Sent:
    """Send each non-blank line as one message; wait until the broker has them all."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5,
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
                futures.append(producer.send(settings.topics.school_events, value=line, key=key))
                bar.advance(task)
            producer.flush()
        for future in futures:
            metadata = future.get(timeout=30)
            sent.positions.append((metadata.partition, metadata.offset))
        sent.count = len(futures)
    finally:
        producer.close()
    return sent
