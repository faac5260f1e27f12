"""The retention schedule's rule: a record is kept to the day, and due the day after."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contracts.accepted import AcceptedSchoolEventV1, Position
from contracts.school_events import SCHOOL_EVENT
from sendhub.retention import due_pupils, is_due, kept_until, readable_histories
from services.records.application import ConsumedPosition, RecordsApplication
from services.records.handlers import to_school_event_record
from tests.factories import random_upn, school_event


def test_kept_until_is_the_birthday_so_many_years_on() -> None:
    assert kept_until(date(2014, 2, 3), 31) == date(2045, 2, 3)
    assert kept_until(date(2012, 2, 29), 31) == date(2043, 2, 28)  # no 29th in 2043
    assert kept_until(date(2012, 2, 29), 32) == date(2044, 2, 29)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2030, 12, 31)),
       st.integers(min_value=1, max_value=40))
def test_a_record_is_kept_on_its_last_day_and_due_the_day_after(born: date, years: int) -> None:
    until = kept_until(born, years)
    assert (until.year - born.year, until.month) == (years, born.month)
    assert not is_due(born, until, years)
    assert is_due(born, until + timedelta(days=1), years)


def record(app: RecordsApplication, upn: str, born: str, *, version: int = 0) -> None:
    who = {"upn": upn, "given_name": "Ada", "family_name": "Test", "date_of_birth": born}
    accepted = AcceptedSchoolEventV1(
        accepted_at=datetime.now(UTC), upn_is_temporary=False,
        received_from=Position(topic="t", partition=0, offset=version),
        event=SCHOOL_EVENT.validate_python(school_event(pupil=who)))
    app.record_school_events([(to_school_event_record(accepted),
                               ConsumedPosition(f"retention-{upn}", 0, version))])


def test_due_pupils_on_the_boundary_days() -> None:
    app = RecordsApplication()
    kept_to_yesterday, kept_to_today, kept_to_tomorrow = random_upn(), random_upn(), random_upn()
    record(app, kept_to_yesterday, "1995-06-09")
    record(app, kept_to_today, "1995-06-10")
    record(app, kept_to_tomorrow, "1995-06-11")
    due = due_pupils(readable_histories(app), date(2026, 6, 10), 31)
    assert [(d.upn, d.kept_until) for d in due] == [(kept_to_yesterday, date(2026, 6, 9))]
    assert [d.upn for d in due_pupils(readable_histories(app), date(2026, 6, 12), 31)] == [
        kept_to_yesterday, kept_to_today, kept_to_tomorrow]


def test_the_newest_event_gives_the_date_of_birth() -> None:
    """A date of birth corrected by the school (a later event) is the one that counts."""
    app = RecordsApplication()
    upn = random_upn()
    record(app, upn, "1990-01-01")
    record(app, upn, "2010-01-01", version=1)
    assert due_pupils(readable_histories(app), date(2026, 6, 10), 31) == []
