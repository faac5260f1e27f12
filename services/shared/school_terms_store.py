"""Local authorities' term dates in PostgreSQL (`school_terms`, migration 0004).

An import replaces, for each LA in it, all of that LA's periods, in one transaction: a
file is an LA's whole calendar, and LAs not in it keep theirs. The owner imports
(`sendhub calendar import`); transfers and the reader only load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from services.shared.school_days import SchoolCalendar, TermPeriod

log = logging.getLogger("sendhub.calendar")


def import_terms(conninfo: str, terms: Sequence[TermPeriod], at: datetime) -> dict[str, int]:
    """Replace the periods of every LA in `terms` with these; how many each LA now has."""
    by_la: dict[str, list[TermPeriod]] = {}
    for period in terms:
        by_la.setdefault(period.la_code, []).append(period)
    with psycopg.connect(conninfo) as conn, conn.transaction():
        conn.execute("DELETE FROM school_terms WHERE la_code = ANY(%s)", (sorted(by_la),))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO school_terms (la_code, name, starts_on, ends_on, imported_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(p.la_code, p.name, p.starts_on, p.ends_on, at) for p in terms])
    return {la: len(periods) for la, periods in sorted(by_la.items())}


def load_terms(conninfo: str) -> list[TermPeriod]:
    """Every LA's periods, by LA and start."""
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT la_code, name, starts_on, ends_on FROM school_terms "
                            "ORDER BY la_code, starts_on").fetchall()
    return [TermPeriod(**row) for row in rows]


def load_calendar(conninfo: str) -> SchoolCalendar:
    return SchoolCalendar(load_terms(conninfo))


class StoredCalendar:
    """The calendar as stored, loaded again when older than `max_age_seconds`, so a
    running service sees a new import without a restart. A failed reload keeps the
    calendar it had (and is logged); the first load's failure is raised."""

    def __init__(self, conninfo: str, max_age_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conninfo, self.max_age_seconds, self.clock = conninfo, max_age_seconds, clock
        self._calendar = load_calendar(conninfo)
        self._loaded = clock()

    def __call__(self) -> SchoolCalendar:
        if self.clock() - self._loaded >= self.max_age_seconds:
            try:
                self._calendar = load_calendar(self.conninfo)
            except psycopg.Error as exc:
                log.warning("calendar.reload_failed", extra={"error": str(exc)})
            self._loaded = self.clock()
        return self._calendar
