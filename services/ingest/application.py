"""Ingest's one use case: admit a school event, or say why it cannot enter the hub.

Application layer, stateless: the byte-level rules (`domain.screen`), then the inbound
contract (`handlers.to_accepted`). Every refusal is a `MessageRefused`; anything else
that goes wrong is a bug of ours, which the error policy dead-letters as
`internal_error` (never blaming the sender).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.dead_letter import problems_from
from contracts.inbound import where_recorded
from contracts.topics import GATEWAY_SENDER, PRINCIPAL_HEADER, Topics
from services.ingest.domain import authorise, screen
from services.ingest.handlers import to_accepted
from services.shared.access import OPERATOR, Principal, principal_named_by_sender
from services.shared.errors import MessageRefused


class Principals(Protocol):
    def active(self, name: str) -> Principal | None: ...


class RememberedPrincipals:
    """Principals as the store has them, re-read after `ttl` seconds: a revoked connector
    is refused within that time (its Kafka credentials are deleted at once anyway)."""

    def __init__(self, store: Principals, ttl: float = 10.0) -> None:
        self.store, self.ttl = store, ttl
        self._seen: dict[str, tuple[float, Principal | None]] = {}

    def active(self, name: str) -> Principal | None:
        now = time.monotonic()
        seen = self._seen.get(name)
        if seen is None or seen[0] < now:
            seen = (now + self.ttl, self.store.active(name))
            self._seen[name] = seen
        return seen[1]


def sender_of(topic: str, headers: Sequence[tuple[str, bytes]], topics: Topics
              ) -> tuple[str, str | None]:
    """Who wrote to `topic`: (how to name them, the principal's name). The bare topic is
    the operator's; the gateway's names its authenticated caller in a header."""
    sender = topics.sender_of(topic, topics.school_events)
    if sender is None:
        return "operator", None
    if sender == GATEWAY_SENDER:
        named = dict(headers).get(PRINCIPAL_HEADER)
        who = named.decode("utf-8", "replace") if named else None
        return f"gateway caller {who or '(none named)'}", who
    return sender, principal_named_by_sender(sender)


def admit_school_event(raw: bytes | None, *, position: Position, now: datetime,
                       max_bytes: int, headers: Sequence[tuple[str, bytes]], topics: Topics,
                       principals: Principals) -> AcceptedSchoolEventV1:
    """Screen the event, then check that whoever wrote it may speak for its school."""
    accepted = screen_school_event(raw, position=position, now=now, max_bytes=max_bytes)
    sender, name = sender_of(position.topic, headers, topics)
    if topics.sender_of(position.topic, topics.school_events) is None:
        principal: Principal | None = OPERATOR  # only the bare topic is the operator's
    else:
        principal = principals.active(name) if name else None
    authorise(sender, principal, where_recorded(accepted.event))
    return accepted


def screen_school_event(raw: bytes | None, *, position: Position, now: datetime,
                        max_bytes: int) -> AcceptedSchoolEventV1:
    text = screen(raw, max_bytes)
    try:
        return to_accepted(text, position=position, now=now)
    except ValidationError as exc:
        raise MessageRefused("schema_invalid", problems_from(exc)) from None
