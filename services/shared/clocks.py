"""The statutory clocks of a pupil's SEN history, each a named rule with its source, and
the local policies beside them, labelled as policy.

Pure: reads history entries (the shared read model) and counts days through a
`SchoolDays` calendar passed in. Used by the auditor's report, `sendhub oversight` and
the packet for a local authority that takes over a plan.

INTERFACE FIRST: the types and signatures below are what the report, oversight and
transfers code against; the rules are being filled in (issue 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol
from uuid import UUID

from services.shared.sen_record import HistoryEntry

ClockStatus = Literal["met", "late", "open", "overdue", "exception", "stopped"]
"""met: done by the due day; late: done after it; open: not done, not yet due;
overdue: not done and past due; exception: a published exception applies, so the limit
does not; stopped: the clock no longer runs (a request declined, a plan ceased)."""


class SchoolDays(Protocol):
    """What the clocks need of a school calendar (services.shared.school_days)."""

    def school_days_between(self, start: date, end: date, la_code: str | None) -> int: ...

    def add_school_days(self, start: date, n: int, la_code: str | None) -> date: ...


@dataclass(frozen=True)
class LocalPolicy:
    """Limits that are the hub operator's or the LA's own policy, not law: each is None
    (not measured) unless configured."""

    concern_open_weeks: int | None = None


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
    note: str = ""


def all_clocks(history: Sequence[HistoryEntry], *, today: date, calendar: SchoolDays,
               policy: LocalPolicy = LocalPolicy()) -> list[ClockResult]:
    """Every clock the pupil's history starts, as it stands on `today`."""
    raise NotImplementedError("issue 13: being written")


def file_sent_clock(*, upn: str, leaving_urn: str, leaving_la: str | None, left_on: date,
                    first_sent_on: date | None, today: date,
                    calendar: SchoolDays) -> ClockResult:
    """The former school's file sent within 15 school days of the pupil leaving
    (Education (Pupil Information) (England) Regulations 2005, reg. 9)."""
    raise NotImplementedError("issue 13: being written")
