"""`sendhub oversight`: a trust's or a local authority's figures, per school and in total
(transfers in time, packets unacknowledged, lost pupils, concerns left open, the LA's
EHC clocks), as a table, JSON or an HTML page with charts.

Who may see what: an LA's figures (`--la CODE`) are that LA's and auditors'; a trust's
(`--trust NAME`) that trust's and auditors'; anyone else gets exit 4. The figures name
no pupil. The pupils behind them are shown only with `--reason` and only for the
settings the caller may see pupils of (`access.may_see_pupils`); each pupil shown is
recorded in the access log.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sendhub.commands.common import Reason, console, errors, fail, hub_settings, principal_of

if TYPE_CHECKING:
    from rich.console import Console

    from sendhub.oversight import Oversight, Window
    from services.shared.access import Principal
    from services.shared.settings import HubSettings


class OversightForm(StrEnum):
    table = "table"
    json = "json"
    html = "html"


HOW_TO_SEE_PUPILS = ("Figures only. To see the pupils behind each figure, add --reason WHY "
                     "(each pupil shown is recorded in the access log).")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date, e.g. 2026-09-01.") from None


def oversight(
    ctx: typer.Context,
    la: Annotated[str | None, typer.Option(
        "--la", help="a local authority's area, by its 3-digit code")] = None,
    trust: Annotated[str | None, typer.Option(
        "--trust", help="a trust's schools, by its name in the settings registry")] = None,
    start: Annotated[str | None, typer.Option(
        "--from", help="first day of the window (default: 1 September of this academic year)")
    ] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="last day of the window (default: 31 August of this academic year)")] = None,
    form: Annotated[OversightForm, typer.Option("--format", help="table, json or html")] = (
        OversightForm.table),
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="json, html: write to this file (html default: "
        "oversight-<scope>.html)")] = None,
    reason: Reason = None,
) -> None:
    """A trust's or a local authority's figures per school and in total, against the
    statutory limits and local policy; with --reason, the pupils behind each figure."""
    from sendhub.oversight import Window, academic_year

    settings = hub_settings(ctx)
    if (la is None) == (trust is None):
        raise fail("Give exactly one scope: --la CODE (a local authority's area) or "
                   "--trust NAME (a trust's schools).")
    if la is not None and not (len(la) == 3 and la.isascii() and la.isdigit()):
        raise fail(f"--la takes a local authority's 3-digit code (e.g. 801), not {la!r}.")
    if form is OversightForm.table and output is not None:
        raise fail("-o is for --format json or html; the table is printed.")
    today = datetime.now(UTC).date()
    year = academic_year(today)
    window_start, window_end = _day(start, "--from") or year.start, _day(end, "--to") or year.end
    if window_start > window_end:
        raise fail(f"--from {window_start} is after --to {window_end}.")

    principal = principal_of(settings)
    _check_scope(principal, la, trust)
    result = _gather(settings, principal, la, trust, Window(window_start, window_end), today,
                     reason)
    note = HOW_TO_SEE_PUPILS if reason is None else None
    if form is OversightForm.json:
        text = json.dumps(_document(result), indent=2) + "\n"
        if output:
            output.write_text(text)
            console.print(f"Wrote the oversight figures of {result.scope.label} to {output}")
        else:
            sys.stdout.write(text)
    elif form is OversightForm.html:
        from sendhub.oversight_page import render_page

        target = output or Path(f"oversight-{result.scope.slug}.html")
        target.write_text(render_page(result, generated_at=datetime.now(UTC),
                                      actor=principal.name, how_to_see_pupils=note))
        console.print(f"Wrote the oversight page of {result.scope.label} to {target}")
    else:
        print_oversight(console, result)
    if note:
        errors.print(note)


def _document(result: Oversight) -> dict[str, object]:
    from sendhub.oversight import document

    return document(result)


def _check_scope(principal: Principal, la: str | None, trust: str | None) -> None:
    from services.shared.access import may_oversee_la, may_oversee_trust

    if la is not None and not may_oversee_la(principal, la):
        raise fail(f"{principal.name} may not see the oversight figures of LA {la} (that LA "
                   "and auditors only).", 4)
    if trust is not None and not may_oversee_trust(principal, trust):
        raise fail(f"{principal.name} may not see the oversight figures of the trust "
                   f"{trust!r} (that trust and auditors only).", 4)


def _gather(settings: HubSettings, principal: Principal, la: str | None, trust: str | None,
            window: Window, today: date, reason: str | None) -> Oversight:
    from sendhub.access_log import AccessRefused, Reader
    from sendhub.oversight_store import NoSchoolsInScope, gather_oversight
    from services.shared.clocks import LocalPolicy
    from services.shared.pupil_keys import pupil_keys_for

    try:
        reader = None if reason is None else Reader.of(principal.name, reason)
    except AccessRefused as exc:
        raise fail(str(exc)) from None
    keys = pupil_keys_for(settings)
    try:
        return gather_oversight(settings.database_conninfo, principal, keys=keys, la=la,
                                trust=trust, window=window, today=today, reader=reader,
                                policy=LocalPolicy(
                                    concern_open_weeks=settings.policy_concern_open_weeks))
    except NoSchoolsInScope as exc:
        raise fail(str(exc), 1) from None
    finally:
        keys.close()


def print_oversight(console: Console, result: Oversight) -> None:
    """The figures as a table, then (when shown) the pupils behind each figure."""
    from rich.table import Table

    from sendhub.oversight import MEASURES, Figure

    def cell(f: Figure) -> str:
        if f.count is None:
            return "[dim]no policy set[/dim]"
        text = f"{f.count}/{f.of}"
        if f.measure.good and f.percent is not None:
            text += f" ({f.percent:g}%)"
        if f.exceptions:
            text += f" +{f.exceptions} exc."
        bad = (not f.measure.good and f.count > 0) or (
            f.measure.good and f.percent is not None and f.percent < 100)
        return f"[red]{text}[/red]" if bad else text

    o = result
    table = Table(title=f"SEN oversight: {o.scope.label}, {o.window.start:%-d %b %Y} to "
                  f"{o.window.end:%-d %b %Y} (as on {o.today:%-d %b %Y})")
    table.add_column("figure")
    table.add_column("total", justify="right")
    table.add_column("by school (those with any)")
    short = {s.urn: s.name.replace(" School", "").replace(" Primary", "") for s in o.schools}
    for n, m in enumerate(MEASURES):
        total = o.total.figures[n]
        by_school = "; ".join(
            f"{short[s.urn]} {cell(s.figures[n])}" for s in o.schools
            if s.figures[n].of or s.figures[n].count)
        table.add_row(m.title, f"[bold]{cell(total)}[/bold]", by_school or "-")
    console.print(table)
    console.print("Sources: " + "; ".join(f"{m.title.lower()}: {m.source}" for m in MEASURES)
                  + ".")
    basis = "; ".join(f"LA {la}: {b}" for la, b in o.calendar_basis.items())
    console.print(f"School days: {basis or 'no calendar'}. Concern policy: "
                  + (f"{o.policy.concern_open_weeks} weeks" if o.policy.concern_open_weeks
                     else "no policy set (SENDHUB_POLICY_CONCERN_OPEN_WEEKS)") + ".")
    if o.pupils_withheld:
        return
    for m in MEASURES:
        items = [p for s in o.schools for p in (s.figure(m.key).pupils or ())]
        if not items:
            continue
        pupils = Table(title=f"{m.title}: the pupils behind it", title_justify="left")
        for column in ("school", "UPN", "pupil", "clock or packet", "from", "due", "status"):
            pupils.add_column(column)
        for p in items:
            style = "red" if p.counted != m.good else None
            pupils.add_row(p.urn, p.upn, p.name, p.what, f"{p.started_on}",
                           f"{p.due_on or ''}", p.status, style=style)
        console.print(pupils)
