"""Inbound contract v1, the local authority's part: EHC events from an LA's
case-management system, on the same topics as school events (additive to v1: every
school event stays valid, and these carry `schema_version: 1` too).

An EHC plan is the local authority's (Children and Families Act 2014, Part 3): the LA
receives the request, decides whether to assess, decides whether to issue a plan, issues
and maintains it, reviews it and ceases or transfers it. A school's
`request_ehc_needs_assessment` outcome is a request; the plan exists only when an LA says
so here. `source` names the LA by its three-digit code (`{"la": "801", ...}`).

Contract layer: pydantic and the standard library only; strict like the school events.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from contracts.school_events import (
    URN,
    Name,
    Provision,
    RankedNeed,
    SENContact,
    Strict,
    Text,
    Views,
    _check_ranked,
    _InboundEvent,
)

LACode = Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]
"""A local authority's three-digit DfE code (e.g. 801), ASCII digits only."""


class LASource(Strict):
    """The local authority and the case-management system that sent the event."""

    la: LACode
    system: Name


class RequestedBy(StrEnum):
    """Who asked for the EHC needs assessment (SEND Regulations 2014, reg. 3: a parent,
    the young person, or a person acting for a school or post-16 institution; others
    may bring a child to the LA's attention)."""

    PARENT = "parent"
    YOUNG_PERSON = "young_person"
    SCHOOL = "school"
    POST16_INSTITUTION = "post16_institution"
    EARLY_YEARS_SETTING = "early_years_setting"
    HEALTH_OR_SOCIAL_CARE = "health_or_social_care"
    OTHER = "other"


class TimeLimitException(StrEnum):
    """The published exceptions to the EHC time limits: the LA need not meet the limit
    when it is impractical because of one of these. The 6 weeks: SEND Regulations 2014,
    reg. 5(4); the 16 weeks: reg. 10(4)(a)-(d); the 20 weeks: reg. 13(3), which refers
    to reg. 10(4)(a)-(d)."""

    SCHOOL_CLOSURE = "school_closure"
    """Advice was asked of a school's head teacher or a post-16 institution's principal
    during its closure of at least 4 weeks (from one week before it to one week before
    it re-opens): reg. 5(4)(a), 10(4)(a)."""
    EARLY_YEARS_CLOSURE = "early_years_closure"
    """The same for a provider of relevant early years education: reg. 10(4)(b)."""
    EXCEPTIONAL_PERSONAL_CIRCUMSTANCES = "exceptional_personal_circumstances"
    """They affect the child, the parent or the young person: reg. 5(4)(b), 10(4)(c)."""
    ABSENT_FROM_AREA = "absent_from_area"
    """The child, parent or young person was away from the LA's area for at least 4
    weeks: reg. 5(4)(c), 10(4)(d)."""


class _LAEvent(_InboundEvent):
    """The fields every inbound event has, with an LA as the source."""

    source: LASource


class EHCRequestReceivedPayload(Strict):
    received_on: date
    """When the LA received the request: the EHC clocks start here."""
    requested_by: RequestedBy
    requesting_urn: URN | None = None
    """The school that asked, when a school asked."""


class EHCAssessmentDecisionPayload(Strict):
    """Whether the LA will carry out an EHC needs assessment (reg. 4, 5)."""

    decided_on: date
    decision: Literal["assess", "not_assess"]
    reason: Text | None = None
    exception: TimeLimitException | None = None

    @model_validator(mode="after")
    def _exception_of_reg_5(self) -> EHCAssessmentDecisionPayload:
        if self.exception is TimeLimitException.EARLY_YEARS_CLOSURE:
            raise ValueError("early_years_closure is not an exception to the 6 weeks "
                             "(SEND Regulations 2014, reg. 5(4) lists school_closure, "
                             "exceptional_personal_circumstances and absent_from_area)")
        return self


class EHCPlanDecisionPayload(Strict):
    """After the assessment: whether the LA will issue a plan (reg. 10: a decision not
    to issue within 16 weeks of the request)."""

    decided_on: date
    decision: Literal["issue", "not_issue"]
    reason: Text | None = None
    exception: TimeLimitException | None = None


class EHCPlanIssuedPayload(Strict):
    """The final EHC plan (reg. 13: within 20 weeks of the request), summarised: the
    needs of section B and the provision of section F."""

    issued_on: date
    maintaining_la: LACode
    case_officer: SENContact
    """The LA's case officer: a role and a work contact, never a personal one."""
    needs: Annotated[list[RankedNeed], Field(min_length=1), AfterValidator(_check_ranked)]
    provision: list[Provision]
    outcomes: list[Text] = []
    """Section E, as short statements."""
    named_setting_urn: URN | None = None
    """Section I: the school named in the plan."""
    exception: TimeLimitException | None = None


class EHCAnnualReviewPayload(Strict):
    """An annual review held and the LA's decision on it (Children and Families Act 2014
    s.44; SEND Regulations 2014 reg. 18-20)."""

    held_on: date
    outcome: Literal["maintain", "amend", "cease"]
    for_phase_transfer: bool = False
    """The review before a move between phases of education (reg. 18)."""
    parent_carer_views: Views = None
    young_person_views: Views = None


class EHCPlanAmendedPayload(Strict):
    amended_on: date
    summary: Text
    needs: Annotated[list[RankedNeed], AfterValidator(_check_ranked)] | None = None
    provision: list[Provision] | None = None
    named_setting_urn: URN | None = None
    for_phase_transfer: bool = False
    """Amended for a move between phases (reg. 18: by 15 February, or 31 March for a
    move from secondary school to post-16)."""


class CeaseReason(StrEnum):
    """Why the LA ceased to maintain the plan (Children and Families Act 2014 s.45)."""

    NO_LONGER_NECESSARY = "no_longer_necessary"
    LEFT_EDUCATION = "left_education"
    MOVED_OUT_OF_ENGLAND = "moved_out_of_england"
    OTHER = "other"


class EHCPlanCeasedPayload(Strict):
    ceased_on: date
    reason: CeaseReason
    no_longer_has_sen: bool = False
    """Without it the pupil is taken to be on SEN support (K) after the plan ends."""


class EHCPlanTransferredPayload(Strict):
    """The plan passed to another LA when the pupil moved there (reg. 15)."""

    transferred_on: date
    to_la: LACode


class EHCRequestReceivedV1(_LAEvent):
    event_type: Literal["ehc_request_received"]
    payload: EHCRequestReceivedPayload


class EHCAssessmentDecisionV1(_LAEvent):
    event_type: Literal["ehc_assessment_decision"]
    payload: EHCAssessmentDecisionPayload


class EHCPlanDecisionV1(_LAEvent):
    event_type: Literal["ehc_plan_decision"]
    payload: EHCPlanDecisionPayload


class EHCPlanIssuedV1(_LAEvent):
    event_type: Literal["ehc_plan_issued"]
    payload: EHCPlanIssuedPayload

    @model_validator(mode="after")
    def _issued_by_its_la(self) -> EHCPlanIssuedV1:
        if self.payload.maintaining_la != self.source.la:
            raise ValueError(f"LA {self.source.la} cannot issue a plan that LA "
                             f"{self.payload.maintaining_la} maintains: maintaining_la is "
                             "the LA sending the event (a plan passes to another LA with "
                             "ehc_plan_transferred)")
        return self


class EHCAnnualReviewV1(_LAEvent):
    event_type: Literal["ehc_annual_review"]
    payload: EHCAnnualReviewPayload


class EHCPlanAmendedV1(_LAEvent):
    event_type: Literal["ehc_plan_amended"]
    payload: EHCPlanAmendedPayload


class EHCPlanCeasedV1(_LAEvent):
    event_type: Literal["ehc_plan_ceased"]
    payload: EHCPlanCeasedPayload


class EHCPlanTransferredV1(_LAEvent):
    event_type: Literal["ehc_plan_transferred"]
    payload: EHCPlanTransferredPayload

    @model_validator(mode="after")
    def _to_another_la(self) -> EHCPlanTransferredV1:
        if self.payload.to_la == self.source.la:
            raise ValueError("a plan is transferred to another local authority, not to the "
                             "one sending the event")
        return self


LAEventV1 = (EHCRequestReceivedV1 | EHCAssessmentDecisionV1 | EHCPlanDecisionV1
             | EHCPlanIssuedV1 | EHCAnnualReviewV1 | EHCPlanAmendedV1 | EHCPlanCeasedV1
             | EHCPlanTransferredV1)
LA_EVENT_TYPES = frozenset({
    "ehc_request_received", "ehc_assessment_decision", "ehc_plan_decision",
    "ehc_plan_issued", "ehc_annual_review", "ehc_plan_amended", "ehc_plan_ceased",
    "ehc_plan_transferred"})
