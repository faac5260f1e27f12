"""The parts of a transfer packet, each from a pupil's SEN record at the move: concerns
still open, assessments, plans as reviewed, and what a packet must never hide (referrals
and an EHC request still waiting, a review overdue, every provision tried).

Pure. The rules that decide what is still open live in `services.shared.sen_record`
(`answers`, `referrals_pending`, `ehc_request_open`); here they become packet parts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.packet import (
    Assessment,
    CurrentPlan,
    EHCRequest,
    Intervention,
    OpenConcern,
    PendingReferral,
    PlanReview,
    Plans,
    SendingContact,
)
from contracts.school_events import ProvisionKind, PupilMovedV1
from services.shared.sen_record import SENRecord


def pending_referrals(record: SENRecord) -> list[PendingReferral]:
    return [PendingReferral(
        event_id=r.event_id, referred_on=r.occurred_at.date(), setting_urn=r.source.urn,
        referred_to=r.payload.referred_to,
        areas=sorted({*(r.payload.areas_assessed or ()),
                      *(n.code for n in r.payload.identified_needs)}),
        summary=r.payload.summary) for r in record.referrals_pending()]


def ehc_request(record: SENRecord) -> EHCRequest | None:
    request = record.ehc_request_open()
    if request is None:
        return None
    return EHCRequest(event_id=request.event_id, requested_on=request.requested_on,
                      setting_urn=request.setting_urn, la_code=request.la_code,
                      assessment_decision=request.assessment_decision,
                      assessment_decided_on=request.assessment_decided_on,
                      plan_decision=request.plan_decision)


def review_overdue_since(record: SENRecord, moved_on: date) -> date | None:
    """The latest review's `next_review_due`, when it passed before the move."""
    latest = max(record.reviews, key=lambda r: r.occurred_at, default=None)
    due = latest.payload.next_review_due if latest else None
    return due if due is not None and due < moved_on else None


def interventions(record: SENRecord, moved_on: date) -> list[Intervention]:
    """Each provision (by setting, description and start) as its latest review left it,
    oldest first; still running at the move, it ends at the move date."""
    latest: dict[tuple[str, str, date], Intervention] = {}
    for review in sorted(record.reviews, key=lambda r: r.occurred_at):
        for item in review.payload.provision:
            running = item.ended_on is None or item.ended_on > moved_on
            latest[(review.source.urn, item.description, item.started_on)] = Intervention(
                description=item.description, kind=item.kind, frequency=item.frequency,
                setting_urn=review.source.urn, started_on=item.started_on,
                ended_on=moved_on if running or item.ended_on is None else item.ended_on,
                open_at_move=running, last_reviewed_on=review.occurred_at.date(),
                what_worked=review.payload.what_worked,
                what_did_not_work=review.payload.what_did_not_work)
    return sorted(latest.values(), key=lambda i: (i.started_on, i.description))


def exam_access(tried: list[Intervention]) -> list[Intervention]:
    return [i for i in tried if i.kind is ProvisionKind.EXAM_ACCESS_ARRANGEMENTS]


def sending_contact(move: PupilMovedV1) -> SendingContact | None:
    contact = move.payload.sen_contact
    if contact is None:
        return None
    return SendingContact(role=contact.role, work_email=contact.work_email,
                          work_telephone=contact.work_telephone)


def what_is_open(record: SENRecord, move: PupilMovedV1) -> dict[str, Any]:
    """The packet's fields for what was open or tried at the move."""
    moved_on = move.payload.effective_date
    tried = interventions(record, moved_on)
    return {"referrals_pending": pending_referrals(record),
            "ehc_request_open": ehc_request(record),
            "review_overdue_since": review_overdue_since(record, moved_on),
            "interventions": tried, "exam_access_arrangements": exam_access(tried),
            "sending_contact": sending_contact(move)}


def open_concerns(record: SENRecord) -> list[OpenConcern]:
    return [
        OpenConcern(
            event_id=c.event_id,
            raised_on=c.occurred_at.date(),
            setting_urn=c.source.urn,
            raised_by=c.payload.raised_by,
            areas_of_need=c.payload.areas_of_need,
            summary=c.payload.summary,
        )
        for c in record.open_concerns()
    ]


def assessments(record: SENRecord) -> list[Assessment]:
    return [
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
    ]


def plans(record: SENRecord) -> Plans:
    latest = max(record.reviews, key=lambda r: r.occurred_at, default=None)
    return Plans(
        current=None if latest is None else CurrentPlan(
            plan_kind=latest.payload.plan_kind,
            reviewed_on=latest.occurred_at.date(),
            setting_urn=latest.source.urn,
            targets=latest.payload.targets,
            provision=latest.payload.provision,
            next_review_due=latest.payload.next_review_due,
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
                targets=r.payload.targets,
                provision=r.payload.provision,
                what_did_not_work=r.payload.what_did_not_work,
            )
            for r in sorted(record.reviews, key=lambda r: r.occurred_at)
        ],
    )
