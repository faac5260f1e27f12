"""A pupil's SEN record at a point in its history, and the transfer packet built from it.

Domain layer: no I/O. It reads the history in the shape of the wire contract
(`contracts.history`) and writes the packet contract, because the packet *is* that
standardised format; the rules here are what the hub adds: SEN status at the move,
current needs, concerns never followed up, the plan as last reviewed, the timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid5

from contracts.history import PupilHistoryEventV1
from contracts.packet import (
    Assessment,
    CurrentPlan,
    Move,
    OpenConcern,
    PacketPupil,
    PlanReview,
    Plans,
    SENStatus,
    Setting,
    TimelineEntry,
    TransferPacketV1,
)
from contracts.school_events import (
    AssessmentCompletedV1,
    AssessmentOutcome,
    ConcernRaisedV1,
    PlanKind,
    PlanReviewedV1,
    PupilMovedV1,
    RankedNeed,
    ReviewDecision,
    SchoolDestination,
)

_PACKET_NAMESPACE = UUID("0b8f3f4e-6a8d-4d0e-8f1c-2f6b7c9d0e11")

NO_HISTORY_STATEMENT = (
    "No SEN history is recorded for this pupil at any setting connected to the hub: "
    "no concern, assessment or plan review was ever received. This is a statement "
    "that none exists, not a missing file."
)


class TransfersError(Exception):
    """Base class of the transfers domain's refusals."""


class NotAMove(TransfersError):
    """Raised when a packet is asked for at a history event that is not a move."""


def packet_id_for(upn: str, move_event_id: UUID) -> UUID:
    """Deterministic: rebuilding or re-sending the packet for a move keeps its id."""
    return uuid5(_PACKET_NAMESPACE, f"{upn}/{move_event_id}")


@dataclass
class SENRecord:
    """A pupil's SEN record as it stood after some prefix of their history."""

    status: SENStatus = "none"
    needs: list[RankedNeed] = field(default_factory=list)
    concerns: list[ConcernRaisedV1] = field(default_factory=list)
    assessments: list[AssessmentCompletedV1] = field(default_factory=list)
    reviews: list[PlanReviewedV1] = field(default_factory=list)
    version: int = 0

    @property
    def has_sen_history(self) -> bool:
        return bool(self.concerns or self.assessments or self.reviews)

    def open_concerns(self) -> list[ConcernRaisedV1]:
        """Concerns with no later assessment that answered them.

        An assessment answers a concern when it happened after it and either found no
        SEN or identified a need in one of the concern's areas.
        """
        still_open = []
        for concern in self.concerns:
            areas = set(concern.payload.areas_of_need)
            answered = any(
                a.occurred_at >= concern.occurred_at
                and (
                    a.payload.outcome is AssessmentOutcome.NO_SEN
                    or areas & {n.code for n in a.payload.identified_needs}
                )
                for a in self.assessments
            )
            if not answered:
                still_open.append(concern)
        return still_open

    def apply(self, history_event: PupilHistoryEventV1) -> None:
        event = history_event.event
        self.version = history_event.version
        if isinstance(event, ConcernRaisedV1):
            self.concerns.append(event)
        elif isinstance(event, AssessmentCompletedV1):
            self.assessments.append(event)
            self._assessed(event)
        elif isinstance(event, PlanReviewedV1):
            self.reviews.append(event)
            self._reviewed(event)

    def _assessed(self, event: AssessmentCompletedV1) -> None:
        outcome = event.payload.outcome
        if outcome is AssessmentOutcome.NO_SEN:
            if self.status != "ehc_plan":
                self.status, self.needs = "none", []
            return
        self.needs = sorted(event.payload.identified_needs, key=lambda n: n.rank)
        if outcome is AssessmentOutcome.EHC_PLAN_ISSUED:
            self.status = "ehc_plan"
        elif outcome in (
            AssessmentOutcome.SEN_SUPPORT,
            AssessmentOutcome.REQUEST_EHC_NEEDS_ASSESSMENT,
        ) and self.status == "none":
            self.status = "sen_support"

    def _reviewed(self, event: PlanReviewedV1) -> None:
        payload = event.payload
        if payload.decision is ReviewDecision.CEASE:
            if payload.plan_kind is PlanKind.EHC_PLAN or self.status == "sen_support":
                self.status = "none"
        elif payload.plan_kind is PlanKind.EHC_PLAN:
            self.status = "ehc_plan"
        elif self.status == "none":
            self.status = "sen_support"


def record_at(history: Sequence[PupilHistoryEventV1], version: int) -> SENRecord:
    """The SEN record after the events up to and including `version`, in recorded order."""
    record = SENRecord()
    for history_event in sorted(history, key=lambda h: h.version):
        if history_event.version > version:
            break
        record.apply(history_event)
    return record


def describe_event(event: PupilHistoryEventV1) -> str:
    e = event.event
    if isinstance(e, ConcernRaisedV1):
        areas = ", ".join(e.payload.areas_of_need)
        return f"Concern raised by {e.payload.raised_by.value.replace('_', ' ')} ({areas})"
    if isinstance(e, AssessmentCompletedV1):
        needs = ", ".join(f"{n.code}" for n in e.payload.identified_needs) or "no needs identified"
        return (
            f"{e.payload.assessment_kind.value.replace('_', ' ').capitalize()} assessment by "
            f"{e.payload.assessor_role.value.replace('_', ' ')}: "
            f"{e.payload.outcome.value.replace('_', ' ')} ({needs})"
        )
    if isinstance(e, PlanReviewedV1):
        return (
            f"{e.payload.plan_kind.value.replace('_', ' ').capitalize()} reviewed: "
            f"{e.payload.decision.value.replace('_', ' ')}"
        )
    d = e.payload.destination
    where = f"school URN {d.urn}" if isinstance(d, SchoolDestination) else f"post-16 provider UKPRN {d.ukprn}"
    return (
        f"Moved ({e.payload.move_kind.value.replace('_', ' ')}) to {where}, "
        f"effective {e.payload.effective_date.isoformat()}"
    )


def destination_of(move: PupilMovedV1) -> Setting:
    d = move.payload.destination
    if isinstance(d, SchoolDestination):
        return Setting(kind="school", urn=d.urn)
    return Setting(kind="post16_provider", ukprn=d.ukprn)


def build_transfer_packet(
    history: Sequence[PupilHistoryEventV1], move_version: int, generated_at: datetime
) -> TransferPacketV1:
    """The packet for the move at `move_version`, from the history as it stood then."""
    by_version = {h.version: h for h in history}
    move_event = by_version.get(move_version)
    if move_event is None or not isinstance(move_event.event, PupilMovedV1):
        raise NotAMove(f"history version {move_version} is not a pupil_moved event")
    move = move_event.event
    record = record_at(history, move_version)
    upto = sorted((h for h in history if h.version <= move_version), key=lambda h: h.version)
    latest_review = max(record.reviews, key=lambda r: r.occurred_at, default=None)
    pupil = move.pupil
    return TransferPacketV1(
        packet_id=packet_id_for(pupil.upn, move.event_id),
        generated_at=generated_at,
        pupil=PacketPupil(
            upn=pupil.upn,
            upn_is_temporary=move_event.upn_is_temporary,
            given_name=pupil.given_name,
            family_name=pupil.family_name,
            date_of_birth=pupil.date_of_birth,
            uln=pupil.uln,
        ),
        from_setting=Setting(kind="school", urn=move.source.urn),
        to_setting=destination_of(move),
        move=Move(
            kind=move.payload.move_kind,
            effective_date=move.payload.effective_date,
            admissions_reference=move.payload.admissions_reference,
            event_id=move.event_id,
        ),
        sen_status=record.status,
        has_sen_history=record.has_sen_history,
        sen_history_statement=(
            NO_HISTORY_STATEMENT
            if not record.has_sen_history
            else f"SEN history recorded at {len({h.event.source.urn for h in upto})} "
            f"setting(s): {len(record.concerns)} concern(s), {len(record.assessments)} "
            f"assessment(s), {len(record.reviews)} plan review(s)."
        ),
        current_needs=record.needs,
        concerns_open=[
            OpenConcern(
                event_id=c.event_id,
                raised_on=c.occurred_at.date(),
                setting_urn=c.source.urn,
                raised_by=c.payload.raised_by,
                areas_of_need=c.payload.areas_of_need,
                summary=c.payload.summary,
            )
            for c in record.open_concerns()
        ],
        assessments=[
            Assessment(
                event_id=a.event_id,
                completed_on=a.occurred_at.date(),
                setting_urn=a.source.urn,
                assessor_role=a.payload.assessor_role,
                assessment_kind=a.payload.assessment_kind,
                identified_needs=a.payload.identified_needs,
                outcome=a.payload.outcome,
                summary=a.payload.summary,
            )
            for a in sorted(record.assessments, key=lambda a: a.occurred_at)
        ],
        plans=Plans(
            current=None
            if latest_review is None
            else CurrentPlan(
                plan_kind=latest_review.payload.plan_kind,
                reviewed_on=latest_review.occurred_at.date(),
                setting_urn=latest_review.source.urn,
                targets=latest_review.payload.targets,
                provision=latest_review.payload.provision,
                next_review_due=latest_review.payload.next_review_due,
            ),
            reviews=[
                PlanReview(
                    event_id=r.event_id,
                    reviewed_on=r.occurred_at.date(),
                    setting_urn=r.source.urn,
                    plan_kind=r.payload.plan_kind,
                    decision=r.payload.decision,
                    what_worked=r.payload.what_worked,
                    parent_carer_views=r.payload.parent_carer_views,
                    pupil_views=r.payload.pupil_views,
                    next_review_due=r.payload.next_review_due,
                )
                for r in sorted(record.reviews, key=lambda r: r.occurred_at)
            ],
        ),
        timeline=[
            TimelineEntry(
                occurred_at=h.event.occurred_at,
                event_type=h.event.event_type,
                setting_urn=h.event.source.urn,
                recorded_by_role=h.event.recorded_by.role,
                description=describe_event(h),
                history_version=h.version,
            )
            for h in sorted(upto, key=lambda h: (h.event.occurred_at, h.version))
        ],
        history_version=move_version,
    )
