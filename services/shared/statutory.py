"""Measured intervals in a pupil's SEN history, for the auditor's report.

Pure; reads history entries (the shared read model) in the order they happened. The EHC
intervals are the statutory clocks of `services.shared.clocks` read as intervals, so
there is one rule for each and the report's two tables agree: the final plan within 20
weeks of the LA receiving the request (SEND Regulations 2014, reg. 13(2)), and the plan
reviewed within 12 months of the plan and of each review (Children and Families Act
2014, s.44(1)). Where no local authority has sent any event, a school's own report is
all there is: its request to its reported plan is measured with no limit (the 20 weeks
run from the LA's receipt, which nobody recorded), and its EHC plan reviews against the
same 12 months.

The rest are measured with no statutory limit, and are past a limit only when a local
policy sets one (`LocalPolicy`, labelled as policy): a concern to the first assessment
after it, and a period with needs found but no plan in place. Each review is also
measured against the `next_review_due` the review itself set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.inbound import is_la_event, where_recorded
from contracts.la_events import EHCPlanIssuedV1
from contracts.school_events import (
    AssessmentCompletedV1,
    AssessmentOutcome,
    ConcernRaisedV1,
    PlanKind,
    PlanReviewedV1,
    PupilMovedV1,
    ReviewDecision,
)
from services.shared.clocks import (
    ANNUAL_REVIEW,
    FINAL_PLAN,
    ClockResult,
    LocalPolicy,
    annual_review_clocks,
    final_plan_clocks,
    twelve_months_after,
)
from services.shared.sen_record import HistoryEntry

MEASURED = "measured, no statutory limit"
NO_POLICY = LocalPolicy()


@dataclass(frozen=True)
class Interval:
    """One measured interval: what, from when to when (None: still open), and the limit
    (None: measured only, never overdue)."""

    measure: str
    start: date
    end: date | None
    limit: timedelta | None
    limit_basis: str
    setting_urn: str
    note: str = ""

    def length(self, today: date) -> timedelta:
        return (self.end or today) - self.start

    def overdue(self, today: date) -> bool:
        return self.limit is not None and self.length(today) > self.limit

    @property
    def still_open(self) -> bool:
        return self.end is None


def _ordered(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(history, key=lambda h: (h.event.occurred_at, h.version))


def _policy_limit(weeks: int | None, setting: str) -> tuple[timedelta | None, str]:
    if weeks is None:
        return None, MEASURED
    return timedelta(weeks=weeks), f"local policy: {weeks} weeks ({setting}), not statute"


def _from_clock(clock: ClockResult, measure: str, limit_words: str) -> Interval:
    """A statutory clock as an interval: its limit, unless it stopped or an exception
    applies (then measured only)."""
    if clock.status in ("stopped", "exception"):
        limit, basis = None, f"{clock.status}: {clock.note} ({clock.source})"
    else:
        limit, basis = clock.due_on - clock.started_on, f"statutory: {limit_words} ({clock.source})"
    return Interval(measure, clock.started_on, clock.ended_on, limit, basis,
                    clock.setting_urn or "unknown",
                    "" if clock.status in ("stopped", "exception") else clock.note)


def concern_to_assessment(history: Sequence[HistoryEntry],
                          policy: LocalPolicy = NO_POLICY) -> list[Interval]:
    events = _ordered(history)
    limit, basis = _policy_limit(policy.concern_open_weeks, "SENDHUB_POLICY_CONCERN_OPEN_WEEKS")
    found = []
    for h in events:
        if not isinstance(h.event, ConcernRaisedV1):
            continue
        raised = h.event.occurred_at
        first = next((a.event.occurred_at.date() for a in events
                      if isinstance(a.event, AssessmentCompletedV1) and a.event.occurred_at >= raised),
                     None)
        found.append(Interval(
            "Concern to first assessment", raised.date(), first, limit, basis,
            where_recorded(h.event),
            ", ".join(h.event.payload.areas_of_need)))
    return found


def _is_ehc_request(h: HistoryEntry) -> bool:
    e = h.event
    return ((isinstance(e, AssessmentCompletedV1)
             and e.payload.outcome is AssessmentOutcome.REQUEST_EHC_NEEDS_ASSESSMENT)
            or (isinstance(e, PlanReviewedV1)
                and e.payload.decision is ReviewDecision.REQUEST_EHC_NEEDS_ASSESSMENT))


def ehc_request_to_plan(history: Sequence[HistoryEntry]) -> list[Interval]:
    """The 20 weeks from the LA receiving each request to the final plan (the clocks'
    `ehc_final_plan_20_weeks`); with no LA connected, the school's own request to its
    reported plan, measured only."""
    # The clocks' dates, and whether one stopped or an exception applies, do not depend
    # on the day they are read on; the interval measures its own length against today.
    found = [_from_clock(c, "EHC needs assessment request to plan issued", "20 weeks")
             for c in final_plan_clocks(history, today=date.min)]
    if any(is_la_event(h.event) for h in history):
        return found
    measure = "EHC needs assessment request to plan issued (as the school reported it)"
    basis = (f"{MEASURED} applied: the 20 weeks run from the LA receiving the request "
             f"({FINAL_PLAN.source}), which no LA has recorded")
    open_request: HistoryEntry | None = None
    for h in _ordered(history):
        if _is_ehc_request(h) and open_request is None:
            open_request = h
        elif (open_request is not None and isinstance(h.event, AssessmentCompletedV1)
              and h.event.payload.outcome is AssessmentOutcome.EHC_PLAN_ISSUED):
            found.append(Interval(measure, open_request.event.occurred_at.date(),
                                  h.event.occurred_at.date(), None, basis,
                                  where_recorded(open_request.event)))
            open_request = None
    if open_request is not None:
        found.append(Interval(measure, open_request.event.occurred_at.date(), None, None, basis,
                              where_recorded(open_request.event), "no plan issued yet"))
    return found


def ehc_annual_reviews(history: Sequence[HistoryEntry]) -> list[Interval]:
    """Each EHC plan reviewed within 12 months of the plan and of each review (the clocks'
    `ehc_annual_review_12_months`). With no LA connected, the school's EHC plan reviews
    against the same 12 months, each to the next review held there."""
    found = [_from_clock(c, "EHC plan annual review", "12 months")
             for c in annual_review_clocks(history, today=date.min)]
    if any(is_la_event(h.event) for h in history):
        return found
    reviews = [h.event for h in _ordered(history) if isinstance(h.event, PlanReviewedV1)]
    for n, review in enumerate(reviews):
        if review.payload.plan_kind is not PlanKind.EHC_PLAN \
                or review.payload.decision is ReviewDecision.CEASE:
            continue
        start = review.occurred_at.date()
        held = reviews[n + 1].occurred_at.date() if n + 1 < len(reviews) else None
        found.append(Interval(
            "EHC plan annual review", start, held, twelve_months_after(start) - start,
            f"statutory: 12 months ({ANNUAL_REVIEW.source}); the school's report, no LA "
            "connected", where_recorded(review)))
    return found


def reviews_against_due_dates(history: Sequence[HistoryEntry]) -> list[Interval]:
    """Each review's `next_review_due` against the next review actually held (anywhere)."""
    reviews = [h.event for h in _ordered(history) if isinstance(h.event, PlanReviewedV1)]
    found = []
    for n, review in enumerate(reviews):
        payload = review.payload
        if payload.decision is ReviewDecision.CEASE or payload.next_review_due is None:
            continue
        held = reviews[n + 1].occurred_at.date() if n + 1 < len(reviews) else None
        start = review.occurred_at.date()
        found.append(Interval("Review held by its due date", start, held,
                              payload.next_review_due - start,
                              f"due {payload.next_review_due:%-d %b %Y} (set at the review)",
                              where_recorded(review)))
    return found


def plan_gaps(history: Sequence[HistoryEntry], policy: LocalPolicy = NO_POLICY) -> list[Interval]:
    """Periods when needs were identified but no plan was in place at the pupil's setting.

    Needs open from an assessment that found SEN; a plan is in place from an issued EHC
    plan (the school's report of one, or the LA's) or a review that did not cease it; a
    move ends the plan (the new setting has to make its own).
    """
    limit, basis = _policy_limit(policy.plan_gap_weeks, "SENDHUB_POLICY_PLAN_GAP_WEEKS")
    found = []
    needs_open = False
    plan_in_place = False
    gap_start: tuple[date, str] | None = None
    for h in _ordered(history):
        e = h.event
        day = e.occurred_at.date()
        if isinstance(e, EHCPlanIssuedV1):
            plan_in_place = True
        elif isinstance(e, AssessmentCompletedV1):
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
                                      limit, basis, gap_start[1]))
                gap_start = None
            if needs_open:
                gap_start = (e.payload.effective_date, _destination_urn(e))
            continue
        if needs_open and not plan_in_place and gap_start is None:
            gap_start = (day, where_recorded(e))
        if gap_start is not None and (plan_in_place or not needs_open):
            found.append(Interval("No plan in place while needs were open", gap_start[0], day,
                                  limit, basis, gap_start[1]))
            gap_start = None
    if gap_start is not None:
        found.append(Interval("No plan in place while needs were open", gap_start[0], None,
                              limit, basis, gap_start[1], "still no plan"))
    return found


def _destination_urn(move: PupilMovedV1) -> str:
    d = move.payload.destination
    return getattr(d, "urn", None) or getattr(d, "ukprn", None) or "unknown"


def all_measures(history: Sequence[HistoryEntry], policy: LocalPolicy = NO_POLICY) -> list[Interval]:
    return [*concern_to_assessment(history, policy), *ehc_request_to_plan(history),
            *reviews_against_due_dates(history), *ehc_annual_reviews(history),
            *plan_gaps(history, policy)]
