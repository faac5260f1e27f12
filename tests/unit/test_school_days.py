"""School days: England's bank holidays, an LA's term dates where they are known, weekdays
less bank holidays where they are not; and the term dates CSV."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.shared.school_days import (
    BANK_HOLIDAYS_ONLY,
    SchoolCalendar,
    TermDatesFileError,
    TermPeriod,
    academic_year_of,
    parse_term_dates_csv,
)
from tests.conftest import ROOT

SAMPLE, SAMPLE_PROBLEMS = parse_term_dates_csv(
    (ROOT / "data/term-dates-sample.csv").read_text(encoding="utf-8"))
BRISTOL = SchoolCalendar(SAMPLE)  # LA 801, 2021-22 to 2026-27; LA 803 has none


def test_the_sample_has_six_periods_a_year_for_bristol_and_none_for_803() -> None:
    assert SAMPLE_PROBLEMS == []
    assert BRISTOL.la_codes() == ["801"]
    assert BRISTOL.academic_years("801") == [2021, 2022, 2023, 2024, 2025, 2026]
    assert all(sum(p.academic_year == y for p in SAMPLE) == 6 for y in range(2021, 2027))
    assert BRISTOL.academic_years("803") == []


def test_the_late_may_bank_holiday_is_not_a_school_day() -> None:
    # Friday 22 May 2026 to Tuesday 26 May: Monday 25 May is the spring bank holiday.
    assert not BANK_HOLIDAYS_ONLY.is_school_day(date(2026, 5, 25))
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2026, 5, 22), date(2026, 5, 26)) == 1
    assert BANK_HOLIDAYS_ONLY.add_school_days(date(2026, 5, 22), 1) == date(2026, 5, 26)


def test_christmas_and_boxing_day_substitutes_are_not_school_days() -> None:
    # 2026: Christmas on a Friday, Boxing Day on Saturday, so Monday 28 December is off.
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2026, 12, 24), date(2026, 12, 29)) == 1
    # 2027: both on the weekend, so Monday 27 and Tuesday 28 December are off.
    assert not BANK_HOLIDAYS_ONLY.is_school_day(date(2027, 12, 27))
    assert not BANK_HOLIDAYS_ONLY.is_school_day(date(2027, 12, 28))
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2027, 12, 24), date(2027, 12, 31)) == 3


def test_weekends_count_for_nothing_and_the_count_starts_after_the_first_day() -> None:
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2026, 1, 2), date(2026, 1, 5)) == 1
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2026, 1, 5), date(2026, 1, 26)) == 15
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2026, 1, 5), date(2026, 1, 5)) == 0
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2026, 1, 26), date(2026, 1, 5)) == 0
    assert not BANK_HOLIDAYS_ONLY.is_school_day(date(2026, 1, 3))  # a Saturday


def test_a_half_term_is_not_counted_for_an_la_with_term_dates() -> None:
    # Friday 24 October 2025, the last day of Bristol's autumn 1, to Monday 3 November.
    last_day, back = date(2025, 10, 24), date(2025, 11, 3)
    assert BRISTOL.school_days_between(last_day, back, "801") == 1
    assert not BRISTOL.is_school_day(date(2025, 10, 29), "801")
    assert BRISTOL.add_school_days(last_day, 1, "801") == back
    # LA 803 has no term dates: the half-term week is counted.
    assert BRISTOL.school_days_between(last_day, back, "803") == 6
    assert BRISTOL.school_days_between(last_day, back, None) == 6


def test_bank_holidays_in_term_are_still_not_school_days() -> None:
    # Bristol's summer 1 of 2022-23 had May Day and the Coronation bank holiday in it.
    assert BRISTOL.school_days_between(date(2023, 4, 28), date(2023, 5, 9), "801") == 5
    assert not BRISTOL.is_school_day(date(2023, 5, 8), "801")


def test_a_year_without_term_dates_falls_back_to_weekdays_less_bank_holidays() -> None:
    # Wednesday 21 July 2027 ends Bristol's 2026-27; 2027-28 is not imported. The summer
    # holiday counts for nothing (term dates known), then from 1 September every weekday.
    assert BRISTOL.has_term_dates("801", 2026) and not BRISTOL.has_term_dates("801", 2027)
    assert BRISTOL.school_days_between(date(2027, 7, 21), date(2027, 8, 31), "801") == 0
    assert BRISTOL.school_days_between(date(2027, 7, 21), date(2027, 9, 6), "801") == 4
    # The fallback itself: Monday 30 August 2027 is the late summer bank holiday.
    assert BANK_HOLIDAYS_ONLY.school_days_between(date(2027, 8, 27), date(2027, 9, 1)) == 2
    assert BRISTOL.add_school_days(date(2027, 7, 21), 1, "801") == date(2027, 9, 1)


def test_counting_runs_across_academic_years_with_term_dates() -> None:
    # From the last day of 2024-25 to the first of 2025-26's autumn 1, then a full year on.
    assert BRISTOL.school_days_between(date(2025, 7, 22), date(2025, 9, 3), "801") == 1
    whole_year = BRISTOL.school_days_between(date(2025, 8, 31), date(2026, 8, 31), "801")
    assert whole_year == sum(
        BRISTOL.school_days_between(p.starts_on - timedelta(days=1), p.ends_on, "801")
        for p in SAMPLE if p.academic_year == 2025) == 195


@given(start=st.dates(min_value=date(2020, 1, 1), max_value=date(2028, 12, 31)),
       n=st.integers(min_value=0, max_value=60),
       la_code=st.sampled_from([None, "801", "803"]))
def test_adding_school_days_is_the_inverse_of_counting_them(
        start: date, n: int, la_code: str | None) -> None:
    end = BRISTOL.add_school_days(start, n, la_code)
    assert BRISTOL.school_days_between(start, end, la_code) == n
    assert n == 0 or BRISTOL.is_school_day(end, la_code)


def test_adding_a_negative_number_of_school_days_is_refused() -> None:
    with pytest.raises(ValueError, match="must be 0 or more"):
        BANK_HOLIDAYS_ONLY.add_school_days(date(2026, 1, 5), -1)


def test_an_autumn_term_starting_in_august_belongs_to_the_year_it_leads_into() -> None:
    early = SchoolCalendar([TermPeriod("802", "Autumn 1", date(2025, 8, 28), date(2025, 10, 24)),
                            TermPeriod("802", "Summer 2", date(2026, 6, 8), date(2026, 7, 22))])
    assert early.academic_years("802") == [2025]
    assert academic_year_of(date(2025, 8, 28)) == 2024  # 2024-25 is not known: weekdays
    assert early.is_school_day(date(2025, 8, 28), "802")
    assert not early.is_school_day(date(2025, 10, 27), "802")  # after the only period


def test_the_basis_says_what_was_counted() -> None:
    assert BRISTOL.basis("801") == (
        "school days: LA 801's term dates less England's bank holidays (term dates for "
        "2021-22 to 2026-27; in other years, weekdays less bank holidays)")
    assert BRISTOL.basis("803") == (
        "weekdays less England's bank holidays (no term dates imported for LA 803)")
    assert BRISTOL.basis(None) == (
        "weekdays less England's bank holidays (no local authority known, so no term dates)")
    gaps = SchoolCalendar([period for y in (2021, 2022, 2024) for period in (
        TermPeriod("802", "Autumn 1", date(y, 9, 3), date(y, 10, 24)),
        TermPeriod("802", "Summer 2", date(y + 1, 6, 8), date(y + 1, 7, 22)))])
    assert "term dates for 2021-22 to 2022-23, 2024-25;" in gaps.basis("802")


def test_bad_rows_of_term_dates_are_reported_by_line_and_the_rest_kept() -> None:
    text = ("LA (code),Term,Start,End\n"
            "801,Autumn 1,2025-09-03,2025-10-24\n"          # 2: kept
            "80,Autumn 1,2025-09-03,2025-10-24\n"            # 3
            "803,,2025-09-03,2025-10-24\n"                   # 4
            "803,Autumn 1,03/09/2025,2025-10-24\n"           # 5
            "803,Spring 1,2026-02-30,2026-03-01\n"           # 6
            "803,Autumn 2,2025-12-19,2025-11-03\n"           # 7
            "801,Autumn 2,2025-10-20,2025-12-19\n"           # 8: overlaps line 2
            "803,Autumn 1,2025-09-03,2025-10-24\n"           # 9: kept (another LA)
            "803,Summer,2026-06-01,2026-09-30\n")            # 10: into 2026-27
    periods, problems = parse_term_dates_csv(text)
    assert [(p.la_code, p.name, p.starts_on) for p in periods] == [
        ("801", "Autumn 1", date(2025, 9, 3)), ("803", "Autumn 1", date(2025, 9, 3))]
    assert [(p.line, p.message) for p in problems] == [
        (3, "LA (code) '80' is not 3 digits"),
        (4, "Term is empty"),
        (5, "Start '03/09/2025' is not a date in the form YYYY-MM-DD"),
        (6, "Start '2026-02-30' is not a real date"),
        (7, "End 2025-11-03 is before Start 2025-12-19"),
        (8, "Autumn 2 (2025-10-20 to 2025-12-19) overlaps Autumn 1 (2025-09-03 to "
            "2025-10-24, line 2) of LA 801"),
        (10, "Summer runs from 2025-26 into 2026-27 (a term may start in August, but "
             "otherwise lies within one academic year, 1 September to 31 August)"),
    ]


def test_a_file_without_the_columns_is_refused_naming_them() -> None:
    with pytest.raises(TermDatesFileError, match=r"missing column\(s\) Term, End; expected "
                       r"the columns LA \(code\), Term, Start, End"):
        parse_term_dates_csv("LA (code),Start,Finish\n801,2025-09-03,2025-10-24\n")


def test_a_one_day_period_and_a_byte_order_mark_are_accepted() -> None:
    periods, problems = parse_term_dates_csv(
        "\ufeffLA (code),Term,Start,End\n801,Autumn 1,2025-09-03,2025-09-03\n")
    assert problems == [] and periods[0].starts_on == periods[0].ends_on


def test_a_year_with_only_some_of_its_terms_counts_by_the_fallback() -> None:
    """Only the autumn of 2026-27 imported: the spring is not known to be a holiday, so
    the year counts weekdays less bank holidays rather than pushing deadlines months on."""
    autumn_only = SchoolCalendar([
        TermPeriod("801", "Autumn 1", date(2026, 9, 2), date(2026, 10, 23)),
        TermPeriod("801", "Autumn 2", date(2026, 11, 2), date(2026, 12, 18))])
    assert autumn_only.incomplete_years("801") == [2026]
    assert not autumn_only.has_term_dates("801", 2026)
    assert autumn_only.add_school_days(date(2026, 12, 10), 15, "801") == \
        BANK_HOLIDAYS_ONLY.add_school_days(date(2026, 12, 10), 15, None)
