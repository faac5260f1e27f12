"""School days, for the hub's clocks that are measured in them.

Pure: no I/O. A day is a school day when it is a weekday, not one of England's bank
holidays (the `holidays` library's `GB`/`ENG` calendar, substitute days included), and,
where the local authority's term dates for that day's academic year (1 September to
31 August) are known, inside one of its term periods (a term or a half-term, both days
inclusive; the days between them are holidays). Where they are not known, the stated
fallback is weekdays less bank holidays, so a clock errs early rather than late. INSET
days are not known: term dates are the LA's published pupil dates.

Term dates are loaded from a CSV (`parse_term_dates_csv`, columns `LA (code)`, `Term`,
`Start`, `End`) by `sendhub calendar import`, and kept in `school_terms`
(`services/shared/school_terms_store.py`). A bad row is reported with its line number
and why; the good rows are still imported.

Counting is by table: each (LA, academic year) is worked out once, day by day, into
running totals, so counting a few hundred days for thousands of pupils is a few lookups
each. Years without term dates share one table per academic year.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import holidays

COLUMNS = ("LA (code)", "Term", "Start", "End")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def academic_year_of(day: date) -> int:
    """The academic year a day falls in, named by the calendar year it starts in
    (1 September): 2025 is 2025-26."""
    return day.year if day.month >= 9 else day.year - 1


def academic_year_label(year: int) -> str:
    """2025 -> "2025-26"."""
    return f"{year}-{(year + 1) % 100:02d}"


@functools.cache
def england_bank_holidays(year: int) -> frozenset[date]:
    """England's bank holidays in one calendar year, substitute days included."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


@dataclass(frozen=True)
class TermPeriod:
    """A term or half-term of one local authority's schools, both days inclusive."""

    la_code: str
    name: str
    starts_on: date
    ends_on: date

    @property
    def academic_year(self) -> int:
        """The academic year of its last day: an autumn term that starts in late August
        belongs to the year it leads into."""
        return academic_year_of(self.ends_on)

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


@dataclass(frozen=True)
class _Year:
    """One academic year of one LA (or of the fallback), worked out day by day."""

    first: date  # 1 September
    through: tuple[int, ...]  # through[i]: school days from `first` to first + i, inclusive
    days: tuple[date, ...]  # the school days, in order

    @property
    def total(self) -> int:
        return len(self.days)

    def up_to(self, day: date) -> int:
        """School days from 1 September up to and including `day`."""
        return self.through[(day - self.first).days]


def _years_in_words(years: Sequence[int]) -> str:
    """[2021, 2022, 2023, 2025] -> "2021-22 to 2023-24, 2025-26"."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(academic_year_label(r[0]) if len(r) == 1
                     else f"{academic_year_label(r[0])} to {academic_year_label(r[-1])}"
                     for r in runs)


def _whole_year(periods: Sequence[TermPeriod]) -> bool:
    """A school year's terms run from an autumn start (August or September) to a summer
    end (July or August)."""
    return (min(p.starts_on for p in periods).month in (8, 9)
            and max(p.ends_on for p in periods).month in (7, 8))


class SchoolCalendar:
    """England's bank holidays and, per local authority, its term dates (module
    docstring). `la_code=None` counts by the fallback: weekdays less bank holidays."""

    def __init__(self, terms: Sequence[TermPeriod] = ()) -> None:
        by_la: dict[str, list[TermPeriod]] = {}
        for period in sorted(terms, key=lambda t: (t.la_code, t.starts_on, t.ends_on)):
            by_la.setdefault(period.la_code, []).append(period)
        self._terms = {la: tuple(periods) for la, periods in by_la.items()}
        years: dict[str, dict[int, list[TermPeriod]]] = {}
        for la, periods in self._terms.items():
            for p in periods:
                years.setdefault(la, {}).setdefault(p.academic_year, []).append(p)
        self._known = {la: frozenset(y for y, ps in by_year.items() if _whole_year(ps))
                       for la, by_year in years.items()}
        self._partial = {la: frozenset(y for y, ps in by_year.items() if not _whole_year(ps))
                         for la, by_year in years.items()}
        self._years: dict[tuple[str | None, int], _Year] = {}

    @property
    def terms(self) -> tuple[TermPeriod, ...]:
        """Every term period, by LA and start."""
        return tuple(p for la in sorted(self._terms) for p in self._terms[la])

    def la_codes(self) -> list[str]:
        """The LAs whose term dates are known."""
        return sorted(self._terms)

    def academic_years(self, la_code: str | None) -> list[int]:
        """The academic years for which the LA's term dates are known."""
        return sorted(self._known.get(la_code or "", ()))

    def incomplete_years(self, la_code: str) -> list[int]:
        """Academic years with some of the LA's terms but not the whole school year
        (autumn to summer): counted by the fallback, as if none were known, since a
        day outside the imported terms is not known to be a holiday."""
        return sorted(self._partial.get(la_code, ()))

    def has_term_dates(self, la_code: str | None, academic_year: int) -> bool:
        return la_code is not None and academic_year in self._known.get(la_code, ())

    def _year(self, la_code: str | None, academic_year: int) -> _Year:
        key = la_code if self.has_term_dates(la_code, academic_year) else None
        year = self._years.get((key, academic_year))
        if year is None:
            year = self._years[(key, academic_year)] = self._work_out(key, academic_year)
        return year

    def _work_out(self, la_code: str | None, academic_year: int) -> _Year:
        first = date(academic_year, 9, 1)
        length = (date(academic_year + 1, 9, 1) - first).days
        bank = england_bank_holidays(academic_year) | england_bank_holidays(academic_year + 1)
        # Periods that touch the year; starts sorted, so `bisect` finds a day's period.
        last = first + timedelta(days=length - 1)
        periods = [p for p in self._terms.get(la_code or "", ())
                   if p.ends_on >= first and p.starts_on <= last]
        starts = [p.starts_on for p in periods]
        days: list[date] = []
        through: list[int] = []
        for offset in range(length):
            day = first + timedelta(days=offset)
            if day.weekday() < 5 and day not in bank and (la_code is None or any(
                    p.covers(day) for p in periods[:bisect_right(starts, day)])):
                days.append(day)
            through.append(len(days))
        return _Year(first, tuple(through), tuple(days))

    def is_school_day(self, day: date, la_code: str | None = None) -> bool:
        year = self._year(la_code, academic_year_of(day))
        offset = (day - year.first).days
        return year.through[offset] - (year.through[offset - 1] if offset else 0) == 1

    def school_days_between(self, start: date, end: date, la_code: str | None = None) -> int:
        """School days after `start` up to and including `end`; 0 when `end` <= `start`."""
        if end <= start:
            return 0
        first, last = academic_year_of(start), academic_year_of(end)
        count = self._year(la_code, last).up_to(end) - self._year(la_code, first).up_to(start)
        for academic_year in range(first, last):
            count += self._year(la_code, academic_year).total
        return count

    def add_school_days(self, start: date, n: int, la_code: str | None = None) -> date:
        """The n-th school day after `start` (`start` itself when n is 0), so that
        `school_days_between(start, add_school_days(start, n)) == n`."""
        if n < 0:
            raise ValueError(f"cannot count {n} school days: n must be 0 or more")
        if n == 0:
            return start
        academic_year = academic_year_of(start)
        year = self._year(la_code, academic_year)
        wanted = year.up_to(start) + n  # counted from 1 September of start's year
        while wanted > year.total:
            wanted -= year.total
            academic_year += 1
            year = self._year(la_code, academic_year)
        return year.days[wanted - 1]

    def basis(self, la_code: str | None) -> str:
        """What is counted for this LA, in words."""
        if la_code is None:
            return "weekdays less England's bank holidays (no local authority known, so no term dates)"
        known = self.academic_years(la_code)
        if not known:
            return f"weekdays less England's bank holidays (no term dates imported for LA {la_code})"
        return (f"school days: LA {la_code}'s term dates less England's bank holidays (term "
                f"dates for {_years_in_words(known)}; in other years, weekdays less bank holidays)")


BANK_HOLIDAYS_ONLY = SchoolCalendar()
"""The fallback for every LA: weekdays less England's bank holidays, no term dates."""


# -- the term dates file (`sendhub calendar import`) ------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """A row of an imported CSV that was not used: its line number and why."""

    line: int
    message: str


class TermDatesFileError(ValueError):
    """The file is not a term dates CSV at all (missing columns)."""


def _date(column: str, value: str) -> date | str:
    """The date, or what is wrong with it."""
    if not _ISO_DATE.fullmatch(value):
        return f"{column} {value!r} is not a date in the form YYYY-MM-DD"
    try:
        return date.fromisoformat(value)
    except ValueError:
        return f"{column} {value!r} is not a real date"


def parse_term_dates_csv(text: str) -> tuple[list[TermPeriod], list[RowProblem]]:
    """Term periods from a CSV with columns `LA (code)`, `Term`, `Start`, `End` (dates
    YYYY-MM-DD, both inclusive; other columns are ignored). A row is refused, with its
    line number, when its LA code is not 3 digits, its term has no name, a date is not a
    real date, End is before Start, it runs across two academic years, or it overlaps
    an earlier row's period of the same LA; the good rows are returned."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise TermDatesFileError(
            f"not a term dates CSV: missing column(s) {', '.join(missing)}; expected the "
            f"columns {', '.join(COLUMNS)}, one term or half-term a row, dates as YYYY-MM-DD")
    periods: list[TermPeriod] = []
    lines: dict[TermPeriod, int] = {}
    problems: list[RowProblem] = []
    for line, row in enumerate(reader, start=2):
        found = _period(*((row.get(c) or "").strip() for c in COLUMNS))
        if isinstance(found, TermPeriod):
            clash = next((p for p in periods if p.la_code == found.la_code
                          and p.starts_on <= found.ends_on and found.starts_on <= p.ends_on), None)
            if clash is not None:
                found = (f"{found.name} ({found.starts_on} to {found.ends_on}) overlaps "
                         f"{clash.name} ({clash.starts_on} to {clash.ends_on}, line "
                         f"{lines[clash]}) of LA {found.la_code}")
        if isinstance(found, str):
            problems.append(RowProblem(line, found))
            continue
        periods.append(found)
        lines[found] = line
    return periods, problems


def _period(la_code: str, name: str, start: str, end: str) -> TermPeriod | str:
    """The row's period, or what is wrong with it."""
    if not re.fullmatch(r"\d{3}", la_code):
        return f"LA (code) {la_code!r} is not 3 digits"
    if not name:
        return "Term is empty"
    starts_on, ends_on = _date("Start", start), _date("End", end)
    if isinstance(starts_on, str):
        return starts_on
    if isinstance(ends_on, str):
        return ends_on
    if ends_on < starts_on:
        return f"End {ends_on} is before Start {starts_on}"
    first, last = academic_year_of(starts_on), academic_year_of(ends_on)
    if last != first and (last != first + 1 or starts_on.month != 8):
        return (f"{name} runs from {academic_year_label(first)} into "
                f"{academic_year_label(last)} (a term may start in "
                "August, but otherwise lies within one academic year, 1 September to 31 August)")
    return TermPeriod(la_code, name, starts_on, ends_on)
