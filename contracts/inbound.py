"""Every inbound event the hub admits, schools' and local authorities', as one union.

Contract layer. `sen.school-events.v1` (and each sender's own topic) carries both kinds;
`event_type` tells them apart. The accepted-event and history contracts carry this
union, so a reader of the history sees the LA's EHC events beside the schools' events.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Discriminator, TypeAdapter

from contracts.la_events import (
    EHCAnnualReviewV1,
    EHCAssessmentDecisionV1,
    EHCPlanAmendedV1,
    EHCPlanCeasedV1,
    EHCPlanDecisionV1,
    EHCPlanIssuedV1,
    EHCPlanTransferredV1,
    EHCRequestReceivedV1,
    LAEventV1,
    LASource,
)
from contracts.school_events import (
    AssessmentCompletedV1,
    ConcernRaisedV1,
    EntryCorrectedV1,
    EntryMisfiledV1,
    EntryRetractedV1,
    PlanReviewedV1,
    PupilMovedV1,
)

InboundEvent = (ConcernRaisedV1 | AssessmentCompletedV1 | PlanReviewedV1 | PupilMovedV1
                | EHCRequestReceivedV1 | EHCAssessmentDecisionV1 | EHCPlanDecisionV1
                | EHCPlanIssuedV1 | EHCAnnualReviewV1 | EHCPlanAmendedV1 | EHCPlanCeasedV1
                | EHCPlanTransferredV1 | EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1)
InboundEventV1 = Annotated[InboundEvent, Discriminator("event_type")]
INBOUND_EVENT = TypeAdapter[InboundEvent](InboundEventV1)


def where_recorded(event: InboundEvent) -> str:
    """Who recorded an event, as the history names settings: a school's URN
    (`100001`), or a local authority as `la-801`."""
    return f"la-{event.source.la}" if isinstance(event.source, LASource) else event.source.urn


def is_la_event(event: InboundEvent) -> bool:
    return isinstance(event.source, LASource)


__all__ = ["INBOUND_EVENT", "InboundEvent", "InboundEventV1", "LAEventV1", "is_la_event",
           "where_recorded"]
