"""Ingest's one use case: admit a school event, or say why it cannot enter the hub.

Application layer, stateless: the byte-level rules (`domain.screen`), then the inbound
contract (`handlers.to_accepted`). Every refusal is a `MessageRefused`; anything else
that goes wrong is a bug of ours, which the error policy dead-letters as
`internal_error` (never blaming the sender).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.dead_letter import problems_from
from services.ingest.domain import screen
from services.ingest.handlers import to_accepted
from services.shared.errors import MessageRefused


def screen_school_event(raw: bytes | None, *, position: Position, now: datetime,
                        max_bytes: int) -> AcceptedSchoolEventV1:
    text = screen(raw, max_bytes)
    try:
        return to_accepted(text, position=position, now=now)
    except ValidationError as exc:
        raise MessageRefused("schema_invalid", problems_from(exc)) from None
