"""Term dates on the real PostgreSQL: imported per LA, replaced by a re-import, loaded
back into a calendar; and `sendhub calendar import` and `list` as the operator runs them.

On a database of this module's own (`scratch_db`); the roles' grants on `school_terms`
are checked with the others' in test_database_roles.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from services.shared.school_days import TermPeriod
from services.shared.school_terms_store import (
    StoredCalendar,
    import_terms,
    load_calendar,
    load_terms,
)
from services.shared.settings import HubSettings
from tests.conftest import CLI, ROOT

pytestmark = pytest.mark.integration
AT = datetime(2026, 12, 2, 9, tzinfo=UTC)


def autumn(la: str, year: int) -> list[TermPeriod]:
    """The autumn half-terms and the last summer half-term of the school year starting
    in `year`: a whole school year (autumn to summer), so its term dates count."""
    return [TermPeriod(la, "Autumn 1", date(year, 9, 3), date(year, 10, 24)),
            TermPeriod(la, "Autumn 2", date(year, 11, 3), date(year, 12, 19)),
            TermPeriod(la, "Summer 2", date(year + 1, 6, 8), date(year + 1, 7, 22))]


@pytest.fixture
def conninfo(scratch_db: HubSettings) -> Iterator[str]:
    with psycopg.connect(scratch_db.database_conninfo) as conn:
        conn.execute("TRUNCATE school_terms")
    yield scratch_db.database_conninfo


def test_terms_are_imported_and_loaded_back_into_a_calendar(conninfo: str) -> None:
    assert import_terms(conninfo, [*autumn("801", 2025), *autumn("803", 2025)], AT) == {
        "801": 3, "803": 3}
    assert load_terms(conninfo) == [*autumn("801", 2025), *autumn("803", 2025)]
    calendar = load_calendar(conninfo)
    assert calendar.school_days_between(date(2025, 10, 24), date(2025, 11, 3), "801") == 1
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT DISTINCT imported_at FROM school_terms").fetchall() == [(AT,)]


def test_a_re_import_replaces_the_las_in_it_and_keeps_the_others(conninfo: str) -> None:
    import_terms(conninfo, [*autumn("801", 2025), *autumn("803", 2025)], AT)
    spring = TermPeriod("801", "Spring 1", date(2026, 1, 5), date(2026, 2, 13))
    assert import_terms(conninfo, [*autumn("801", 2026), spring], AT) == {"801": 4}
    assert load_terms(conninfo) == [spring, *autumn("801", 2026), *autumn("803", 2025)]
    calendar = load_calendar(conninfo)
    assert calendar.academic_years("801") == [2026]
    assert calendar.incomplete_years("801") == [2025]  # a spring term alone: the fallback
    assert calendar.academic_years("803") == [2025]


def test_an_import_that_fails_changes_nothing(conninfo: str) -> None:
    import_terms(conninfo, autumn("801", 2025), AT)
    twice = [*autumn("801", 2026), autumn("801", 2026)[0]]  # the same (LA, start) twice
    with pytest.raises(psycopg.errors.UniqueViolation):
        import_terms(conninfo, twice, AT)
    assert load_terms(conninfo) == autumn("801", 2025)


def test_a_stored_calendar_sees_a_new_import_once_it_is_old_enough(conninfo: str) -> None:
    now = [0.0]
    stored = StoredCalendar(conninfo, max_age_seconds=60, clock=lambda: now[0])
    assert stored().la_codes() == []
    import_terms(conninfo, autumn("801", 2025), AT)
    now[0] = 59.0
    assert stored().la_codes() == []
    now[0] = 60.0
    assert stored().la_codes() == ["801"]


def test_the_cli_imports_the_sample_and_lists_it(scratch_db: HubSettings, cli: CLI,
                                                 conninfo: str) -> None:
    here = {"SENDHUB_DATABASE_URL": str(scratch_db.database_url)}  # the module's database
    imported = cli("calendar", "import", "data/term-dates-sample.csv", **here)
    assert "LA 801: 36 term period(s), 2021-22 to 2026-27 (its earlier dates replaced)" in (
        imported.stdout)
    assert "Imported 36 term period(s) for 1 LA(s) from data/term-dates-sample.csv" in (
        imported.stdout)
    assert len(load_terms(conninfo)) == 36
    listed = cli("calendar", "list", "--la", "801", **here).stdout
    assert "Autumn 1" in listed and "2025-09-03" in listed and "2025-26" in listed
    assert "LA 801: school days: LA 801's term dates less England's bank holidays" in listed
    assert "no term dates imported for LA 803" in cli("calendar", "list", "--la", "803",
                                                      **here).stdout


def test_the_cli_reports_bad_rows_by_line_and_imports_the_rest(
        scratch_db: HubSettings, cli: CLI, conninfo: str, tmp_path: Path) -> None:
    here = {"SENDHUB_DATABASE_URL": str(scratch_db.database_url)}
    bad = tmp_path / "terms.csv"
    bad.write_text("LA (code),Term,Start,End\n"
                   "801,Autumn 1,2025-09-03,2025-10-24\n"
                   "801,Autumn 2,2025-12-19,2025-11-03\n"
                   "8001,Autumn 1,2025-09-03,2025-10-24\n")
    result = cli("calendar", "import", str(bad), check=False, **here)
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert result.returncode == 1
    assert f"{bad}:3: skipped: End 2025-11-03 is before Start 2025-12-19" in said
    assert f"{bad}:4: skipped: LA (code) '8001' is not 3 digits" in said
    assert "Imported 1 term period(s) for 1 LA(s)" in result.stdout
    assert "2 row(s) skipped" in result.stdout
    assert [t.name for t in load_terms(conninfo)] == ["Autumn 1"]


def test_the_cli_imports_nothing_from_a_file_of_bad_rows_or_the_wrong_columns(
        scratch_db: HubSettings, cli: CLI, conninfo: str, tmp_path: Path) -> None:
    here = {"SENDHUB_DATABASE_URL": str(scratch_db.database_url)}
    import_terms(conninfo, autumn("801", 2025), AT)
    bad = tmp_path / "terms.csv"
    bad.write_text("LA (code),Term,Start,End\n801,Autumn 1,2025-09-31,2025-10-24\n")
    result = cli("calendar", "import", str(bad), check=False, **here)
    said = " ".join(result.stderr.split())
    assert result.returncode == 1
    assert f"{bad}:2: skipped: Start '2025-09-31' is not a real date" in said
    assert f"Nothing imported from {bad}: no usable row" in said
    assert load_terms(conninfo) == autumn("801", 2025)  # LA 801's dates are kept
    registry = cli("calendar", "import", str(ROOT / "data/settings-registry-sample.csv"),
                   check=False, **here)
    assert registry.returncode == 2
    assert "missing column(s) Term, Start, End" in " ".join(registry.stderr.split())
