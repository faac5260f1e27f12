"""`sen.pupil-history.v1`: every event stored in a pupil's append-only SEN history, in order.

Contract layer. Keyed by UPN. `version` is the pupil's history version (1, 2, ...),
gap-free per pupil, so a reader can tell a repeat (version already seen) from a gap.
`previous_hash` and `event_hash` are the pupil's hash chain (SHA-256, see
`sendhub verify`); they were added after the first release, so they are optional.
`refiled_from` (optional, additive) marks an entry a setting had filed under another
pupil and moved to this one (`entry_misfiled`).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from contracts.inbound import InboundEventV1


class RefiledFromV1(BaseModel):
    """Where a refiled entry came from: the other pupil's history (its stream id, not
    its UPN), the version the entry holds there, and the `entry_misfiled` event that
    moved it."""

    model_config = ConfigDict(frozen=True)

    pupil_id: UUID
    version: int
    misfiled_event_id: UUID


class PupilHistoryEventV1(BaseModel):
    model_config = ConfigDict(frozen=True)

    pupil_id: UUID
    upn: str
    version: int
    notification_id: int
    recorded_at: datetime
    upn_is_temporary: bool
    event: InboundEventV1
    previous_hash: str | None = None
    event_hash: str | None = None
    refiled_from: RefiledFromV1 | None = None
