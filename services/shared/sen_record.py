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
never followed up, plans as reviewed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from contracts.history import PupilHistoryEventV1
from contracts.packet import SENStatus
from contracts.school_events import (
    PENDING_OUTCOMES,
    AssessmentCompletedV1,
    AssessmentKind,
    AssessmentOutcome,
    ConcernRaisedV1,
    PlanKind,
    PlanReviewedV1,
    Post16Destination,
    RankedNeed,
    ReviewDecision,
    SchoolDestination,
    SchoolEventV1,
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
    event: SchoolEventV1
    event_hash: str | None = None
    previous_hash: str | None = None

    @classmethod
    def from_contract(cls, message: PupilHistoryEventV1) -> HistoryEntry:
        """The one place a history-topic message becomes a read-model entry."""
        return cls(upn=message.upn, version=message.version, recorded_at=message.recorded_at,
                   upn_is_temporary=message.upn_is_temporary, event=message.event,
                   event_hash=message.event_hash, previous_hash=message.previous_hash)


CENSUS_CODE: dict[SENStatus, Literal["N", "K", "E"]] = {
    "none": "N", "sen_support": "K", "ehc_plan": "E"}


@dataclass
class SENRecord:
    """A pupil's SEN record as it stood after some prefix of their history."""

    status: SENStatus = "none"
    needs: list[RankedNeed] = field(default_factory=list)
    concerns: list[ConcernRaisedV1] = field(default_factory=list)
    assessments: list[AssessmentCompletedV1] = field(default_factory=list)
    reviews: list[PlanReviewedV1] = field(default_factory=list)
    version: int = 0
    episodes: list[tuple[date, SENStatus]] = field(default_factory=list)
    """Each change of status, from the day of the event that changed it."""

    @property
    def has_sen_history(self) -> bool:
        return bool(self.concerns or self.assessments or self.reviews)

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

    def ehc_request_open(self) -> AssessmentCompletedV1 | None:
        """The latest request for an EHC needs assessment not yet concluded by an EHC
        needs assessment (SEND Regulations 2014, regulations 3 to 13)."""
        requests = [r for r in self.assessments
                    if r.payload.outcome is AssessmentOutcome.REQUEST_EHC_NEEDS_ASSESSMENT]
        open_ = [r for r in requests if not any(
            _concludes(a, r, AssessmentKind.EHC_NEEDS_ASSESSMENT) for a in self.assessments)]
        return open_[-1] if open_ else None

    def apply(self, history_event: HistoryEntry) -> None:
        event = history_event.event
        self.version = max(self.version, history_event.version)
        before = self.status
        self._apply(event)
        if self.status != before:
            self.episodes.append((event.occurred_at.date(), self.status))

    def _apply(self, event: object) -> None:
        if isinstance(event, ConcernRaisedV1):
            self.concerns.append(event)
        elif isinstance(event, AssessmentCompletedV1):
            self.assessments.append(event)
            self._assessed(event)
        elif isinstance(event, PlanReviewedV1):
            self.reviews.append(event)
            self._reviewed(event)

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
        if payload.identified_needs:
            self.needs = sorted(payload.identified_needs, key=lambda n: n.rank)
        if outcome is AssessmentOutcome.EHC_PLAN_ISSUED:
            self._set_status("ehc_plan")
        elif self.status == "none":
            self._set_status("sen_support")

    def _reviewed(self, event: PlanReviewedV1) -> None:
        payload = event.payload
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


def record_at(history: Sequence[HistoryEntry], version: int | None = None) -> SENRecord:
    """The SEN record from the events up to and including `version` (all when None).

    Events apply in the order they happened, so a late entry about an earlier date
    takes its place in the story rather than overriding what came after it.
    """
    record = SENRecord()
    chosen = [h for h in history if version is None or h.version <= version]
    for history_event in sorted(chosen, key=lambda h: (h.event.occurred_at, h.version)):
        record.apply(history_event)
    return record


def provision_episodes(record: SENRecord) -> list[tuple[date, Literal["N", "K", "E"]]]:
    """The census provision code over time (N, K, E), one entry per change."""
    return [(start, CENSUS_CODE[status]) for start, status in record.episodes]


_ACRONYMS = {"ehc": "EHC", "sen": "SEN", "senco": "SENCO", "camhs": "CAMHS", "post16": "post-16"}


def words(code: str, capital: bool = False) -> str:
    """A code as words: `ehc_plan_issued` -> `EHC plan issued`."""
    text = " ".join(_ACRONYMS.get(w, w) for w in code.split("_"))
    return text[0].upper() + text[1:] if capital and text else text


def describe_event(event: HistoryEntry) -> str:
    e = event.event
    if isinstance(e, ConcernRaisedV1):
        areas = ", ".join(e.payload.areas_of_need)
        return f"Concern raised by {words(e.payload.raised_by.value)} ({areas})"
    if isinstance(e, AssessmentCompletedV1):
        needs = ", ".join(f"{n.code}" for n in e.payload.identified_needs) or "no needs identified"
        kind = {"screening": "Screening assessment", "specialist": "Specialist assessment",
                "ehc_needs_assessment": "EHC needs assessment"}[e.payload.assessment_kind.value]
        return (f"{kind} by {words(e.payload.assessor_role.value)}: "
                f"{words(e.payload.outcome.value)} ({needs})")
    if isinstance(e, PlanReviewedV1):
        return (f"{words(e.payload.plan_kind.value, capital=True)} reviewed: "
                f"{words(e.payload.decision.value)}")
    d = e.payload.destination
    if isinstance(d, SchoolDestination):
        where = f"school URN {d.urn}"
    elif isinstance(d, Post16Destination):
        where = f"post-16 provider UKPRN {d.ukprn}"
    else:
        where = "an unknown destination (lost pupil)"
    return (f"Moved ({words(e.payload.move_kind.value)}) to {where}, "
            f"effective {e.payload.effective_date.isoformat()}")


STATUS_WORDS: dict[SENStatus, str] = {
    "none": "No SEN", "sen_support": "SEN support (K)", "ehc_plan": "EHC plan (E)"}
"""A status as people read it, with its census code: one wording, so the readable packet,
the terminal summaries and the replay never describe the same status differently."""
