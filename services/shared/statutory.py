"""Measured intervals in a pupil's SEN history, beside the statutory or guide ones.

Pure; reads history entries (the shared read model) in the order they happened. Used by the
auditor's report. Statutory: EHC plan within 20 weeks of the request (SEND Regulations
2014, reg. 13) and an EHC plan reviewed at least every 12 months. Guides (no statute):
a concern assessed within 6 weeks, a plan in place within 6 weeks of needs being
identified or of arriving at a new setting, and each review held by its own due date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.inbound import where_recorded
from contracts.school_events import (
    AssessmentCompletedV1,
    AssessmentOutcome,
    ConcernRaisedV1,
    PlanKind,
    PlanReviewedV1,
    PupilMovedV1,
    ReviewDecision,
)
from services.shared.sen_record import HistoryEntry

EHC_PLAN_LIMIT = timedelta(weeks=20)
EHC_REVIEW_LIMIT = timedelta(days=366)
CONCERN_GUIDE = timedelta(weeks=6)
PLAN_GAP_GUIDE = timedelta(weeks=6)


@dataclass(frozen=True)
class Interval:
    """One measured interval: what, from when to when (None: still open), and the limit."""

    measure: str
    start: date
    end: date | None
    limit: timedelta
    limit_basis: str
    setting_urn: str
    note: str = ""

    def length(self, today: date) -> timedelta:
        return (self.end or today) - self.start

    def overdue(self, today: date) -> bool:
        return self.length(today) > self.limit

    @property
    def still_open(self) -> bool:
        return self.end is None


def _ordered(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(history, key=lambda h: (h.event.occurred_at, h.version))


def concern_to_assessment(history: Sequence[HistoryEntry]) -> list[Interval]:
    events = _ordered(history)
    found = []
    for h in events:
        if not isinstance(h.event, ConcernRaisedV1):
            continue
        raised = h.event.occurred_at
        first = next((a.event.occurred_at.date() for a in events
                      if isinstance(a.event, AssessmentCompletedV1) and a.event.occurred_at >= raised),
                     None)
        found.append(Interval(
            "Concern to first assessment", raised.date(), first, CONCERN_GUIDE,
            "guide: 6 weeks (no statutory limit)", where_recorded(h.event),
            ", ".join(h.event.payload.areas_of_need)))
    return found


def _is_ehc_request(h: HistoryEntry) -> bool:
    e = h.event
    return ((isinstance(e, AssessmentCompletedV1)
             and e.payload.outcome is AssessmentOutcome.REQUEST_EHC_NEEDS_ASSESSMENT)
            or (isinstance(e, PlanReviewedV1)
                and e.payload.decision is ReviewDecision.REQUEST_EHC_NEEDS_ASSESSMENT))


def ehc_request_to_plan(history: Sequence[HistoryEntry]) -> list[Interval]:
    events = _ordered(history)
    found = []
    open_request: HistoryEntry | None = None
    for h in events:
        if _is_ehc_request(h) and open_request is None:
            open_request = h
        elif (open_request is not None and isinstance(h.event, AssessmentCompletedV1)
              and h.event.payload.outcome is AssessmentOutcome.EHC_PLAN_ISSUED):
            found.append(Interval("EHC needs assessment request to plan issued",
                                  open_request.event.occurred_at.date(), h.event.occurred_at.date(),
                                  EHC_PLAN_LIMIT, "statutory: 20 weeks", where_recorded(open_request.event)))
            open_request = None
    if open_request is not None:
        found.append(Interval("EHC needs assessment request to plan issued",
                              open_request.event.occurred_at.date(), None, EHC_PLAN_LIMIT,
                              "statutory: 20 weeks", where_recorded(open_request.event),
                              "no plan issued yet"))
    return found


def reviews_against_due_dates(history: Sequence[HistoryEntry]) -> list[Interval]:
    """Each review's `next_review_due` against the next review actually held (anywhere)."""
    reviews = [h.event for h in _ordered(history) if isinstance(h.event, PlanReviewedV1)]
    found = []
    for n, review in enumerate(reviews):
        payload = review.payload
        if payload.decision is ReviewDecision.CEASE:
            continue
        held = reviews[n + 1].occurred_at.date() if n + 1 < len(reviews) else None
        start = review.occurred_at.date()
        if payload.next_review_due is not None:
            found.append(Interval("Review held by its due date", start, held,
                                  payload.next_review_due - start,
                                  f"due {payload.next_review_due:%-d %b %Y} (set at the review)",
                                  where_recorded(review)))
        if payload.plan_kind is PlanKind.EHC_PLAN:
            found.append(Interval("EHC plan annual review", start, held, EHC_REVIEW_LIMIT,
                                  "statutory: at least every 12 months", where_recorded(review)))
    return found


def plan_gaps(history: Sequence[HistoryEntry]) -> list[Interval]:
    """Periods when needs were identified but no plan was in place at the pupil's setting.

    Needs open from an assessment that found SEN; a plan is in place from an issued EHC
    plan or a review that did not cease it; a move ends the plan (the new setting has to
    make its own).
    """
    found = []
    needs_open = False
    plan_in_place = False
    gap_start: tuple[date, str] | None = None
    for h in _ordered(history):
        e = h.event
        day = e.occurred_at.date()
        if isinstance(e, AssessmentCompletedV1):
            needs_open = e.payload.outcome is not AssessmentOutcome.NO_SEN or needs_open
            if e.payload.outcome is AssessmentOutcome.NO_SEN and not plan_in_place:
                needs_open = False
            if e.payload.outcome is AssessmentOutcome.EHC_PLAN_ISSUED:
                plan_in_place = True  # the local authority's plan is the plan
        elif isinstance(e, PlanReviewedV1):
            plan_in_place = e.payload.decision is not ReviewDecision.CEASE
            if not plan_in_place:
                needs_open = False
        elif isinstance(e, PupilMovedV1):
            plan_in_place = False
            if gap_start is not None:
                found.append(Interval("No plan in place while needs were open", gap_start[0], day,
                                      PLAN_GAP_GUIDE, "guide: 6 weeks", gap_start[1]))
                gap_start = None
            if needs_open:
                gap_start = (e.payload.effective_date, _destination_urn(e))
            continue
        if needs_open and not plan_in_place and gap_start is None:
            gap_start = (day, where_recorded(e))
        if gap_start is not None and (plan_in_place or not needs_open):
            found.append(Interval("No plan in place while needs were open", gap_start[0], day,
                                  PLAN_GAP_GUIDE, "guide: 6 weeks", gap_start[1]))
            gap_start = None
    if gap_start is not None:
        found.append(Interval("No plan in place while needs were open", gap_start[0], None,
                              PLAN_GAP_GUIDE, "guide: 6 weeks", gap_start[1], "still no plan"))
    return found


def _destination_urn(move: PupilMovedV1) -> str:
    d = move.payload.destination
    return getattr(d, "urn", None) or getattr(d, "ukprn", None) or "unknown"


def all_measures(history: Sequence[HistoryEntry]) -> list[Interval]:
    return [*concern_to_assessment(history), *ehc_request_to_plan(history),
            *reviews_against_due_dates(history), *plan_gaps(history)]
