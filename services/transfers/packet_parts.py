"""The parts of a transfer packet, each from a pupil's SEN record at the move: concerns
still open, assessments, plans as reviewed, what a packet must never hide (referrals
and an EHC request still waiting, a review overdue, every provision tried), the EHC plan
and, for a plan that moves to another local authority, the clocks that now run for it.

Pure. The rules that decide what is still open live in `services.shared.sen_record`
(`answers`, `referrals_pending`, `ehc_request_open`); here they become packet parts.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

from contracts.packet import (
    Assessment,
    CaseOfficer,
    ClockDue,
    CurrentPlan,
    EHCPlanDetails,
    EHCRequest,
    Intervention,
    OpenConcern,
    PendingReferral,
    PlanReview,
    Plans,
    SendingContact,
)
from contracts.school_events import (
    AssessmentOutcome,
    PlanKind,
    ProvisionKind,
    PupilMovedV1,
)
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


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it has no such day (31 May
    plus 3 months is 31 August, 30 November plus 3 months is 28 or 29 February)."""
    years, month = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


ANNUAL_REVIEW_MONTHS = 12
"""An EHC plan is reviewed at least every 12 months (Children and Families Act 2014
s.44(1); SEND Code of Practice 9.166)."""


def next_annual_review_due(issued_on: date | None, last_reviewed_on: date | None) -> date | None:
    """12 months after the later of the plan's issue and its last review."""
    known = [d for d in (issued_on, last_reviewed_on) if d is not None]
    return add_months(max(known), ANNUAL_REVIEW_MONTHS) if known else None


def ehc_plan(record: SENRecord) -> EHCPlanDetails | None:
    """The EHC plan at the move. From the LA's events when it has spoken (the plan is the
    LA's: Children and Families Act 2014 s.37); else, with status E, what the school
    reported, marked `confirmed_by_la: false`; None when the pupil has no plan."""
    plan = record.ehc_plan
    if plan is not None:
        officer = plan.case_officer
        return EHCPlanDetails(
            confirmed_by_la=True, maintaining_la=plan.maintaining_la,
            issued_on=plan.issued_on,
            case_officer=None if officer is None else CaseOfficer(
                role=officer.role, work_email=officer.work_email,
                work_telephone=officer.work_telephone),
            needs=sorted(plan.needs, key=lambda n: n.rank), provision=list(plan.provision),
            outcomes=list(plan.outcomes), named_setting_urn=plan.named_setting_urn,
            last_reviewed_on=plan.last_reviewed_on, last_amended_on=plan.last_amended_on,
            next_annual_review_due=next_annual_review_due(plan.issued_on,
                                                          plan.last_reviewed_on),
            transferred_from_la=plan.transferred_from_la)
    if record.status != "ehc_plan":
        return None
    issued = [a for a in record.assessments
              if a.payload.outcome is AssessmentOutcome.EHC_PLAN_ISSUED]
    reviews = sorted((r for r in record.reviews if r.payload.plan_kind is PlanKind.EHC_PLAN),
                     key=lambda r: r.occurred_at)
    issued_on = max(a.occurred_at for a in issued).date() if issued else None
    reviewed_on = reviews[-1].occurred_at.date() if reviews else None
    return EHCPlanDetails(
        confirmed_by_la=False, issued_on=issued_on, needs=list(record.needs),
        provision=list(reviews[-1].payload.provision) if reviews else [],
        last_reviewed_on=reviewed_on,
        next_annual_review_due=next_annual_review_due(issued_on, reviewed_on))


PLAN_TRANSFER_SOURCE = "SEND Regulations 2014, reg. 15"
# Regulation 15 (transfer of EHC plans between local authorities) as the domain notes and
# the DfE's summaries give it; the paragraph numbers within reg. 15 for each duty were not
# checked against the primary text, so the source names the regulation only.
TELL_PARENT_WEEKS = 6
REVIEW_AFTER_TRANSFER_MONTHS = 3


def clocks_for_new_la(plan: EHCPlanDetails, transferred_on: date, new_la: str
                      ) -> list[ClockDue]:
    """The clocks that run for the LA a plan moves to, from the day of the transfer (the
    move's effective date). Pure date arithmetic: calendar days and months, no school
    calendar (these limits are not in school days)."""
    review_from = [add_months(transferred_on, REVIEW_AFTER_TRANSFER_MONTHS)]
    made_or_reviewed = [d for d in (plan.issued_on, plan.last_reviewed_on) if d is not None]
    if made_or_reviewed:
        review_from.append(add_months(max(made_or_reviewed), ANNUAL_REVIEW_MONTHS))
    return [
        ClockDue(rule="ehc_transfer_tell_parent_6_weeks",
                 title="Tell the parent or young person within 6 weeks of the transfer "
                       "whether it will reassess and whether it will amend the plan",
                 source=PLAN_TRANSFER_SOURCE, started_on=transferred_on,
                 due_on=transferred_on + timedelta(weeks=TELL_PARENT_WEEKS), la_code=new_la),
        ClockDue(rule="ehc_transfer_review_12_months_or_3_months",
                 title="Review the plan within 12 months of its making or last review, or "
                       "3 months of the transfer, whichever is later",
                 source=PLAN_TRANSFER_SOURCE, started_on=transferred_on,
                 due_on=max(review_from), la_code=new_la),
    ]
