"""The auditor's report: one self-contained HTML page on a pupil's SEN support.

A timeline chart (drawn with matplotlib, embedded as SVG), the statutory clocks (each
rule with its source: `services.shared.clocks`), the measured intervals with the limit
beside each (statutory, a local policy, or none) and overdue items marked, the
hash-chain check, and every event. Built from the records store's history, through the
shared projection.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, StrictUndefined, select_autoescape
from markupsafe import Markup

from contracts.inbound import where_recorded
from contracts.school_events import (
    AssessmentCompletedV1,
    ConcernRaisedV1,
    PlanReviewedV1,
    PupilMovedV1,
)
from services.shared.clocks import ClockResult, LocalPolicy, SchoolDays, WeekdaysOnly, all_clocks
from services.shared.sen_record import HistoryEntry, as_corrected, corrections_of, record_at
from services.shared.sen_wording import describe_event, mark_words
from services.shared.statutory import Interval, all_measures

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PROVISION_COLOURS = {"sen_support": "#f2b134", "ehc_plan": "#c0392b", "none": "#cfd8dc"}


@dataclass(frozen=True)
class ChainCheck:
    events: int
    head: str
    problem: str | None


ROWS = {"Setting": 4, "SEN provision": 3, "Needs": 2, "Events": 1}
EVENT_MARKERS: dict[type, tuple[str, str, str]] = {ConcernRaisedV1: ("^", "#e67e22", "concern"),
                 AssessmentCompletedV1: ("o", "#2c3e50", "assessment"),
                 PlanReviewedV1: ("s", "#27ae60", "plan review")}
LA_MARKER = ("D", "#c0392b", "local authority (EHC)")


def timeline_svg(history: Sequence[HistoryEntry], today: date) -> str:
    """Settings attended, SEN provision periods, needs, concerns, assessments, reviews and
    moves on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    events = in_order_happened(history)
    start = min(h.event.occurred_at.date() for h in events) - timedelta(days=20)
    end = max([today, *(h.event.occurred_at.date() for h in events)]) + timedelta(days=20)
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=96)
    _draw_settings(ax, events, start, end)
    _draw_provision(ax, events, end)
    _draw_events(ax, events)

    ax.set_yticks(list(ROWS.values()), list(ROWS.keys()))
    ax.set_ylim(0.3, 4.7)
    ax.set_xlim(mdates.date2num(start), mdates.date2num(end))
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#eee")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _draw_settings(ax: Axes, events: Sequence[HistoryEntry], start: date, end: date) -> None:
    """Each setting from the first event there (or the move in) to the move out."""
    import matplotlib.dates as mdates

    stays: list[tuple[str, date, date]] = []
    here, since = where_recorded(events[0].event), start
    for h in events:
        if isinstance(h.event, PupilMovedV1):
            stays.append((here, since, h.event.payload.effective_date))
            d = h.event.payload.destination
            here = getattr(d, "urn", None) or getattr(d, "ukprn", None) or "unknown"
            since = h.event.payload.effective_date
    stays.append((here, since, end))
    palette = ["#dfe9f5", "#e8f5e9", "#fdf2e0", "#f3e5f5", "#e0f7fa"]
    for n, (urn, a, b) in enumerate(stays):
        ax.barh(ROWS["Setting"], mdates.date2num(b) - mdates.date2num(a), left=mdates.date2num(a),
                height=0.6, color=palette[n % len(palette)], edgecolor="#555")
        ax.text(mdates.date2num(a) + 3, ROWS["Setting"], f"URN {urn}" if urn.isdigit() and
                len(urn) == 6 else urn, va="center", fontsize=8)


def _draw_provision(ax: Axes, events: Sequence[HistoryEntry], end: date) -> None:
    import matplotlib.dates as mdates

    episodes = record_at(events).episodes
    for n, (a, status) in enumerate(episodes):
        b = episodes[n + 1][0] if n + 1 < len(episodes) else end
        ax.barh(ROWS["SEN provision"], mdates.date2num(b) - mdates.date2num(a),
                left=mdates.date2num(a), height=0.6, color=PROVISION_COLOURS[status],
                edgecolor="#555")
        ax.text(mdates.date2num(a) + 3, ROWS["SEN provision"],
                {"sen_support": "K", "ehc_plan": "E", "none": "N"}[status], va="center",
                fontsize=8, fontweight="bold")


def _draw_events(ax: Axes, events: Sequence[HistoryEntry]) -> None:
    """Concerns, assessments and reviews as markers, needs found above them, moves as
    dashed lines; each kind in the legend once."""
    import matplotlib.dates as mdates

    labelled: set[str] = set()
    for h in events:
        e = h.event
        x = mdates.date2num(e.occurred_at.date())
        if isinstance(e, PupilMovedV1):
            ax.axvline(mdates.date2num(e.payload.effective_date), color="#8e44ad", linestyle="--",
                       linewidth=1, label=None if "move" in labelled else "move")
            labelled.add("move")
            continue
        marker, colour, label = EVENT_MARKERS.get(type(e), LA_MARKER)
        ax.plot(x, ROWS["Events"], marker=marker, color=colour, markersize=7, linestyle="none",
                label=None if label in labelled else label)
        labelled.add(label)
        if isinstance(e, AssessmentCompletedV1) and e.payload.identified_needs:
            ax.text(x, ROWS["Needs"], "/".join(n.code.value for n in e.payload.identified_needs),
                    fontsize=7, rotation=30, ha="left", va="center")


_env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["day"] = lambda value: value.strftime("%-d %b %Y")


def _weeks(delta: timedelta | None) -> str:
    if delta is None:
        return "none"
    days = delta.days
    return f"{days // 7} wk {days % 7} d" if days >= 7 else f"{days} d"


CLOCK_STATUS_WORDS = {"met": "met", "late": "LATE", "open": "open", "overdue": "OVERDUE",
                      "exception": "exception applies", "stopped": "stopped"}
NO_POLICY = LocalPolicy()


@dataclass(frozen=True)
class AuditFigures:
    """The statutory clocks and the measured intervals (each with its limit), as the
    report shows them and the auditor's web page too."""

    clocks: list[ClockResult]
    rows: list[dict[str, Any]]

    @property
    def clocks_flagged(self) -> int:
        return sum(1 for c in self.clocks if c.status in ("overdue", "late"))

    @property
    def overdue(self) -> int:
        return sum(1 for r in self.rows if r["overdue"])


def audit_figures(events: Sequence[HistoryEntry], *, today: date,
                  calendar: SchoolDays | None = None, policy: LocalPolicy = NO_POLICY
                  ) -> AuditFigures:
    """`events` in the order they happened; measured to `today`."""
    measures: list[Interval] = all_measures(events, policy)
    clocks: list[ClockResult] = all_clocks(events, today=today,
                                           calendar=calendar or WeekdaysOnly(), policy=policy)
    rows = [{"m": m, "length": _weeks(m.length(today)), "limit": _weeks(m.limit),
             "overdue": m.overdue(today), "measured": m.limit is None} for m in measures]
    return AuditFigures(clocks, rows)


def in_order_happened(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(history, key=lambda h: (h.event.occurred_at, h.version))


def correction_lines(history: Sequence[HistoryEntry]) -> list[str]:
    """Each entry its setting withdrew or corrected, in neutral words (the report leaves
    out withdrawn content; the auditor's history shows it, marked)."""
    by_id = {h.event.event_id: h for h in history}
    lines = []
    for event_id, mark in sorted(corrections_of(history).items(), key=lambda m: m[1].version):
        entry = by_id.get(event_id)
        if entry is None:
            continue
        lines.append(f"The entry of {entry.event.occurred_at:%-d %B %Y} recorded by "
                     f"{where_recorded(entry.event)} (v{entry.version}) was "
                     f"{mark_words(mark)}")
    return lines


def render_report(history: Sequence[HistoryEntry], *, today: date, generated_at: datetime,
                  actor: str, chain: ChainCheck, calendar: SchoolDays | None = None,
                  policy: LocalPolicy = NO_POLICY) -> str:
    """The page. `calendar` counts school days (`WeekdaysOnly` when none is given);
    `policy` holds the local limits, none unless configured."""
    events = in_order_happened(as_corrected(history))  # withdrawn content left out
    figures = audit_figures(events, today=today, calendar=calendar, policy=policy)
    record = record_at(events)
    latest = max(history, key=lambda h: h.version)
    pupil = latest.event.pupil
    template = _env.from_string(
        resources.files("sendhub").joinpath("templates/report.html.j2").read_text())
    return template.render(
        pupil=pupil, upn=latest.upn, record=record, rows=figures.rows,
        corrections=correction_lines(history),
        clocks=figures.clocks, clock_status=CLOCK_STATUS_WORDS,
        clocks_flagged=figures.clocks_flagged, overdue=figures.overdue,
        chart=Markup(timeline_svg(events, today) if events else ""),
        events=[(h, describe_event(h), where_recorded(h.event)) for h in events], today=today,
        generated_at=generated_at, actor=actor, chain=chain)
