"""A pupil's SEN record at a point in their history: the one read model the packet
builder, the auditor's replay, the report and the tools share, so each shows the same
facts.

Pure. Its input is `HistoryEntry`: one event of a pupil's history with its place in the
stream and in the hash chain. Records makes entries from its stored events
(`services.records.handlers.to_history_entry`), transfers from the history topic
(`HistoryEntry.from_contract`); nothing else converts. What the school said stays in
the validated school-event types of `contracts.school_events` (the DfE codes and the
hub's inbound vocabulary), which is the one deliberate use of contract types here.
Knows the rules: SEN status and its census code over time, current needs, concerns
never followed up, plans as reviewed, and what a setting corrected (`as_corrected`:
the record leaves out withdrawn entries and shows corrected ones as corrected).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from contracts.history import PupilHistoryEventV1, RefiledFromV1
from contracts.inbound import InboundEvent, is_la_event
from contracts.la_events import (
    EHCAnnualReviewV1,
    EHCAssessmentDecisionV1,
    EHCPlanAmendedV1,
    EHCPlanCeasedV1,
    EHCPlanDecisionV1,
    EHCPlanIssuedV1,
    EHCPlanTransferredV1,
    EHCRequestReceivedV1,
    TimeLimitException,
)
from contracts.packet import SENStatus
from contracts.school_events import (
    PENDING_OUTCOMES,
    AssessmentCompletedV1,
    AssessmentKind,
    AssessmentOutcome,
    ConcernRaisedV1,
    EntryCorrectedV1,
    EntryMisfiledV1,
    EntryRetractedV1,
    PlanKind,
    PlanReviewedV1,
    Provision,
    RankedNeed,
    ReviewDecision,
    SENContact,
)


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a pupil's SEN history as every reader sees it: what the setting said
    (typed), the pupil's history version, when the hub recorded it, and its hash-chain
    link. Not a wire message: it has no notification id or topic position."""

    upn: str
    version: int
    recorded_at: datetime
    upn_is_temporary: bool
    event: InboundEvent
    event_hash: str | None = None
    previous_hash: str | None = None
    refiled_from: RefiledFromV1 | None = None
    """Set on an entry a setting had filed under another pupil and moved here."""

    @classmethod
    def from_contract(cls, message: PupilHistoryEventV1) -> HistoryEntry:
        """The one place a history-topic message becomes a read-model entry."""
        return cls(upn=message.upn, version=message.version, recorded_at=message.recorded_at,
                   upn_is_temporary=message.upn_is_temporary, event=message.event,
                   event_hash=message.event_hash, previous_hash=message.previous_hash,
                   refiled_from=message.refiled_from)


CENSUS_CODE: dict[SENStatus, Literal["N", "K", "E"]] = {
    "none": "N", "sen_support": "K", "ehc_plan": "E"}


@dataclass
class EHCPlan:
    """The EHC plan the local authority maintains, as its events left it (Children and
    Families Act 2014 s.37: the LA secures the plan and maintains it)."""

    event_id: UUID
    issued_on: date
    maintaining_la: str
    case_officer: SENContact | None
    needs: list[RankedNeed]
    provision: list[Provision]
    outcomes: list[str]
    named_setting_urn: str | None
    reported_by_school: bool = False
    """A plan a school reported before its LA joined the hub, which the LA has since
    acted on (reviewed, amended...): `issued_on` is the school's reported date."""
    last_reviewed_on: date | None = None
    last_amended_on: date | None = None
    transferred_from_la: str | None = None
    transferred_on: date | None = None

    @property
    def reviewed_or_issued_on(self) -> date:
        """Where the next annual review's 12 months run from (s.44(1))."""
        return max(d for d in (self.issued_on, self.last_reviewed_on) if d is not None)


@dataclass
class EHCRequestCase:
    """One request for an EHC needs assessment as the LA handles it: received, the
    decision to assess, the decision to issue, the plan (SEND Regulations 2014, reg.
    3-13). `la_code` None is a school's request the LA has not (yet) recorded."""

    event_id: UUID
    requested_on: date
    setting_urn: str
    la_code: str | None = None
    requested_by: str | None = None
    assessment_decision: Literal["assess", "not_assess"] | None = None
    assessment_decided_on: date | None = None
    plan_decision: Literal["issue", "not_issue"] | None = None
    plan_decided_on: date | None = None
    plan_issued_on: date | None = None
    exceptions: dict[str, TimeLimitException] = field(default_factory=dict)
    """Which limit (`assessment_decision`, `plan_decision`, `plan_issued`) a published
    exception applies to."""

    @property
    def declined(self) -> bool:
        return self.assessment_decision == "not_assess" or self.plan_decision == "not_issue"

    @property
    def concluded(self) -> bool:
        return self.declined or self.plan_issued_on is not None


@dataclass
class SENRecord:
    """A pupil's SEN record as it stood after some prefix of their history.

    Once a local authority has sent any event about the pupil (`la_speaks`), the EHC
    plan (E) follows the LA's events only: a school's `ehc_plan_issued` outcome or its
    EHC plan review is what the school reported, not the plan. Before that (an LA not
    yet connected to the hub), the school's report is all there is, and is used."""

    status: SENStatus = "none"
    needs: list[RankedNeed] = field(default_factory=list)
    concerns: list[ConcernRaisedV1] = field(default_factory=list)
    assessments: list[AssessmentCompletedV1] = field(default_factory=list)
    reviews: list[PlanReviewedV1] = field(default_factory=list)
    version: int = 0
    episodes: list[tuple[date, SENStatus]] = field(default_factory=list)
    """Each change of status, from the day of the event that changed it."""
    la_speaks: bool = False
    ehc_plan: EHCPlan | None = None
    ehc_requests: list[EHCRequestCase] = field(default_factory=list)
    annual_reviews: list[EHCAnnualReviewV1] = field(default_factory=list)
    plan_amendments: list[EHCPlanAmendedV1] = field(default_factory=list)
    ceased_plans: list[tuple[EHCPlan, EHCPlanCeasedV1]] = field(default_factory=list)

    @property
    def has_sen_history(self) -> bool:
        """Anything recorded about the pupil's SEN, by a school or by a local authority
        (an EHC plan with no school event is still a history)."""
        return bool(self.concerns or self.assessments or self.reviews or self.ehc_requests
                    or self.ehc_plan or self.annual_reviews or self.plan_amendments
                    or self.ceased_plans)

    def open_concerns(self) -> list[ConcernRaisedV1]:
        """Concerns no concluded assessment has answered (`answers`): a suspected need
        is passed on until someone has followed it through (SEND Code of Practice
        6.45-6.56, the graduated approach: assess, plan, do, review)."""
        return [c for c in self.concerns if not any(answers(a, c) for a in self.assessments)]

    def referrals_pending(self) -> list[AssessmentCompletedV1]:
        """Referrals to a specialist not yet concluded: no later specialist assessment
        with a concluding outcome, and none that names the referral."""
        return [r for r in self.assessments
                if r.payload.outcome is AssessmentOutcome.REFER_TO_SPECIALIST
                and not any(_concludes(a, r, AssessmentKind.SPECIALIST)
                            for a in self.assessments)]

    def ehc_request_open(self) -> EHCRequestCase | None:
        """The latest request for an EHC needs assessment not yet concluded (SEND
        Regulations 2014, regulations 3 to 13). With an LA speaking, its cases decide:
        open until it declines or issues a plan; a school's request made after the LA's
        last case is open too (the LA has not recorded it). Without, a school's request
        is open until an EHC needs assessment concludes it."""
        requests = [r for r in self.assessments
                    if r.payload.outcome is AssessmentOutcome.REQUEST_EHC_NEEDS_ASSESSMENT]
        if self.la_speaks:
            last_case = max((c.requested_on for c in self.ehc_requests), default=None)
            open_cases = [c for c in self.ehc_requests if not c.concluded]
            unrecorded = [r for r in requests
                          if last_case is None or r.occurred_at.date() > last_case]
            if unrecorded:
                r = unrecorded[-1]
                return EHCRequestCase(r.event_id, r.occurred_at.date(), r.source.urn)
            return open_cases[-1] if open_cases else None
        open_requests = [r for r in requests if not any(
            _concludes(a, r, AssessmentKind.EHC_NEEDS_ASSESSMENT) for a in self.assessments)]
        if not open_requests:
            return None
        r = open_requests[-1]
        return EHCRequestCase(r.event_id, r.occurred_at.date(), r.source.urn)

    def apply(self, history_event: HistoryEntry) -> None:
        event = history_event.event
        self.version = max(self.version, history_event.version)
        before = self.status
        self._apply(event)
        if self.status != before:
            self.episodes.append((event.occurred_at.date(), self.status))

    def _apply(self, event: InboundEvent) -> None:
        if is_la_event(event):
            self.la_speaks = True
            self._la_event(event)
        elif isinstance(event, ConcernRaisedV1):
            self.concerns.append(event)
        elif isinstance(event, AssessmentCompletedV1):
            self.assessments.append(event)
            self._assessed(event)
        elif isinstance(event, PlanReviewedV1):
            self.reviews.append(event)
            self._reviewed(event)

    def _la_event(self, event: InboundEvent) -> None:
        """The LA's EHC events: the plan exists, changes, moves and ends only here."""
        la = getattr(event.source, "la", "")
        if isinstance(event, EHCRequestReceivedV1):
            p = event.payload
            self.ehc_requests.append(EHCRequestCase(
                event.event_id, p.received_on, f"la-{la}", la_code=la,
                requested_by=p.requested_by.value))
        elif isinstance(event, EHCAssessmentDecisionV1 | EHCPlanDecisionV1):
            case = self._open_case(la)
            if case is None:
                return
            if isinstance(event, EHCAssessmentDecisionV1):
                case.assessment_decision = event.payload.decision
                case.assessment_decided_on = event.payload.decided_on
                key = "assessment_decision"
            else:
                case.plan_decision = event.payload.decision
                case.plan_decided_on = event.payload.decided_on
                key = "plan_decision"
            if event.payload.exception is not None:
                case.exceptions[key] = event.payload.exception
        elif isinstance(event, EHCPlanIssuedV1):
            plan = event.payload
            case = self._open_case(la)
            if case is not None:
                case.plan_issued_on = plan.issued_on
                if plan.exception is not None:
                    case.exceptions["plan_issued"] = plan.exception
            self.ehc_plan = EHCPlan(
                event.event_id, plan.issued_on, plan.maintaining_la, plan.case_officer,
                list(plan.needs), list(plan.provision), list(plan.outcomes), plan.named_setting_urn)
            self.needs = sorted(plan.needs, key=lambda n: n.rank)
            self._set_status("ehc_plan")
        elif isinstance(event, EHCAnnualReviewV1):
            if (reviewed := self._plan_of(event, la)) is not None:
                self.annual_reviews.append(event)
                reviewed.last_reviewed_on = event.payload.held_on
        elif isinstance(event, EHCPlanAmendedV1):
            if (current := self._plan_of(event, la)) is not None:
                self.plan_amendments.append(event)
                current.last_amended_on = event.payload.amended_on
                if event.payload.needs:
                    current.needs = list(event.payload.needs)
                    self.needs = sorted(event.payload.needs, key=lambda n: n.rank)
                if event.payload.provision is not None:
                    current.provision = list(event.payload.provision)
                if event.payload.named_setting_urn:
                    current.named_setting_urn = event.payload.named_setting_urn
        elif isinstance(event, EHCPlanCeasedV1):
            if (ended := self._plan_of(event, la)) is not None:
                self.ceased_plans.append((ended, event))
                self.ehc_plan = None
                self._set_status("none" if event.payload.no_longer_has_sen else "sen_support")
        elif isinstance(event, EHCPlanTransferredV1):
            if (moving := self._plan_of(event, la)) is not None:
                moving.transferred_from_la = moving.maintaining_la
                moving.maintaining_la = event.payload.to_la
                moving.transferred_on = event.payload.transferred_on

    def _open_case(self, la: str) -> EHCRequestCase | None:
        """An LA's decisions belong to its own latest case not yet concluded."""
        open_ = [c for c in self.ehc_requests if c.la_code == la and not c.concluded]
        return open_[-1] if open_ else None

    def _plan_of(self, event: InboundEvent, la: str) -> EHCPlan | None:
        """The plan an LA's review, amendment, transfer or cease acts on: the plan it
        maintains. A plan only a school reported (from before the LA joined the hub)
        becomes the LA's when the LA first acts on it; another LA's plan is not its own
        to change, and is left as it is."""
        if self.ehc_plan is None and self.status == "ehc_plan":
            reported = next((d for d, status in reversed(self.episodes)
                             if status == "ehc_plan"), event.occurred_at.date())
            self.ehc_plan = EHCPlan(event.event_id, reported, la, None, list(self.needs), [],
                                    [], None, reported_by_school=True)
        if self.ehc_plan is None or self.ehc_plan.maintaining_la != la:
            return None
        return self.ehc_plan

    def _assessed(self, event: AssessmentCompletedV1) -> None:
        """The N/K/E rules (README "One N/K/E rule set"; census: a pupil with N has no
        type of need): a referral alone changes nothing; a request for an EHC needs
        assessment means SEN support at least; `no_sen` for named areas removes those
        needs, for no named areas ends SEN support (never an EHC plan: only its review
        can)."""
        payload = event.payload
        outcome = payload.outcome
        if outcome is AssessmentOutcome.REFER_TO_SPECIALIST:
            return
        if outcome is AssessmentOutcome.NO_SEN:
            if self.status == "ehc_plan":
                return
            if payload.areas_assessed:
                self.needs = _reranked([n for n in self.needs
                                        if n.code not in set(payload.areas_assessed)])
                if self.needs:
                    return
            self._set_status("none")
            return
        if payload.identified_needs and self.ehc_plan is None:
            self.needs = sorted(payload.identified_needs, key=lambda n: n.rank)
        if outcome is AssessmentOutcome.EHC_PLAN_ISSUED and not self.la_speaks:
            self._set_status("ehc_plan")  # the school's report, while no LA has spoken
        elif self.status == "none":
            self._set_status("sen_support")

    def _reviewed(self, event: PlanReviewedV1) -> None:
        payload = event.payload
        if payload.plan_kind is PlanKind.EHC_PLAN and self.la_speaks:
            if self.status == "none":
                self._set_status("sen_support")
            return  # the school's review meeting; the LA decides what becomes of the plan
        if payload.decision is ReviewDecision.CEASE:
            if payload.plan_kind is PlanKind.EHC_PLAN and not payload.no_longer_has_sen:
                self._set_status("sen_support")  # the plan ends; SEN support usually goes on
            elif payload.plan_kind is PlanKind.EHC_PLAN or self.status == "sen_support":
                self._set_status("none")
        elif payload.plan_kind is PlanKind.EHC_PLAN:
            self._set_status("ehc_plan")
        elif self.status == "none":
            self._set_status("sen_support")

    def _set_status(self, status: SENStatus) -> None:
        self.status = status
        if status == "none":
            self.needs = []  # census: no type of need is recorded with N


def answers(assessment: AssessmentCompletedV1, concern: ConcernRaisedV1) -> bool:
    """Whether a concluded assessment answers a concern: it names the concern
    (`addresses_concerns`), or, coming after it, the areas it assessed (`areas_assessed`,
    and the needs it identified) cover all the concern's areas. A referral or an EHC
    request concludes nothing; an assessment that says neither answers nothing."""
    payload = assessment.payload
    if payload.outcome.value in PENDING_OUTCOMES:
        return False
    if concern.event_id in (payload.addresses_concerns or ()):
        return True
    covered = set(payload.areas_assessed or ()) | {n.code for n in payload.identified_needs}
    return assessment.occurred_at >= concern.occurred_at and set(
        concern.payload.areas_of_need) <= covered


def _concludes(later: AssessmentCompletedV1, pending: AssessmentCompletedV1,
               kind: AssessmentKind) -> bool:
    """Whether `later` concludes a referral or request: it names it, or it is the kind
    of assessment asked for, after it, with an outcome that concludes."""
    if later.payload.outcome.value in PENDING_OUTCOMES:
        return False
    if pending.event_id in (later.payload.addresses_concerns or ()):
        return True
    return later.payload.assessment_kind is kind and later.occurred_at >= pending.occurred_at


def _reranked(needs: list[RankedNeed]) -> list[RankedNeed]:
    return [RankedNeed(code=n.code, rank=i) for i, n in enumerate(
        sorted(needs, key=lambda n: n.rank), start=1)]


CORRECTION_EVENTS = (EntryRetractedV1, EntryCorrectedV1, EntryMisfiledV1)
CorrectionKind = Literal["entry_retracted", "entry_corrected", "entry_misfiled"]


def is_correction(event: InboundEvent) -> bool:
    return isinstance(event, CORRECTION_EVENTS)


@dataclass(frozen=True)
class CorrectionMark:
    """How the recording setting has since corrected an entry: the auditor's mark on it,
    and what an amendment says of it (never what the entry said)."""

    kind: CorrectionKind
    version: int
    """The history version of the correction."""
    on: date
    reason: str


def corrections_of(history: Sequence[HistoryEntry]) -> dict[UUID, CorrectionMark]:
    """Each corrected entry's event id with its latest correction (by history version)."""
    marks: dict[UUID, CorrectionMark] = {}
    for h in sorted(history, key=lambda h: h.version):
        e = h.event
        if isinstance(e, EntryRetractedV1 | EntryCorrectedV1 | EntryMisfiledV1):
            marks[e.payload.corrects_event_id] = CorrectionMark(
                e.event_type, h.version, e.occurred_at.date(), e.payload.reason)
    return marks


def as_corrected(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """The entries as their settings now stand by them: a retracted entry and one
    misfiled under this pupil are left out, a corrected one has its latest corrected
    payload, and the corrections themselves are left out (UK GDPR Article 16, the
    right to rectification). Every reader of the record (packets in each form, the
    report, oversight) reads this; the stored history keeps everything, and the
    auditor's replay shows it marked (`corrections_of`)."""
    withdrawn: set[UUID] = set()
    replaced: dict[UUID, EntryCorrectedV1] = {}
    for h in sorted(history, key=lambda h: h.version):
        e = h.event
        if isinstance(e, EntryRetractedV1 | EntryMisfiledV1):
            withdrawn.add(e.payload.corrects_event_id)
        elif isinstance(e, EntryCorrectedV1):
            replaced[e.payload.corrects_event_id] = e
    shown = []
    for h in history:
        if is_correction(h.event) or h.event.event_id in withdrawn:
            continue
        correction = replaced.get(h.event.event_id)
        if correction is not None and isinstance(
                h.event, ConcernRaisedV1 | AssessmentCompletedV1 | PlanReviewedV1) and type(
                correction.payload.replacement) is type(h.event.payload):
            h = replace(h, event=h.event.model_copy(
                update={"payload": correction.payload.replacement}))
        shown.append(h)
    return shown


def record_at(history: Sequence[HistoryEntry], version: int | None = None) -> SENRecord:
    """The SEN record from the events up to and including `version` (all when None),
    as corrected by then (`as_corrected`).

    Events apply in the order they happened, so a late entry about an earlier date
    takes its place in the story rather than overriding what came after it.
    """
    chosen = as_corrected([h for h in history if version is None or h.version <= version])
    record = SENRecord()
    for history_event in sorted(chosen, key=lambda h: (h.event.occurred_at, h.version)):
        record.apply(history_event)
    return record


def provision_episodes(record: SENRecord) -> list[tuple[date, Literal["N", "K", "E"]]]:
    """The census provision code over time (N, K, E), one entry per change."""
    return [(start, CENSUS_CODE[status]) for start, status in record.episodes]
