"""Inbound contract v1: one school event on `sen.school-events.v1`.

Contract layer: pydantic and the standard library only. Validation is strict (unknown
fields and unknown codes are rejected) because this is where school systems send data:
a misspelt `parent_carer_veiws` must come back as an error, not vanish with the views.
Readers inside the hub validate the same models with `extra="ignore"`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts import identifiers
from contracts.post16 import Post16Sharing
from contracts.storable import refuse_unstorable

SCHEMA_VERSION = 1
# School systems' clocks drift; an event this far ahead of the hub's clock is refused.
CLOCK_SKEW = timedelta(minutes=5)


def _identifier(check: Any) -> AfterValidator:
    def validate(value: str) -> str:
        try:
            check(value)
        except identifiers.IdentifierError as exc:
            raise ValueError(str(exc)) from None
        return value

    return AfterValidator(validate)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
UPN = Annotated[str, _identifier(identifiers.check_upn)]
ULN = Annotated[str, _identifier(identifiers.check_uln)]
URN = Annotated[str, _identifier(identifiers.check_urn)]
UKPRN = Annotated[str, _identifier(identifiers.check_ukprn)]


class NeedCode(StrEnum):
    """DfE SEN type of need codes (school census)."""

    SPLD = "SPLD"
    MLD = "MLD"
    SLD = "SLD"
    PMLD = "PMLD"
    SEMH = "SEMH"
    SLCN = "SLCN"
    HI = "HI"
    VI = "VI"
    MSI = "MSI"
    PD = "PD"
    ASD = "ASD"
    OTH = "OTH"
    # "SEN support but no specialist assessment of type of need" (school census, from
    # 2015): what a school sends instead of inventing a code.
    NSA = "NSA"


class RaisedBy(StrEnum):
    TEACHER = "teacher"
    TEACHING_ASSISTANT = "teaching_assistant"
    SENCO = "senco"
    PARENT_CARER = "parent_carer"
    PUPIL = "pupil"
    PREVIOUS_SETTING = "previous_setting"
    ASSESSMENT_DATA = "assessment_data"
    EXTERNAL_AGENCY = "external_agency"


class AssessorRole(StrEnum):
    SENCO = "senco"
    EDUCATIONAL_PSYCHOLOGIST = "educational_psychologist"
    SPEECH_AND_LANGUAGE_THERAPIST = "speech_and_language_therapist"
    OCCUPATIONAL_THERAPIST = "occupational_therapist"
    CAMHS = "camhs"
    PAEDIATRICIAN = "paediatrician"
    SPECIALIST_TEACHER = "specialist_teacher"
    OTHER = "other"


class AssessmentKind(StrEnum):
    SCREENING = "screening"
    SPECIALIST = "specialist"
    EHC_NEEDS_ASSESSMENT = "ehc_needs_assessment"


class AssessmentOutcome(StrEnum):
    NO_SEN = "no_sen"
    SEN_SUPPORT = "sen_support"
    REFER_TO_SPECIALIST = "refer_to_specialist"
    REQUEST_EHC_NEEDS_ASSESSMENT = "request_ehc_needs_assessment"
    EHC_PLAN_ISSUED = "ehc_plan_issued"


class PlanKind(StrEnum):
    SEN_SUPPORT_PLAN = "sen_support_plan"
    EHC_PLAN = "ehc_plan"


class TargetProgress(StrEnum):
    NOT_MET = "not_met"
    PARTLY_MET = "partly_met"
    MET = "met"


class ProvisionKind(StrEnum):
    INTERVENTION = "intervention"
    IN_CLASS_SUPPORT = "in_class_support"
    SPECIALIST_INPUT = "specialist_input"
    EQUIPMENT = "equipment"
    # JCQ access arrangements (extra time, a reader, a separate room...): shown first to
    # secondary schools and colleges, who must apply for them again.
    EXAM_ACCESS_ARRANGEMENTS = "exam_access_arrangements"
    OTHER = "other"


class ReviewDecision(StrEnum):
    CONTINUE = "continue"
    ESCALATE = "escalate"
    REDUCE = "reduce"
    CEASE = "cease"
    REQUEST_EHC_NEEDS_ASSESSMENT = "request_ehc_needs_assessment"


class MoveKind(StrEnum):
    IN_YEAR = "in_year"
    PHASE_TRANSFER = "phase_transfer"
    POST16 = "post16"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _storable = model_validator(mode="before")(refuse_unstorable)


class Source(Strict):
    """The sending school and the system that sent the event."""

    urn: URN
    system: Name


class RecordedBy(Strict):
    role: Name
    name: Name | None = None


class Pupil(Strict):
    upn: UPN
    given_name: Name
    family_name: Name
    date_of_birth: date
    uln: ULN | None = None
    # As the school census records it (CTF `Gender`: M or F); schools match pupils on it.
    gender: Literal["M", "F"] | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_the_past(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("date of birth is in the future")
        return value


class RankedNeed(Strict):
    code: NeedCode
    rank: Annotated[int, Field(ge=1, le=12)]


def _check_ranked(needs: list[RankedNeed]) -> list[RankedNeed]:
    ranks = [n.rank for n in needs]
    codes = [n.code for n in needs]
    if len(set(ranks)) != len(ranks):
        raise ValueError("each need must have a different rank")
    if len(set(codes)) != len(codes):
        raise ValueError("a need code may appear only once")
    if needs and 1 not in ranks:
        raise ValueError("one need must have rank 1 (the primary need)")
    return sorted(needs, key=lambda n: n.rank)


class ConcernRaisedPayload(Strict):
    raised_by: RaisedBy
    areas_of_need: Annotated[list[NeedCode], Field(min_length=1)]
    summary: Text

    @field_validator("areas_of_need")
    @classmethod
    def _distinct(cls, value: list[NeedCode]) -> list[NeedCode]:
        if len(set(value)) != len(value):
            raise ValueError("an area of need may appear only once")
        return value


# Outcomes that conclude nothing yet: the referral or the request may name no need.
PENDING_OUTCOMES = frozenset({"refer_to_specialist", "request_ehc_needs_assessment"})


class AssessmentCompletedPayload(Strict):
    assessor_role: AssessorRole
    assessment_kind: AssessmentKind
    identified_needs: Annotated[list[RankedNeed], AfterValidator(_check_ranked)]
    outcome: AssessmentOutcome
    summary: Text
    # Optional (additive to v1): which areas the assessment looked at, and which concerns
    # (their event ids) it answers; a concern closes only when an assessment answers it.
    areas_assessed: list[NeedCode] | None = None
    addresses_concerns: list[UUID] | None = None
    # For a referral: to whom (a service or role, e.g. "NHS speech and language therapy").
    referred_to: Name | None = None

    @model_validator(mode="after")
    def _needs_match_outcome(self) -> AssessmentCompletedPayload:
        if self.outcome not in (AssessmentOutcome.NO_SEN, *PENDING_OUTCOMES) \
                and not self.identified_needs:
            raise ValueError(f"outcome {self.outcome.value} needs at least one identified need")
        if self.outcome is AssessmentOutcome.NO_SEN and self.identified_needs:
            raise ValueError("outcome no_sen cannot list identified needs")
        return self


class Target(Strict):
    description: Text
    progress: TargetProgress


class Provision(Strict):
    description: Text
    kind: ProvisionKind
    frequency: Name
    started_on: date
    ended_on: date | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Provision:
        if self.ended_on is not None and self.ended_on < self.started_on:
            raise ValueError("provision ended_on is before started_on")
        return self


def _views(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("views that were not recorded are left out, not sent empty")
    return value


Views = Annotated[str | None, AfterValidator(_views)]


class PlanReviewedPayload(Strict):
    plan_kind: PlanKind
    targets: list[Target]
    provision: list[Provision]
    what_worked: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]
    parent_carer_views: Views = None
    pupil_views: Views = None
    decision: ReviewDecision
    next_review_due: date | None = None
    what_did_not_work: Views = None
    # With decision `cease`: the pupil no longer has SEN (to N). Without it, a ceased EHC
    # plan returns the pupil to SEN support (K), as usually happens.
    no_longer_has_sen: bool = False


class SchoolDestination(Strict):
    kind: Literal["school"]
    urn: URN


class Post16Destination(Strict):
    kind: Literal["post16_provider"]
    ukprn: UKPRN


class UnknownDestination(Strict):
    """The pupil left and nobody knows where: the packet goes to the local authority's
    lost-pupils inbox (like the national lost pupil database) until a later move names it."""

    kind: Literal["unknown"]


Destination = Annotated[
    SchoolDestination | Post16Destination | UnknownDestination, Field(discriminator="kind")
]


class SENContact(Strict):
    """Whom the receiving setting may ask at the sending school: a role and a work
    contact (never a personal one)."""

    role: Name
    work_email: Annotated[str, StringConstraints(
        strip_whitespace=True, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    work_telephone: Annotated[str, StringConstraints(
        strip_whitespace=True, max_length=30, pattern=r"^[0-9+() -]{6,30}$")] | None = None

    @model_validator(mode="after")
    def _reachable(self) -> SENContact:
        if self.work_email is None and self.work_telephone is None:
            raise ValueError("an SEN contact needs a work email or a work telephone")
        return self


class PupilMovedPayload(Strict):
    destination: Destination
    move_kind: MoveKind
    effective_date: date
    admissions_reference: Name | None = None
    sen_contact: SENContact | None = None
    # Optional (additive to v1): for a move to a post-16 provider, the lawful basis for
    # sharing and, with consent, who agreed and when (`contracts.post16`). Without it the
    # provider gets a minimal packet (README "Post-16 packets").
    post16_sharing: Post16Sharing | None = None

    @model_validator(mode="after")
    def _sharing_is_for_post16_providers(self) -> PupilMovedPayload:
        if self.post16_sharing is not None and not isinstance(self.destination,
                                                               Post16Destination):
            raise ValueError("post16_sharing is for a move to a post-16 provider; a school "
                             "or an unknown destination gets the packet the rules give it")
        return self


class _InboundEvent(Strict):
    """What every inbound event has, whoever sent it (a school here, a local authority
    in `contracts.la_events`)."""

    event_id: UUID
    schema_version: Literal[1]
    occurred_at: AwareDatetime
    recorded_by: RecordedBy
    pupil: Pupil

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        context = info.context or {}
        if context.get("trusted"):
            return value
        now = context.get("now") or datetime.now(UTC)
        if value > now + CLOCK_SKEW:
            raise ValueError("occurred_at is in the future")
        return value


class _SchoolEvent(_InboundEvent):
    source: Source


class ConcernRaisedV1(_SchoolEvent):
    event_type: Literal["concern_raised"]
    payload: ConcernRaisedPayload


class AssessmentCompletedV1(_SchoolEvent):
    event_type: Literal["assessment_completed"]
    payload: AssessmentCompletedPayload


class PlanReviewedV1(_SchoolEvent):
    event_type: Literal["plan_reviewed"]
    payload: PlanReviewedPayload


class PupilMovedV1(_SchoolEvent):
    event_type: Literal["pupil_moved"]
    payload: PupilMovedPayload

    @model_validator(mode="after")
    def _moves_elsewhere(self) -> PupilMovedV1:
        destination = self.payload.destination
        if isinstance(destination, SchoolDestination) and destination.urn == self.source.urn:
            raise ValueError("a pupil cannot move to the school that is sending the event")
        sharing = self.payload.post16_sharing
        if sharing and sharing.agreed_on and sharing.agreed_on > self.occurred_at.date():
            raise ValueError("post16_sharing.agreed_on is after the move was recorded: "
                             "a decision is recorded once it was given")
        return self


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
"""Why a setting corrects its entry, in its own words. It travels to receivers who had
the entry, so it says why ("recorded in error"), never what the entry said."""

CorrectablePayload = ConcernRaisedPayload | AssessmentCompletedPayload | PlanReviewedPayload
"""What a setting may correct: its concerns, assessments and plan reviews. A move is
admissions' record and an EHC plan the local authority's; neither is corrected here."""

CORRECTABLE_TYPES: dict[type[BaseModel], str] = {
    ConcernRaisedPayload: "concern_raised",
    AssessmentCompletedPayload: "assessment_completed",
    PlanReviewedPayload: "plan_reviewed",
}
"""Each correctable payload with the event type it is the payload of."""


class _CorrectionPayload(Strict):
    corrects_event_id: UUID
    reason: Reason


class EntryRetractedPayload(_CorrectionPayload):
    """The setting withdraws one of its entries (recorded in error, duplicated...)."""


class EntryCorrectedPayload(_CorrectionPayload):
    """The setting stands by the entry in a corrected form: `replacement` is the whole
    corrected payload, of the same kind as the entry's (the history checks that)."""

    replacement: CorrectablePayload


class EntryMisfiledPayload(_CorrectionPayload):
    """The entry was recorded under the wrong pupil: it belongs to `correct_pupil`."""

    correct_pupil: Pupil


class _CorrectionEvent(_SchoolEvent):
    """A setting correcting one of its own entries (additive to v1). The entry stays in
    the history, marked; what reads the record (packets, the report) leaves it out or
    shows the corrected form (UK GDPR Article 16, the right to rectification)."""

    payload: _CorrectionPayload

    @model_validator(mode="after")
    def _not_itself(self) -> _CorrectionEvent:
        if self.payload.corrects_event_id == self.event_id:
            raise ValueError("a correction cannot correct itself: corrects_event_id is its "
                             "own event_id")
        return self


class EntryRetractedV1(_CorrectionEvent):
    event_type: Literal["entry_retracted"]
    payload: EntryRetractedPayload


class EntryCorrectedV1(_CorrectionEvent):
    event_type: Literal["entry_corrected"]
    payload: EntryCorrectedPayload


class EntryMisfiledV1(_CorrectionEvent):
    event_type: Literal["entry_misfiled"]
    payload: EntryMisfiledPayload

    @model_validator(mode="after")
    def _another_pupil(self) -> EntryMisfiledV1:
        if self.payload.correct_pupil.upn == self.pupil.upn:
            raise ValueError("correct_pupil is the pupil the entry is filed under: a misfiled "
                             "entry moves to another pupil")
        return self


CorrectionV1 = EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1
CORRECTION_TYPES = frozenset({"entry_retracted", "entry_corrected", "entry_misfiled"})

SchoolEventV1 = Annotated[
    ConcernRaisedV1 | AssessmentCompletedV1 | PlanReviewedV1 | PupilMovedV1
    | EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1,
    Discriminator("event_type"),
]
SCHOOL_EVENT = TypeAdapter[
    ConcernRaisedV1 | AssessmentCompletedV1 | PlanReviewedV1 | PupilMovedV1
    | EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1
](SchoolEventV1)
