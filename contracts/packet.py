"""Transfer packet v1: what a receiving setting gets when a pupil moves to it.

Contract layer. Published to the receiver's own topic (`sen.inbox.urn-<URN>` or
`sen.inbox.ukprn-<UKPRN>`), keyed by `packet_id`. A pupil with no SEN history still gets
a packet that says so, so a receiver never has to guess whether nothing was sent or
nothing exists. New fields are only ever added as optional.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from contracts.post16 import AgreedBy, Agreement, LawfulBasis
from contracts.school_events import (
    AssessmentKind,
    AssessmentOutcome,
    AssessorRole,
    MoveKind,
    NeedCode,
    PlanKind,
    Provision,
    ProvisionKind,
    RaisedBy,
    RankedNeed,
    ReviewDecision,
    Target,
)

SENStatus = Literal["none", "sen_support", "ehc_plan"]
PacketPolicy = Literal["full", "post16"]
LANotice = Literal["ehc_plan_transfer_in", "ehc_plan_transfer_out", "children_missing_education"]
"""What a packet to a local authority is: the plan of a pupil who moved into its area
(`ehc_plan_transfer_in`, to `la-<new>`), the same notice to the LA that maintained the
plan (`ehc_plan_transfer_out`, to `la-<old>`), or a pupil who left a school in its area
for an unknown destination (`children_missing_education`, to `lost-pupils.la-<code>`)."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PacketPupil(Frozen):
    upn: str
    upn_is_temporary: bool
    given_name: str
    family_name: str
    date_of_birth: date
    uln: str | None = None
    gender: Literal["M", "F"] | None = None


class LearnerIdentifier(Frozen):
    """How a post-16 packet names the learner first: the ULN (Unique Learner Number,
    issued by the Learning Records Service, the number colleges record learners by)
    where the sending school knows it, else the UPN (an identifier for the school
    years only)."""

    scheme: Literal["ULN", "UPN"]
    value: str


class Setting(Frozen):
    """A school (by URN), a post-16 provider (by UKPRN), or unknown (a lost pupil).

    The names and DfE numbers come from the hub's settings registry; `in_registry` is
    False when the registry does not know the setting (the packet is still delivered).
    """

    kind: Literal["school", "post16_provider", "unknown"]
    urn: str | None = None
    ukprn: str | None = None
    name: str | None = None
    la_code: str | None = None
    establishment_number: str | None = None
    in_registry: bool | None = None

    @property
    def receiver(self) -> str:
        """The receiver's name in topic names: `urn-100001`, `ukprn-10012345`, `lost-pupils`."""
        if self.kind == "school":
            return f"urn-{self.urn}"
        if self.kind == "post16_provider":
            return f"ukprn-{self.ukprn}"
        return "lost-pupils"


class Move(Frozen):
    kind: MoveKind
    effective_date: date
    admissions_reference: str | None = None
    event_id: UUID


class OpenConcern(Frozen):
    event_id: UUID
    raised_on: date
    setting_urn: str
    raised_by: RaisedBy
    areas_of_need: list[NeedCode]
    summary: str


class Assessment(Frozen):
    event_id: UUID
    completed_on: date
    setting_urn: str
    assessor_role: AssessorRole
    assessment_kind: AssessmentKind
    identified_needs: list[RankedNeed]
    outcome: AssessmentOutcome
    summary: str


class PlanReview(Frozen):
    """One review: its decision, what worked and the views, where they were recorded."""

    event_id: UUID
    reviewed_on: date
    setting_urn: str
    plan_kind: PlanKind
    decision: ReviewDecision
    what_worked: str
    parent_carer_views: str | None
    pupil_views: str | None
    next_review_due: date | None
    # Added after the first release (optional): every review keeps what it set out.
    targets: list[Target] = []
    provision: list[Provision] = []
    what_did_not_work: str | None = None


class CurrentPlan(Frozen):
    """The latest plan as last reviewed: its targets and provision."""

    plan_kind: PlanKind
    reviewed_on: date
    setting_urn: str
    targets: list[Target]
    provision: list[Provision]
    next_review_due: date | None


class Plans(Frozen):
    current: CurrentPlan | None
    reviews: list[PlanReview]


class PendingReferral(Frozen):
    """A referral to a specialist made and not yet concluded at the move."""

    event_id: UUID
    """The assessment that made the referral."""
    referred_on: date
    setting_urn: str
    referred_to: str | None
    areas: list[NeedCode]
    summary: str


class EHCRequest(Frozen):
    """A request for an EHC needs assessment not yet concluded at the move."""

    event_id: UUID
    requested_on: date
    setting_urn: str
    # Added with the LA's events (optional): where the LA's case stands.
    la_code: str | None = None
    """The LA that received the request; None: a school's request the LA has not
    recorded through the hub."""
    assessment_decision: Literal["assess", "not_assess"] | None = None
    assessment_decided_on: date | None = None
    plan_decision: Literal["issue", "not_issue"] | None = None


class Intervention(Frozen):
    """One provision tried at one setting: what, when, for how long, with what result.
    Provision still running at the move is the previous setting's, up to the move date
    (`open_at_move`): the receiving setting decides what it will provide."""

    description: str
    kind: ProvisionKind
    frequency: str
    setting_urn: str
    started_on: date
    ended_on: date
    open_at_move: bool
    last_reviewed_on: date
    what_worked: str
    what_did_not_work: str | None = None


class SendingContact(Frozen):
    role: str
    work_email: str | None = None
    work_telephone: str | None = None


class CaseOfficer(Frozen):
    """The LA's EHC case officer: a role and a work contact, never a personal one."""

    role: str
    work_email: str | None = None
    work_telephone: str | None = None


class EHCPlanDetails(Frozen):
    """The pupil's EHC plan at the move: from the local authority's own events
    (`confirmed_by_la`), or, when no LA has spoken through the hub, what the school
    reported (then most of the LA's details are unknown and left out)."""

    confirmed_by_la: bool
    """True: the maintaining LA's events say so. False: only a school reported an EHC
    plan (its assessment outcome or its EHC plan review); the LA has not confirmed it."""
    maintaining_la: str | None = None
    """The three-digit code of the LA that maintains the plan."""
    maintaining_la_name: str | None = None
    """As the settings registry names that LA, when it knows it."""
    issued_on: date | None = None
    case_officer: CaseOfficer | None = None
    needs: list[RankedNeed] = []
    """Section B, ranked."""
    provision: list[Provision] = []
    """Section F."""
    outcomes: list[str] = []
    """Section E."""
    named_setting_urn: str | None = None
    """Section I: the school the plan names."""
    last_reviewed_on: date | None = None
    last_amended_on: date | None = None
    next_annual_review_due: date | None = None
    """12 months after the later of issue and last review (Children and Families Act
    2014 s.44(1)); None when neither date is known."""
    transferred_from_la: str | None = None
    """The LA that maintained the plan before it was transferred (SEND Regulations 2014,
    reg. 15), when the LA recorded a transfer."""


class ClockDue(Frozen):
    """A statutory clock that runs for the LA taking over a plan: what, by when, and why."""

    rule: str
    """A stable name, e.g. `ehc_transfer_tell_parent_6_weeks`."""
    title: str
    source: str
    due_on: date
    started_on: date | None = None
    la_code: str | None = None
    """The LA the clock runs for."""


class TimelineEntry(Frozen):
    occurred_at: datetime
    event_type: str
    setting_urn: str
    recorded_by_role: str
    description: str
    history_version: int
    recorded_after_leaving: bool = False
    """Recorded by a setting about a date after the pupil had left it: kept, and marked."""


class ProvisionEpisode(Frozen):
    """From `start_date`, the census SEN provision: N (no SEN), K (SEN support), E (EHC plan)."""

    start_date: date
    provision: Literal["N", "K", "E"]


class Post16Basis(Frozen):
    """What the sending school recorded about sharing with the post-16 provider (its
    `post16_sharing`), or that it recorded nothing, and the form of packet that follows
    (README "Post-16 packets")."""

    recorded: bool
    """False: the move carried no `post16_sharing` block."""
    lawful_basis: LawfulBasis | None = None
    agreement: Agreement | None = None
    agreed_by: AgreedBy | None = None
    agreed_on: date | None = None
    young_person_lacks_capacity: bool = False
    packet_form: Literal["full", "minimal"]
    reason: str
    """Why this form, in a sentence that names the rule."""
    concerns_itemised_months: int | None = None
    """In a full post-16 packet, concerns raised this many months or less before the
    move are itemised and older ones summarised (`concerns_summary`): a local policy
    (SENDHUB_POST16_CONCERNS_ITEMISED_MONTHS), stated so a rebuild uses the same rule."""


class ConcernSummary(Frozen):
    """Concerns about one area of need raised before a full post-16 packet's cut-off:
    counted, not itemised. Open ones are still itemised in `concerns_open`."""

    area_of_need: NeedCode
    concerns: int
    first_raised_on: date
    last_raised_on: date
    still_open: int = 0


class TransferPacketV1(Frozen):
    packet_id: UUID
    schema_version: Literal[1] = 1
    generated_at: datetime
    # Added with post-16 sharing (optional): a post-16 packet names the learner by ULN
    # first where known; None on a school's packet.
    learner_identifier: LearnerIdentifier | None = None
    pupil: PacketPupil
    from_setting: Setting
    to_setting: Setting
    move: Move
    sen_status: SENStatus
    has_sen_history: bool
    sen_history_statement: str
    current_needs: list[RankedNeed]
    concerns_open: list[OpenConcern]
    assessments: list[Assessment]
    plans: Plans
    timeline: list[TimelineEntry]
    history_version: int
    # Added after the first release; all optional, so v1 readers are unaffected.
    sen_provision_history: list[ProvisionEpisode] = []
    policy: PacketPolicy = "full"
    history_summary: list[str] = []
    """Where the policy summarises older history instead of itemising it."""
    supersedes: UUID | None = None
    """An amendment or a re-routed packet names the packet it replaces."""
    changes: list[str] = []
    rerouted_from_lost_pupils: bool = False
    history_chain_head: str | None = None
    """SHA-256 of the newest history event the packet was built from (see `sendhub verify`)."""
    builder_version: int | None = None
    """The rules' version that built it: a rebuild by other rules may word things differently."""
    referrals_pending: list[PendingReferral] = []
    ehc_request_open: EHCRequest | None = None
    review_overdue_since: date | None = None
    """The latest plan's next review was due before the move and was not held."""
    interventions: list[Intervention] = []
    """Every provision tried, across all settings, oldest first."""
    exam_access_arrangements: list[Intervention] = []
    sending_contact: SendingContact | None = None
    setting_names: dict[str, str] = {}
    """Every school in the history by URN, named as the settings registry names it."""
    condensed: str | None = None
    """Set when long texts were shortened so the packet fits one Kafka message: says how
    many and where the full texts are (README "Packets too large for one message")."""
    # Added with the local authority as an actor (issue 13); all optional.
    ehc_plan: EHCPlanDetails | None = None
    """The EHC plan at the move, when the pupil has one (status `ehc_plan`)."""
    la_notice: LANotice | None = None
    """Set on a packet for a local authority: which notice it is."""
    clocks_now_running: list[ClockDue] = []
    """On an EHC plan transfer notice: the clocks that now run for the new LA."""
    addressed_to: str | None = None
    """Whom the packet is for when that is not `to_setting`: a local authority's own
    inbox (`la-803`) for an EHC plan transfer notice. None: the receiving setting (or,
    for a lost pupil, the lost-pupils inbox of the leaving school's LA)."""
    # Added with post-16 sharing by consent or basis (issue 14); all optional.
    post16_basis: Post16Basis | None = None
    """On a post-16 packet: the lawful basis and agreement recorded (or that none was)."""
    minimal_packet: str | None = None
    """Set on a minimal post-16 packet: that it is one, why, and whom to ask. It holds
    only that an SEN history exists, the SEN status and the sending school's contact."""
    concerns_summary: list[ConcernSummary] = []
    """In a full post-16 packet: concerns older than the stated cut-off, per area of need."""

    @property
    def receiver(self) -> str:
        """The receiver as stored and as receipts name it: `urn-...`, `ukprn-...`,
        `lost-pupils` or, for an LA's notice, `la-<code>`."""
        return self.addressed_to or self.to_setting.receiver
