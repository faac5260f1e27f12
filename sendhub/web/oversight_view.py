"""What the oversight pages show, worked out without I/O: whose figures a principal sees,
the filters of the page's GET form, each figure's cell, the CSV export, and the charts'
SVG made safe to put two on one page.

Pure (no clock: `today` is passed in), so the rules are unit-tested
(tests/unit/test_web_oversight.py); `sendhub.web.oversight` serves them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from markupsafe import Markup

from sendhub.oversight import MEASURES, WITH_EXCEPTIONS, Figure, Oversight, Window, academic_year
from services.shared.access import Kind, Principal, may_oversee_la, may_oversee_trust

FIGURE_KEYS = frozenset(m.key for m in MEASURES)
_UNSAFE_CSV_START = ("=", "+", "-", "@", "\t", "\r")
_URN = re.compile(r"[0-9]{6}")


class FilterError(ValueError):
    """A filter the page cannot use: the message says what to put right."""


@dataclass(frozen=True)
class OverseenScope:
    """The one scope a principal's oversight pages show: a trust its own schools, an LA
    the settings in its area (`la` or `trust`, as `gather_oversight` takes them)."""

    la: str | None
    trust: str | None


def scope_of_principal(principal: Principal) -> OverseenScope | None:
    """A trust's own trust, an LA's own area; None for anyone else (the pages answer 403).
    Checked again with the CLI's own rules, `may_oversee_la` and `may_oversee_trust`."""
    if principal.kind is Kind.trust and may_oversee_trust(principal, principal.identifier):
        return OverseenScope(None, principal.identifier)
    if principal.kind is Kind.la and may_oversee_la(principal, principal.identifier):
        return OverseenScope(principal.identifier, None)
    return None


@dataclass(frozen=True)
class Filters:
    """The page's filters: the window (default the academic year, as the CLI's) and one
    school of the scope, or all (None)."""

    window: Window
    school: str | None = None

    def query(self, **extra: str) -> str:
        """The filters (and `extra`) as a query string, for links that keep them."""
        values = {"from": self.window.start.isoformat(), "to": self.window.end.isoformat()}
        if self.school:
            values["school"] = self.school
        return urlencode({**values, **extra})


def _day(value: str | None, label: str) -> date | None:
    if not (value or "").strip():
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise FilterError(f"{label} {value!r} is not a date: give it as YYYY-MM-DD, "
                          "e.g. 2026-09-01") from None


def parse_filters(start: str | None, end: str | None, school: str | None, *,
                  today: date) -> Filters:
    """The form's `from`, `to` and `school` (empty: the default) as filters."""
    year = academic_year(today)
    first = _day(start, "From") or year.start
    last = _day(end, "To") or year.end
    if first > last:
        raise FilterError(f"From ({first.isoformat()}) is after To ({last.isoformat()}): "
                          "the first day comes first")
    chosen = (school or "").strip() or None
    if chosen is not None and not _URN.fullmatch(chosen):
        raise FilterError(f"school {chosen!r} is not a URN (6 digits)")
    return Filters(Window(first, last), chosen)


def day(value: date | str | None) -> str:
    """A date as the pages write it: 2 Dec 2026."""
    if not value:
        return ""
    found = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{found.day} {found:%b %Y}"


def cell_text(figure: Figure) -> str:
    """A figure as its cell says it: `3 of 4 (75%)`, `1 of 2, 1 exception(s)`, `none`."""
    if figure.count is None:
        return "no policy set"
    if not figure.of and not figure.exceptions:
        return "none"
    text = f"{figure.count} of {figure.of}"
    if figure.measure.good and figure.percent is not None:
        text += f" ({figure.percent:g}%)"
    if figure.exceptions:
        text += f", {figure.exceptions} exception(s)"
    return text


def needs_attention(figure: Figure) -> bool:
    """Something late, overdue, unacknowledged or lost (as the CLI's red)."""
    if figure.count is None:
        return False
    if figure.measure.good:
        return figure.percent is not None and figure.percent < 100
    return figure.count > 0


def has_list(figure: Figure) -> bool:
    """Whether there is a list of pupils behind the figure to open."""
    return figure.count is not None and bool(figure.of or figure.exceptions)


# -- the CSV export -------------------------------------------------------------------------


def csv_header() -> list[str]:
    columns = ["from", "to", "urn", "school"]
    for m in MEASURES:
        columns += [f"{m.key}_count", f"{m.key}_of", f"{m.key}_percent"]
        if m.key in WITH_EXCEPTIONS:
            columns.append(f"{m.key}_exceptions")
    return columns


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _text(value: str) -> str:
    """A name as a spreadsheet will not run it as a formula."""
    return "'" + value if value.startswith(_UNSAFE_CSV_START) else value


def csv_rows(oversight: Oversight) -> list[list[str]]:
    """The header, a row per school and the total row; figures only, never a pupil."""
    rows = [csv_header()]
    window = [oversight.window.start.isoformat(), oversight.window.end.isoformat()]
    for school in (*oversight.schools, oversight.total):
        row = [*window, school.urn or "", _text(school.name)]
        for f in school.figures:
            row += [_number(f.count), _number(f.of), _number(f.percent)]
            if f.measure.key in WITH_EXCEPTIONS:
                row.append(str(f.exceptions))
        rows.append(row)
    return rows


def csv_text(oversight: Oversight) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(csv_rows(oversight))
    return buffer.getvalue()


def csv_filename(oversight: Oversight, school: str | None = None) -> str:
    w = oversight.window
    return (f"oversight-{oversight.scope.slug}{'-' + school if school else ''}-"
            f"{w.start.isoformat()}-{w.end.isoformat()}.csv")


# -- the charts ------------------------------------------------------------------------------

_ID_USE = re.compile(r'(\sid="|url\(#|href="#)([^")]+)')


def with_own_ids(svg: str, prefix: str, keep: Sequence[str] = ()) -> Markup:
    """matplotlib names the parts of every chart alike (`figure_1`, `patch_1`, ...): each
    id of one chart, and every reference to it, gets `prefix`, so two charts on one page
    have none in common. Ids in `keep` (the chart's title and description) stay."""
    own = set(re.findall(r'\sid="([^"]+)"', svg)) - set(keep)

    def rename(found: re.Match[str]) -> str:
        lead, name = found.group(1), found.group(2)
        return f"{lead}{prefix}-{name}" if name in own else found.group(0)

    return Markup(_ID_USE.sub(rename, svg))


def months_table(months: Sequence[Mapping[str, object]]) -> list[dict[str, str]]:
    """The compliance chart's figures as rows of its table (the same numbers, in text)."""
    rows = []
    for m in months:
        row = {"month": date.fromisoformat(f"{m['month']}-01").strftime("%B %Y")}
        for key in ("transfers_sent_within_15_school_days", "ehc_plans_within_20_weeks"):
            tally = m[key]
            assert isinstance(tally, Mapping)
            percent = tally["percent"]
            row[key] = (f"{tally['met']} of {tally['of']}"
                        + (f" ({percent:g}%)" if isinstance(percent, float | int) else "")
                        if tally["of"] else "none measured")
        rows.append(row)
    return rows
