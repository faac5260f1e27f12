"""`sen.accepted.v1`: a school event that passed ingest's validation, keyed by UPN.

Contract layer. Readers inside the hub validate with `extra="ignore"` and the
`{"trusted": True}` context (the clock check was done once, at the edge).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, TypeAdapter

from contracts.inbound import InboundEventV1


class Position(BaseModel):
    """Where a message was read: enough to find the original bytes again."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int


class AcceptedSchoolEventV1(BaseModel):
    model_config = ConfigDict(frozen=True)

    accepted_at: datetime
    upn_is_temporary: bool
    received_from: Position
    event: InboundEventV1


ACCEPTED_EVENT = TypeAdapter(AcceptedSchoolEventV1)
