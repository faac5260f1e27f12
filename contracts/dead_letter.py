"""Dead letters on `sen.rejected.v1`: what was refused, why, and exactly where it came from.

Contract layer. The original bytes are kept (base64) so that nothing is ever lost: a
corrected event can be re-sent, and an auditor can see what arrived. The topic holds
special category data, so it gets the same ACLs and retention as its source topic.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

ReasonCode = Literal[
    "not_utf8", "not_json", "empty", "too_large", "schema_invalid", "history_rejected",
    "unknown_packet", "wrong_receiver", "internal_error", "event_id_conflict", "not_authorised",
    "pupil_erased",
]


class Problem(BaseModel):
    """One thing wrong with a message: where (a dotted field path, or "" for the whole)."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


class DeadLetterV1(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: ReasonCode
    problems: list[Problem]
    service: str
    source_topic: str
    partition: int
    offset: int
    key: str | None
    failed_at: datetime
    original_base64: str
    original_size: int

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_base64)

    @classmethod
    def of(
        cls,
        original: bytes,
        *,
        reason: ReasonCode,
        problems: list[Problem],
        service: str,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        failed_at: datetime,
    ) -> DeadLetterV1:
        return cls(
            reason=reason,
            problems=problems,
            service=service,
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            key=key.decode("utf-8", "replace") if key is not None else None,
            failed_at=failed_at,
            original_base64=base64.b64encode(original).decode("ascii"),
            original_size=len(original),
        )


def problems_from(error: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into field paths and plain messages, without the input values."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = [str(part) for part in item["loc"]]
        # Tagged unions put the tag into the path (`concern_raised.payload...`): drop it.
        loc = [part for part in loc if part not in _UNION_TAGS]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "union_tag_not_found":
            field = item.get("ctx", {}).get("discriminator", "").strip("'")
            loc, message = loc + [field], f"{field} is missing"
        elif item["type"] == "union_tag_invalid":
            field = item.get("ctx", {}).get("discriminator", "").strip("'")
            expected = item.get("ctx", {}).get("expected_tags", "")
            loc, message = loc + [field], f"{field} must be one of: {expected}"
        problems.append(Problem(path=".".join(loc), message=message))
    return problems


_UNION_TAGS = {
    "concern_raised",
    "assessment_completed",
    "plan_reviewed",
    "pupil_moved",
    "school",
    "post16_provider",
    "unknown",
}
