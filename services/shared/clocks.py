"""The statutory clocks of a pupil's SEN history, each a named rule with its source, and
the local policies beside them, labelled as policy.

Pure: reads history entries (the shared read model) and counts days through a
`SchoolDays` calendar passed in. Used by the auditor's report, `sendhub oversight` and
the packet for a local authority that takes over a plan.

Each rule has a stable name (`ClockResult.rule`), a title, and the regulation it comes
from (`RULES`); a rule that is local policy says so (`statutory=False`) and runs only
when configured (`LocalPolicy`): no policy has a default that pretends to be law.

How the hub counts:
- The EHC clocks run from the day the local authority received the request
  (`ehc_request_received.received_on`), never from a school's own record of asking; a
  school's request the LA has not recorded starts no clock. A request the LA declined
  stops the later clocks (`stopped`), so it is never overdue.
- "N weeks" ends on the same weekday N weeks later, and that day is inside the limit.
  "12 months" ends on the same day of the month a year later (29 February: 28 February);
  "3 months" likewise, on the last day of a shorter month.
- `met` and `late` compare the day a thing was done with the due day; `open` and
  `overdue` compare `today` with it. A published exception (`TimeLimitException`)
  turns a limit that was missed into `exception`; a limit met needs no exception.
- The file-sent clock needs when the packet was first sent, which transfers knows and
  the history does not: it is `file_sent_clock`, not part of `all_clocks`.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, Protocol
from uuid import UUID

from contracts.la_events import (
    EHCAnnualReviewV1,
    EHCPlanAmendedV1,
    EHCPlanIssuedV1,
    EHCPlanTransferredV1,
    TimeLimitException,
)
from contracts.school_events import (
    MoveKind,
    Post16Destination,
    PupilMovedV1,
    SchoolDestination,
    Source,
)
from services.shared.sen_record import EHCPlan, EHCRequestCase, HistoryEntry, answers, record_at
from services.shared.sen_wording import words

ClockStatus = Literal["met", "late", "open", "overdue", "exception", "stopped"]
"""met: done by the due day; late: done after it; open: not done, not yet due;
overdue: not done and past due; exception: a published exception applies, so the limit
does not; stopped: the clock no longer runs (a request declined, a plan ceased)."""


class SchoolDays(Protocol):
    """What the clocks need of a school calendar (services.shared.school_days)."""

    def school_days_between(self, start: date, end: date, la_code: str | None) -> int: ...

    def add_school_days(self, start: date, n: int, la_code: str | None) -> date: ...


class WeekdaysOnly:
    """the stated fallback when no calendar is given: weekdays, no bank holidays.

    Counts the days after `start`: `add_school_days(Friday, 1)` is the Monday, and
    `school_days_between(start, end)` counts the weekdays in (start, end]. Knowing no
    holidays, it errs early (a limit falls due sooner than on the real calendar)."""

    def school_days_between(self, start: date, end: date, la_code: str | None) -> int:
        if end < start:
            return -self.school_days_between(end, start, la_code)
        return sum(1 for n in range(1, (end - start).days + 1)
                   if (start + timedelta(days=n)).weekday() < 5)

    def add_school_days(self, start: date, n: int, la_code: str | None) -> date:
        step = timedelta(days=1 if n >= 0 else -1)
        day, left = start, abs(n)
        while left:
            day += step
            if day.weekday() < 5:
                left -= 1
        return day


@dataclass(frozen=True)
class LocalPolicy:
    """Limits that are the hub operator's or the LA's own policy, not law: each is None
    (not measured) unless configured."""

    concern_open_weeks: int | None = None
    """SENDHUB_POLICY_CONCERN_OPEN_WEEKS: a concern followed through by an assessment
    within this many weeks (`concern_open_policy`)."""
    plan_gap_weeks: int | None = None
    """SENDHUB_POLICY_PLAN_GAP_WEEKS: a plan in place within this many weeks of needs being
    found or of arriving at a new setting (the report's measured plan gaps)."""


@dataclass(frozen=True)
class ClockResult:
    """One clock for one pupil: which rule, from when, due when, and where it stands."""

    rule: str
    """A stable name, e.g. `ehc_final_plan_20_weeks`."""
    title: str
    source: str
    """The regulation or guidance, or `local policy (SENDHUB_...)`."""
    statutory: bool
    upn: str
    setting_urn: str | None
    """The school the pupil attended when the clock started (per-school figures)."""
    la_code: str | None
    """The local authority the clock runs for."""
    started_on: date
    due_on: date
    ended_on: date | None
    status: ClockStatus
    event_id: UUID | None = None
    """The event that started the clock (the request, the plan, the review, the
    transfer, the move, the concern), when there is one."""
    note: str = ""


@dataclass(frozen=True)
class ClockRule:
    """A named rule: what must happen, by when, and the text it comes from."""

    rule: str
    title: str
    source: str
    statutory: bool
    limit: str
    exceptions: str = ""


ASSESSMENT_DECISION = ClockRule(
    "ehc_assessment_decision_6_weeks",
    "Decision whether to carry out an EHC needs assessment",
    "SEND Regulations 2014, reg. 4 and 5(1)", True,
    "6 weeks from the LA receiving the request",
    "SEND Regulations 2014, reg. 5(4)")
NOT_TO_ISSUE = ClockRule(
    "ehc_decision_not_to_issue_16_weeks",
    "Decision not to issue an EHC plan, after the assessment",
    "SEND Regulations 2014, reg. 10(1)", True,
    "16 weeks from the LA receiving the request",
    "SEND Regulations 2014, reg. 10(4)")
FINAL_PLAN = ClockRule(
    "ehc_final_plan_20_weeks",
    "Final EHC plan issued",
    "SEND Regulations 2014, reg. 13(2)", True,
    "20 weeks from the LA receiving the request",
    "SEND Regulations 2014, reg. 13(3), which refers to reg. 10(4)(a)-(d)")
ANNUAL_REVIEW = ClockRule(
    "ehc_annual_review_12_months",
    "Annual review of the EHC plan",
    "Children and Families Act 2014, s.44(1)", True,
    "12 months from the plan, then from each review; after a transfer to another LA, "
    "the later of 12 months from the last review (or the plan) and 3 months from the "
    "transfer (SEND Regulations 2014, reg. 15(5))")
PHASE_TRANSFER = ClockRule(
    "ehc_phase_transfer_review",
    "EHC plan reviewed and amended before a phase transfer",
    "SEND Regulations 2014, reg. 18", True,
    "before 15 February of the year of the transfer; before 31 March for secondary "
    "school to post-16")
FILE_SENT = ClockRule(
    "file_sent_15_school_days",
    "Pupil's file sent to the new school",
    "Education (Pupil Information) (England) Regulations 2005, reg. 9 (maintained schools; "
    "academies are strongly encouraged to follow it)", True,
    "15 school days from the pupil leaving")
CONCERN_OPEN = ClockRule(
    "concern_open_policy",
    "Concern followed through by an assessment",
    "local policy (SENDHUB_POLICY_CONCERN_OPEN_WEEKS), not statute", False,
    "the configured weeks from the concern")

RULES: dict[str, ClockRule] = {r.rule: r for r in (
    ASSESSMENT_DECISION, NOT_TO_ISSUE, FINAL_PLAN, ANNUAL_REVIEW, PHASE_TRANSFER, FILE_SENT,
    CONCERN_OPEN)}
"""Every rule, in the order the report lists them."""

PHASE_TRANSFER_DEADLINES: dict[MoveKind, tuple[int, int]] = {
    MoveKind.PHASE_TRANSFER: (2, 15), MoveKind.POST16: (3, 31)}
"""Reg. 18(1): review and amend the plan *before* 15 February of the calendar year of the
transfer, or before 31 March for a transfer from secondary school to a post-16
institution. The due day is the day before these."""


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, or the last day of a shorter month."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def twelve_months_after(day: date) -> date:
    """The same day next year (29 February: 28 February): when an annual review is due."""
    return add_months(day, 12)


def setting_on(history: Sequence[HistoryEntry], day: date) -> str | None:
    """The school the pupil was attending on `day`: the destination of the last move
    effective on or before it (None for a move to an unknown destination; a post-16
    provider by its UKPRN), else the school of the last school event on or before it,
    else the school of the first school event."""
    ordered = _ordered(history)
    moves = sorted((h.event for h in ordered if isinstance(h.event, PupilMovedV1)
                    and h.event.payload.effective_date <= day),
                   key=lambda m: m.payload.effective_date)
    if moves:
        destination = moves[-1].payload.destination
        if isinstance(destination, SchoolDestination):
            return destination.urn
        if isinstance(destination, Post16Destination):
            return destination.ukprn
        return None
    schools = [(h.event.occurred_at.date(), h.event.source.urn) for h in ordered
               if isinstance(h.event.source, Source)]
    before = [urn for happened, urn in schools if happened <= day]
    if before:
        return before[-1]
    return schools[0][1] if schools else None


def all_clocks(history: Sequence[HistoryEntry], *, today: date, calendar: SchoolDays,
               policy: LocalPolicy = LocalPolicy()) -> list[ClockResult]:
    """Every clock the pupil's history starts, as it stands on `today`, in the order
    they started.

    `calendar` is for the clocks that count school days; none of the history's own does
    today (the file-sent clock is `file_sent_clock`, from the transfer's delivery)."""
    if not history:
        return []
    found = [*assessment_decision_clocks(history, today=today),
             *not_to_issue_clocks(history, today=today),
             *final_plan_clocks(history, today=today),
             *annual_review_clocks(history, today=today),
             *phase_transfer_clocks(history, today=today),
             *concern_policy_clocks(history, today=today, policy=policy)]
    order = list(RULES)
    return sorted(found, key=lambda c: (c.started_on, order.index(c.rule)))


def assessment_decision_clocks(history: Sequence[HistoryEntry], *,
                               today: date) -> list[ClockResult]:
    """`ehc_assessment_decision_6_weeks`: the LA decides whether to assess within 6 weeks
    of receiving the request (either decision ends the clock). A later decision of the
    LA's (on the plan) without a recorded assessment decision implies it was made by
    then."""
    found = []
    for case in _la_cases(history):
        due = case.requested_on + timedelta(weeks=6)
        ended, note = case.assessment_decided_on, ""
        if case.assessment_decision is not None:
            note = ("decided to assess" if case.assessment_decision == "assess"
                    else "decided not to assess")
        elif later := [d for d in (case.plan_decided_on, case.plan_issued_on) if d]:
            ended = min(later)
            note = "no assessment decision recorded; the LA's later decision implies it"
        status = _status(due, ended, today)
        status, note = _excepted(status, note, case.exceptions.get("assessment_decision"),
                                 "SEND Regulations 2014, reg. 5(4)")
        found.append(_result(ASSESSMENT_DECISION, history, case.requested_on, due, ended,
                             status, case.la_code, case.event_id, note))
    return found


def not_to_issue_clocks(history: Sequence[HistoryEntry], *, today: date) -> list[ClockResult]:
    """`ehc_decision_not_to_issue_16_weeks`: once the LA has decided to assess, a decision
    not to issue a plan is due within 16 weeks of the request. A decision to issue (or a
    plan issued) stops it: the 20-week clock runs instead."""
    found = []
    for case in _la_cases(history):
        assessing = case.assessment_decision == "assess" or (
            case.assessment_decision is None
            and (case.plan_decision is not None or case.plan_issued_on is not None))
        if not assessing:
            continue
        due = case.requested_on + timedelta(weeks=16)
        ended: date | None
        if case.plan_decision == "not_issue":
            ended = case.plan_decided_on
            status, note = _excepted(_status(due, ended, today), "decided not to issue a plan",
                                     case.exceptions.get("plan_decision"),
                                     "SEND Regulations 2014, reg. 10(4)")
        elif case.plan_decision == "issue" or case.plan_issued_on is not None:
            ended = case.plan_decided_on or case.plan_issued_on
            status, note = "stopped", "decided to issue a plan: the 20-week clock runs instead"
        else:
            ended, note = None, ""
            status = _status(due, None, today)
        found.append(_result(NOT_TO_ISSUE, history, case.requested_on, due, ended, status,
                             case.la_code, case.event_id, note))
    return found


def final_plan_clocks(history: Sequence[HistoryEntry], *, today: date) -> list[ClockResult]:
    """`ehc_final_plan_20_weeks`: the final plan issued within 20 weeks of the LA receiving
    the request; a request declined at either stage stops it (never overdue)."""
    found = []
    for case in _la_cases(history):
        due = case.requested_on + timedelta(weeks=20)
        ended: date | None
        status: ClockStatus
        if case.assessment_decision == "not_assess":
            ended, status = case.assessment_decided_on, "stopped"
            note = "the LA decided not to assess: no plan is due"
        elif case.plan_decision == "not_issue":
            ended, status = case.plan_decided_on, "stopped"
            note = "the LA decided not to issue a plan: no plan is due"
        else:
            ended, note = case.plan_issued_on, ""
            status, note = _excepted(_status(due, ended, today), note,
                                     case.exceptions.get("plan_issued"),
                                     "SEND Regulations 2014, reg. 13(3), which refers to reg. 10(4)(a)-(d)")
            earlier = [e for k, e in case.exceptions.items() if k != "plan_issued"]
            if status == "overdue" and earlier:
                note = (f"an exception was recorded for an earlier limit "
                        f"({', '.join(words(e.value) for e in earlier)}); the 20 weeks' own "
                        "exceptions (reg. 13(3)) are recorded with the plan")
        found.append(_result(FINAL_PLAN, history, case.requested_on, due, ended, status,
                             case.la_code, case.event_id, note))
    return found


def annual_review_clocks(history: Sequence[HistoryEntry], *, today: date) -> list[ClockResult]:
    """`ehc_annual_review_12_months`, for each EHC plan the LA issued (the current one and
    those ceased): due 12 months after the plan, then 12 months after each review held
    (any LA's `ehc_annual_review` held while the plan was maintained).

    A transfer to another LA ends the old LA's clock (`stopped`, or `overdue` if the
    review was already due) and starts the new LA's, due at the later of 12 months from
    the last review (or the plan) and 3 months from the transfer (SEND Regulations 2014,
    reg. 15(5)). Ceasing the plan stops the open clock, unless the review was already
    overdue then: that clock stays `overdue`, ended on the day the plan ceased."""
    record = record_at(history)
    plans: list[tuple[EHCPlan, date | None]] = [
        (plan, ceased.payload.ceased_on) for plan, ceased in record.ceased_plans]
    if record.ehc_plan is not None:
        plans.append((record.ehc_plan, None))
    issued = {h.event.event_id: h.event for h in history if isinstance(h.event, EHCPlanIssuedV1)}
    found: list[ClockResult] = []
    for plan, ceased_on in plans:
        first = issued.get(plan.event_id)
        la = first.payload.maintaining_la if first is not None else plan.maintaining_la
        anchor = start = plan.issued_on
        due, started_by, note = twelve_months_after(anchor), plan.event_id, ""
        for day, step in _reviews_and_transfers(history, plan, ceased_on):
            if isinstance(step, EHCAnnualReviewV1):
                found.append(_result(ANNUAL_REVIEW, history, start, due, day,
                                     _status(due, day, today), la, started_by, note))
                anchor = start = day
                due, started_by, note = twelve_months_after(day), step.event_id, ""
                continue
            to_la = step.payload.to_la
            late = day > due
            found.append(_result(
                ANNUAL_REVIEW, history, start, due, day, "overdue" if late else "stopped", la,
                started_by, f"transferred to LA {to_la} on {day}"
                + ("; the review was already overdue" if late else "")))
            due = max(twelve_months_after(anchor), add_months(day, 3))
            note = (f"transferred from LA {la} on {day}: due at the later of 12 months from "
                    f"{anchor} and 3 months from the transfer (SEND Regulations 2014, reg. 15(5))")
            la, start, started_by = to_la, day, step.event_id
        if ceased_on is None:
            found.append(_result(ANNUAL_REVIEW, history, start, due, None,
                                 _status(due, None, today), la, started_by, note))
        elif ceased_on > start:
            late = ceased_on > due
            found.append(_result(
                ANNUAL_REVIEW, history, start, due, ceased_on, "overdue" if late else "stopped",
                la, started_by, f"the plan ceased on {ceased_on}"
                + ("; the review was already overdue" if late else "")))
    return found


def _reviews_and_transfers(history: Sequence[HistoryEntry], plan: EHCPlan, ceased_on: date | None,
                           ) -> list[tuple[date, EHCAnnualReviewV1 | EHCPlanTransferredV1]]:
    """The reviews held and transfers made while the plan was maintained (after it was
    issued, up to the day it ceased), by date; a review on the day of a transfer first."""
    def maintained(day: date) -> bool:
        return plan.issued_on < day and (ceased_on is None or day <= ceased_on)

    steps: list[tuple[date, int, EHCAnnualReviewV1 | EHCPlanTransferredV1]] = []
    for h in _ordered(history):
        e = h.event
        if isinstance(e, EHCAnnualReviewV1) and maintained(e.payload.held_on):
            steps.append((e.payload.held_on, 0, e))
        elif isinstance(e, EHCPlanTransferredV1) and maintained(e.payload.transferred_on):
            steps.append((e.payload.transferred_on, 1, e))
    return [(day, step) for day, _, step in sorted(steps, key=lambda s: (s[0], s[1]))]


def phase_transfer_clocks(history: Sequence[HistoryEntry], *, today: date) -> list[ClockResult]:
    """`ehc_phase_transfer_review`: a move between phases (`phase_transfer`, or `post16`
    from secondary school) effective in year Y, while the LA maintained an EHC plan for
    the pupil, needs the plan reviewed or amended (an `ehc_annual_review` or an
    `ehc_plan_amended`) after 1 September of Y-1 and before 15 February of Y (before
    31 March of Y for post-16). A plan first issued after that day names the next setting
    itself and starts no clock."""
    ordered = _ordered(history)
    done: list[date] = []
    for h in ordered:
        if isinstance(h.event, EHCAnnualReviewV1):
            done.append(h.event.payload.held_on)
        elif isinstance(h.event, EHCPlanAmendedV1):
            done.append(h.event.payload.amended_on)
    done.sort()
    found: list[ClockResult] = []
    seen: set[tuple[int, MoveKind]] = set()
    for n, h in enumerate(ordered):
        move = h.event
        if not isinstance(move, PupilMovedV1) or move.payload.move_kind not in PHASE_TRANSFER_DEADLINES:
            continue
        year, kind = move.payload.effective_date.year, move.payload.move_kind
        plan = record_at(ordered[:n + 1]).ehc_plan
        month, day = PHASE_TRANSFER_DEADLINES[kind]
        due = date(year, month, day) - timedelta(days=1)
        if plan is None or plan.issued_on > due or (year, kind) in seen:
            continue
        seen.add((year, kind))
        window_opens = date(year - 1, 9, 1)
        first = next((d for d in done
                      if window_opens <= d <= move.payload.effective_date), None)
        status = _status(due, first, today)
        deadline = f"before {date(year, month, day):%-d %B %Y}"
        found.append(_result(
            PHASE_TRANSFER, history, max(window_opens, plan.issued_on), due, first, status,
            plan.maintaining_la, move.event_id,
            f"{words(kind.value)} effective {move.payload.effective_date}: reviewed or amended "
            f"{deadline} (reg. 18(1))"))
    return found


def concern_policy_clocks(history: Sequence[HistoryEntry], *, today: date,
                          policy: LocalPolicy) -> list[ClockResult]:
    """`concern_open_policy` (local policy, not statute), only when
    `policy.concern_open_weeks` is set: each concern followed through within that many
    weeks by an assessment that answers it (`services.shared.sen_record.answers`)."""
    weeks = policy.concern_open_weeks
    if weeks is None:
        return []
    record = record_at(history)
    found = []
    for concern in record.concerns:
        start = concern.occurred_at.date()
        due = start + timedelta(weeks=weeks)
        answered = [a.occurred_at.date() for a in record.assessments if answers(a, concern)]
        ended = min(answered) if answered else None
        found.append(_result(
            CONCERN_OPEN, history, start, due, ended, _status(due, ended, today), None,
            concern.event_id, f"local policy, not statute: {weeks} weeks; "
            f"{', '.join(concern.payload.areas_of_need)}"))
    return found


def file_sent_clock(*, upn: str, leaving_urn: str, leaving_la: str | None, left_on: date,
                    first_sent_on: date | None, today: date,
                    calendar: SchoolDays) -> ClockResult:
    """The former school's file sent within 15 school days of the pupil leaving
    (Education (Pupil Information) (England) Regulations 2005, reg. 9). A file sent
    before the pupil left is in time."""
    due = calendar.add_school_days(left_on, 15, leaving_la)
    status = _status(due, first_sent_on, today)
    note = ""
    if first_sent_on is not None and first_sent_on < left_on:
        note = "sent before the pupil left"
    elif first_sent_on is not None:
        note = (f"sent after {calendar.school_days_between(left_on, first_sent_on, leaving_la)} "
                "school days")
    return ClockResult(
        rule=FILE_SENT.rule, title=FILE_SENT.title, source=FILE_SENT.source, statutory=True,
        upn=upn, setting_urn=leaving_urn, la_code=leaving_la, started_on=left_on, due_on=due,
        ended_on=first_sent_on, status=status, note=note)


def _ordered(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(history, key=lambda h: (h.event.occurred_at, h.version))


def _la_cases(history: Sequence[HistoryEntry]) -> list[EHCRequestCase]:
    """The requests the LA recorded (a school's own record of asking starts no clock)."""
    return [c for c in record_at(history).ehc_requests if c.la_code is not None]


def _status(due: date, done: date | None, today: date) -> ClockStatus:
    if done is not None:
        return "met" if done <= due else "late"
    return "overdue" if today > due else "open"


def _excepted(status: ClockStatus, note: str, exception: TimeLimitException | None,
              where: str) -> tuple[ClockStatus, str]:
    """A published exception turns a missed limit into `exception`; on a limit met it is
    only noted."""
    if exception is None:
        return status, note
    said = f"published exception: {words(exception.value)} ({where})"
    if status == "late":
        return "exception", "; ".join(p for p in (note, said) if p)
    return status, "; ".join(p for p in (note, f"{said}, not needed: in time") if p)


def _upn(history: Sequence[HistoryEntry]) -> str:
    return max(history, key=lambda h: h.version).upn


def _result(rule: ClockRule, history: Sequence[HistoryEntry], started_on: date, due_on: date,
            ended_on: date | None, status: ClockStatus, la_code: str | None,
            event_id: UUID | None, note: str) -> ClockResult:
    return ClockResult(
        rule=rule.rule, title=rule.title, source=rule.source, statutory=rule.statutory,
        upn=_upn(history), setting_urn=setting_on(history, started_on), la_code=la_code,
        started_on=started_on, due_on=due_on, ended_on=ended_on, status=status,
        event_id=event_id, note=note)
