"""`sendhub calendar`: local authorities' term dates, which make the hub's clocks count
school days (England's bank holidays come from the `holidays` library; an LA without
term dates for a year counts weekdays less bank holidays).

`import` writes (as the owner); `list` only reads, and connects as the read-only role
(`sendhub_reader`) when SENDHUB_DATABASE_URL names no user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sendhub.commands.common import console, errors, fail, hub_settings
from services.shared.settings import READER_ROLE

calendar_app = typer.Typer(help="School days: local authorities' term dates.",
                           no_args_is_help=True)


@calendar_app.command("import")
def calendar_import(ctx: typer.Context,
                    file: Annotated[Path, typer.Argument(help="CSV with columns LA (code), Term, "
                                                         "Start, End (YYYY-MM-DD)")]) -> None:
    """Load term and half-term dates: each LA in the file has its earlier dates replaced;
    LAs not in the file keep theirs."""
    from datetime import UTC, datetime

    from services.shared.school_days import (
        SchoolCalendar,
        TermDatesFileError,
        academic_year_label,
        parse_term_dates_csv,
    )
    from services.shared.school_terms_store import import_terms

    if not file.exists():
        raise fail(f"No such file: {file}")
    try:
        found, problems = parse_term_dates_csv(file.read_text(encoding="utf-8-sig"))
    except TermDatesFileError as exc:
        raise fail(str(exc)) from None
    for problem in problems:
        errors.print(f"[yellow]{file}:{problem.line}: skipped: {problem.message}[/yellow]")
    if not found:
        errors.print(f"[red]Nothing imported from {file}: no usable row[/red]")
        raise typer.Exit(1)
    counts = import_terms(hub_settings(ctx).database_conninfo, found, datetime.now(UTC))
    calendar = SchoolCalendar(found)
    for la, count in counts.items():
        years = calendar.academic_years(la)
        span = (academic_year_label(years[0]) + (
            f" to {academic_year_label(years[-1])}" if len(years) > 1 else "")) if years \
            else "no whole school year"
        console.print(f"LA {la}: {count} term period(s), {span} (its earlier dates replaced)")
        for partial in calendar.incomplete_years(la):
            errors.print(f"[yellow]LA {la} {academic_year_label(partial)}: its terms do not "
                         "run from the autumn to the summer, so that year counts weekdays "
                         "less bank holidays until the rest is imported[/yellow]")
    console.print(f"Imported {len(found)} term period(s) for {len(counts)} LA(s) from {file}"
                  + (f"; {len(problems)} row(s) skipped" if problems else ""))
    if problems:
        raise typer.Exit(1)


@calendar_app.command("list")
def calendar_list(ctx: typer.Context,
                  la: Annotated[str | None, typer.Option("--la", help="one LA's dates only, "
                                                          "e.g. 801")] = None) -> None:
    """The term dates the hub knows, each period's school days, and what is counted for
    each LA."""
    from datetime import timedelta

    from rich.table import Table

    from services.shared.school_days import SchoolCalendar, academic_year_label
    from services.shared.school_terms_store import load_terms

    settings = hub_settings(ctx).as_database_role(READER_ROLE)  # the URL's user still wins
    terms = [t for t in load_terms(settings.database_conninfo) if la is None or t.la_code == la]
    calendar = SchoolCalendar(terms)
    if not terms:
        console.print(f"No term dates for LA {la}: counting {calendar.basis(la)}." if la else
                      "No term dates imported: every LA counts weekdays less England's bank "
                      "holidays. Load them with `sendhub calendar import FILE`.")
        return
    table = Table(title=f"Term dates ({len(terms)} period(s))")
    for column in ("LA", "year", "term", "starts", "ends", "school days"):
        table.add_column(column, justify="right" if column == "school days" else "left")
    for t in calendar.terms:
        days = calendar.school_days_between(t.starts_on - timedelta(days=1), t.ends_on, t.la_code)
        table.add_row(t.la_code, academic_year_label(t.academic_year), t.name,
                      t.starts_on.isoformat(), t.ends_on.isoformat(), str(days))
    console.print(table)
    for code in calendar.la_codes():
        console.print(f"LA {code}: {calendar.basis(code)}")
