"""Pure mapping from an inbound message's text to the accepted-event contract.

Validation is the inbound contract's (`contracts.school_events`, strict); a failure is
pydantic's `ValidationError`, which the error policy reports as `schema_invalid`.
"""

from __future__ import annotations

from datetime import datetime

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.identifiers import check_upn
from contracts.inbound import INBOUND_EVENT


def to_accepted(text: str, *, position: Position, now: datetime) -> AcceptedSchoolEventV1:
    event = INBOUND_EVENT.validate_json(text, context={"now": now})
    return AcceptedSchoolEventV1(
        accepted_at=now,
        upn_is_temporary=check_upn(event.pupil.upn),
        received_from=position,
        event=event,
    )
