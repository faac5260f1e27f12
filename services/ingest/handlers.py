"""Screening one inbound message: accepted event or the reasons it is refused.

Pure: no I/O. The order of checks gives the most useful first reason: size, encoding,
JSON, then the contract, so a sender is told "not UTF-8" rather than a schema error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.dead_letter import Problem, ReasonCode, problems_from
from contracts.identifiers import check_upn
from contracts.school_events import SCHOOL_EVENT


@dataclass(frozen=True)
class Refused:
    """Why a message cannot enter the hub."""

    reason: ReasonCode
    problems: list[Problem]


def screen_school_event(
    raw: bytes | None, *, position: Position, now: datetime, max_bytes: int
) -> AcceptedSchoolEventV1 | Refused:
    if not raw:
        return Refused("empty", [Problem(path="", message="the message has no content")])
    if len(raw) > max_bytes:
        return Refused(
            "too_large",
            [Problem(path="", message=f"{len(raw)} bytes is over the limit of {max_bytes}")],
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refused(
            "not_utf8", [Problem(path="", message=f"not UTF-8: invalid byte at {exc.start}")]
        )
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return Refused(
            "not_json",
            [Problem(path="", message=f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")],
        )
    try:
        event = SCHOOL_EVENT.validate_json(text, context={"now": now})
    except ValidationError as exc:
        return Refused("schema_invalid", problems_from(exc))
    return AcceptedSchoolEventV1(
        accepted_at=now,
        upn_is_temporary=check_upn(event.pupil.upn),
        received_from=position,
        event=event,
    )
