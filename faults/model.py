"""What the fault suite sends and what it expects back: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Stream = Literal["events", "receipts"]
Role = Literal["valid", "hostile", "canary"]


@dataclass(frozen=True)
class Message:
    """One Kafka message to publish: to school events or to packet receipts."""

    stream: Stream
    key: bytes | None
    value: bytes | None  # None: a tombstone, no value at all
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def body(self) -> bytes:
        """The bytes a dead letter keeps of it (a tombstone's are empty)."""
        return self.value or b""


@dataclass(frozen=True)
class ValidEvent:
    """A valid school event: expected exactly once, in order, in its pupil's history."""

    upn: str
    event_id: str
    receiver: str | None = None  # set on a pupil_moved: where its packet goes


@dataclass(frozen=True)
class Hostile:
    """A message the hub must set aside with its reason, and not choke on.

    `expect` says what counts as handled: "dead_letter" (a dead letter holding these exact
    bytes, or for a message that passes ingest, a later stage's dead letter containing
    `marker`), or "packet" (a packet too large for the broker: delivered in a form that
    fits, or marked undeliverable, or dead-lettered: the suite reports which)."""

    name: str
    family: str
    message: Message
    marker: bytes | None = None
    expect: Literal["dead_letter", "packet"] = "dead_letter"
    move_event_id: str | None = None  # for expect == "packet"


@dataclass(frozen=True)
class Canary:
    """What must come out behind a hostile message on the same partition: a packet for
    a fresh pupil's move, or (behind a hostile receipt) a receipt recorded."""

    name: str
    upn: str
    move_event_id: str | None = None
    packet_id: str | None = None  # for a receipt canary: the packet it acknowledges


@dataclass
class Group:
    """Messages sent back to back on one key: one hostile case, the valid events it
    needs, and its canary behind it. `needs_packet` delays a receipt group until the
    packet its canary acknowledges exists."""

    at: float
    messages: list[tuple[Message, Role]]
    valid: list[ValidEvent] = field(default_factory=list)
    hostile: list[Hostile] = field(default_factory=list)
    canary: Canary | None = None
    needs_packet: str | None = None


@dataclass(frozen=True)
class Fault:
    """One injected fault as it happened: kind, target, and when (epoch seconds)."""

    kind: str  # "kill", "broker", "postgres", "rebalance join", "rebalance leave"
    service: str | None  # the service it hit, None for the broker and the database
    at: float
    target: str = ""  # the instance, for kills and rebalances

    @property
    def label(self) -> str:
        if self.kind == "kill":
            return f"kill -9 {self.service}"
        if self.kind.startswith("rebalance"):
            return f"{self.kind} {self.service}"
        return {"broker": "broker kill -9", "postgres": "postgres restart"}.get(self.kind, self.kind)

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages whose progress shows recovery from this fault."""
        if self.kind == "broker":
            return ("ingest", "records", "transfers")
        if self.kind == "postgres":
            return ("records", "transfers")
        return (self.service,) if self.service else ()

    @property
    def crash_of(self) -> tuple[str, ...]:
        """Services that may legitimately publish something twice after this fault
        (at-least-once after a crash); a graceful rebalance is not a crash."""
        if self.kind == "kill" and self.service:
            return (self.service,)
        if self.kind in ("broker", "postgres"):
            return ("ingest", "records", "transfers")
        return ()
