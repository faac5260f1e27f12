"""`sen.audit-anchors.v1`: the heads of pupils' hash chains, held outside the database.

Contract layer. Records publishes an anchor whenever histories have grown: for every
pupil whose history changed since the previous anchor, the version and SHA-256 hash of
the newest event. Someone who rewrites whole chains in PostgreSQL (recomputing every
hash) cannot also rewrite these, so `sendhub verify --against-anchors` catches them.
Large anchors are split into parts; `digest` is the SHA-256 of the part's heads, and
`all_heads_digest` the SHA-256 of every pupil's head at `up_to_notification_id` (one
line `pupil_id:version:head` per pupil, sorted, joined by newlines), so one anchor
commits to the whole store as it stood.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class ChainHead(BaseModel):
    model_config = ConfigDict(frozen=True)

    pupil_id: UUID
    version: int
    head: str


class AuditAnchorV1(BaseModel):
    model_config = ConfigDict(frozen=True)

    anchor_id: UUID
    anchored_at: datetime
    after_notification_id: int
    up_to_notification_id: int
    part: int
    parts: int
    heads: list[ChainHead]
    digest: str
    all_heads_digest: str | None = None
    pupils: int | None = None
