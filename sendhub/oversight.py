"""Oversight for trusts and local authorities: per school and in total, how transfers,
lost pupils, concerns and the LA's EHC work stand against their limits.

Pure: no I/O, no clock (`today` is passed in). Its inputs are what the hub already
holds: the scope's settings (the settings registry), each pupil's history (transfers'
projection), the packets with their delivery events, and the clocks
(`services.shared.clocks`: `all_clocks` for each history, `file_sent_clock` for each
move). Its output is one `Oversight`: figures per school and a total row, each figure
with the pupils behind it (only where the caller may see them; otherwise `pupils` is
None and only the counts are kept), and compliance by month for the chart.
`document()` gives its stable JSON form, which `sendhub oversight --format json` prints
and the HTML page and the table are drawn from.

The window: a figure counts an item whose clock started in the window (`--from`,
`--to`; default the academic year, 1 September to 31 August, that holds `today`), for
transfers the move's effective date; the two review figures count reviews that fell due
in the window, since a review's clock starts a year before it can be late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal
from uuid import UUID

from contracts.inbound import where_recorded
from contracts.school_events import PupilMovedV1
from services.shared.clocks import (
    ANNUAL_REVIEW,
    ASSESSMENT_DECISION,
    CONCERN_OPEN,
    FILE_SENT,
    FINAL_PLAN,
    NOT_TO_ISSUE,
    PHASE_TRANSFER,
    ClockResult,
    ClockStatus,
    LocalPolicy,
    SchoolDays,
    all_clocks,
    file_sent_clock,
)
from services.shared.sen_record import HistoryEntry
from services.transfers.domain import Delivery, PacketRecord, delivery_of
from services.transfers.registry import RegisteredSetting

DOCUMENT_VERSION = 1
"""Bumped only when a key of `document()` is removed, renamed or changes meaning."""

# The clock rules (`ClockResult.rule`, services.shared.clocks.RULES) behind each figure.
FILE_SENT_RULES = frozenset({FILE_SENT.rule})
CONCERN_RULES = frozenset({CONCERN_OPEN.rule})
EHC_6_WEEK_RULES = frozenset({ASSESSMENT_DECISION.rule})
EHC_16_WEEK_RULES = frozenset({NOT_TO_ISSUE.rule})
EHC_20_WEEK_RULES = frozenset({FINAL_PLAN.rule})
ANNUAL_REVIEW_RULES = frozenset({ANNUAL_REVIEW.rule})
PHASE_TRANSFER_RULES = frozenset({PHASE_TRANSFER.rule})

MEASURED: frozenset[ClockStatus] = frozenset({"met", "late", "overdue"})
"""Statuses whose outcome is known: done in time, done late, or not done and past due."""

SENDING_KINDS = frozenset({"first", "amendment", "reroute"})
"""Packets for the receiving setting (an LA's notice about a move is not one)."""


@dataclass(frozen=True)
class Measure:
    """One figure of the oversight table: which items it counts, and which it is out of."""

    key: str
    title: str
    source: str
    rules: frozenset[str] = frozenset()
    """The clocks behind it; empty for the packet figures."""
    counts: frozenset[ClockStatus] = frozenset()
    of: frozenset[ClockStatus] = frozenset()
    window_by: Literal["start", "due"] = "start"
    good: bool = True
    """Whether a higher count is better (met in time) or worse (overdue, late, lost)."""
    short: str = ""
    """A column heading for the terminal's table."""


TRANSFERS = Measure(
    "transfers_sent_within_15_school_days", "Transfers sent within 15 school days",
    FILE_SENT.source, FILE_SENT_RULES, frozenset({"met"}), MEASURED, short="sent in 15 days")
UNACKNOWLEDGED = Measure(
    "packets_unacknowledged", "Packets unacknowledged",
    "hub delivery: sent, no receipt, not superseded", good=False, short="unacknowledged")
LOST = Measure(
    "lost_pupils_open", "Lost pupils open",
    "packets to the LA's lost-pupils inbox not re-routed", good=False, short="lost open")
CONCERNS = Measure(
    "concerns_open_beyond_policy", "Concerns open longer than policy",
    CONCERN_OPEN.source, CONCERN_RULES, frozenset({"overdue"}), frozenset({"met", "late", "open", "overdue"}),
    good=False, short="concerns > policy")
EHC_6_WEEKS = Measure(
    "ehc_decisions_within_6_weeks", "EHC decisions to assess within 6 weeks",
    ASSESSMENT_DECISION.source, EHC_6_WEEK_RULES, frozenset({"met"}), MEASURED, short="EHC 6 wk")
EHC_16_WEEKS = Measure(
    "ehc_decisions_within_16_weeks", "EHC decisions not to issue a plan within 16 weeks",
    NOT_TO_ISSUE.source, EHC_16_WEEK_RULES, frozenset({"met"}), MEASURED, short="EHC 16 wk")
EHC_20_WEEKS = Measure(
    "ehc_plans_within_20_weeks", "EHC plans issued within 20 weeks",
    FINAL_PLAN.source, EHC_20_WEEK_RULES, frozenset({"met"}), MEASURED, short="EHC 20 wk")
ANNUAL_REVIEWS = Measure(
    "annual_reviews_overdue", "Annual reviews overdue",
    f"{ANNUAL_REVIEW.source}: at least every 12 months", ANNUAL_REVIEW_RULES,
    frozenset({"overdue"}), frozenset({"met", "late", "open", "overdue"}),
    window_by="due", good=False, short="reviews overdue")
PHASE_TRANSFERS = Measure(
    "phase_transfer_reviews_late", "Phase-transfer reviews late",
    f"{PHASE_TRANSFER.source}: before 15 February (31 March for post-16)",
    PHASE_TRANSFER_RULES, frozenset({"late", "overdue"}), MEASURED,
    window_by="due", good=False, short="phase late")

MEASURES: tuple[Measure, ...] = (TRANSFERS, UNACKNOWLEDGED, LOST, CONCERNS, EHC_6_WEEKS,
                                 EHC_16_WEEKS, EHC_20_WEEKS, ANNUAL_REVIEWS, PHASE_TRANSFERS)
WITH_EXCEPTIONS = frozenset({EHC_6_WEEKS.key, EHC_16_WEEKS.key, EHC_20_WEEKS.key})
"""Figures where a published exception (SEND Regulations 2014, reg. 5(4), 10(4), 13(3))
takes a case out of the limit: counted apart, never as met or late."""


@dataclass(frozen=True)
class Scope:
    """Whose figures: a local authority's area (`la`, by its code) or a trust's schools
    (`trust`, by its registry name)."""

    kind: Literal["la", "trust"]
    identifier: str
    name: str

    @property
    def label(self) -> str:
        if self.kind == "trust":
            return self.name
        return f"LA {self.identifier}" + (f" ({self.name})" if self.name != self.identifier
                                          else "")

    @property
    def slug(self) -> str:
        from services.shared.access import slug

        return f"{self.kind}-{slug(self.identifier)}"


@dataclass(frozen=True)
class Window:
    """The days a figure counts items from, both ends included."""

    start: date
    end: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def academic_year(today: date) -> Window:
    """1 September to 31 August: the academic year that holds `today`."""
    first = today.year if today.month >= 9 else today.year - 1
    return Window(date(first, 9, 1), date(first + 1, 8, 31))


@dataclass(frozen=True)
class MovedPacket:
    """A packet the hub built for a move, as oversight needs it: the delivery record and,
    from the stored body, the setting the pupil left and the move's effective date."""

    record: PacketRecord
    from_urn: str | None
    move_version: int
    effective_date: date

    @property
    def delivery(self) -> Delivery:
        return delivery_of(self.record.events)

    @property
    def to_lost_pupils(self) -> bool:
        return self.record.receiver == "lost-pupils"


@dataclass(frozen=True)
class PupilItem:
    """One pupil behind a figure: which clock or packet, from when, due when, and where it
    stands; `counted` when it is in the figure's count (not only in what it is out of)."""

    upn: str
    name: str
    urn: str
    what: str
    started_on: date
    due_on: date | None
    status: str
    counted: bool
    reference: UUID | None = None
    """The packet id, or the event that started the clock."""


@dataclass(frozen=True)
class Figure:
    """A count out of a total (None when not measured: `note` says why), the cases a
    published exception took out, and the pupils behind it (None: not shown)."""

    measure: Measure
    count: int | None
    of: int | None
    exceptions: int = 0
    pupils: tuple[PupilItem, ...] | None = None
    note: str | None = None

    @property
    def percent(self) -> float | None:
        if self.count is None or not self.of:
            return None
        return round(100 * self.count / self.of, 1)


@dataclass(frozen=True)
class SchoolFigures:
    """One row: a school (None for the total row) and its figures, in `MEASURES` order."""

    urn: str | None
    name: str
    figures: tuple[Figure, ...]

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.measure.key == key)


@dataclass(frozen=True)
class MonthCompliance:
    """For the chart: of the items started in a month, how many were met in time."""

    month: date
    transfers: tuple[int, int]
    ehc_20_weeks: tuple[int, int]


@dataclass(frozen=True)
class Oversight:
    scope: Scope
    window: Window
    today: date
    policy: LocalPolicy
    calendar_basis: Mapping[str, str]
    schools: tuple[SchoolFigures, ...]
    total: SchoolFigures
    months: tuple[MonthCompliance, ...]
    pupils_withheld: bool = False
    """Some figure's pupils were left out (not allowed, or no reason given)."""

    def pupils_shown(self) -> list[PupilItem]:
        """Every pupil shown anywhere on the page, once per item (for the access log)."""
        return [p for s in self.schools for f in s.figures for p in (f.pupils or ())]


# -- the clocks of a scope ----------------------------------------------------------------


def moves_from(history: Sequence[HistoryEntry], urns: frozenset[str]
               ) -> list[tuple[HistoryEntry, PupilMovedV1]]:
    """The pupil's moves out of one of `urns` (the school recording a move is the one
    the pupil leaves)."""
    return [(h, h.event) for h in history
            if isinstance(h.event, PupilMovedV1) and h.event.source.urn in urns]


def first_sent(packets: Iterable[MovedPacket], upn: str, move_version: int) -> date | None:
    """When the move's file first went out: the earliest `sent` of any packet for that move
    (a lost-pupil packet counts: the file went to the LA, as to the national database)."""
    sent = [d.first_sent.date() for p in packets
            if p.record.upn == upn and p.move_version == move_version
            and p.record.kind in SENDING_KINDS
            and (d := p.delivery).first_sent is not None]
    return min(sent, default=None)


def scope_clocks(histories: Mapping[str, Sequence[HistoryEntry]],
                 packets: Sequence[MovedPacket], settings: Sequence[RegisteredSetting], *,
                 registry: Mapping[str, RegisteredSetting], today: date,
                 calendar: SchoolDays, policy: LocalPolicy) -> list[ClockResult]:
    """Every clock of the pupils in `histories`, and a file-sent clock for each move out
    of one of the scope's `settings`, as they stand on `today`."""
    urns = frozenset(s.urn for s in settings)
    clocks: list[ClockResult] = []
    for upn, history in histories.items():
        clocks.extend(all_clocks(history, today=today, calendar=calendar, policy=policy))
        for entry, move in moves_from(history, urns):
            leaving = move.source.urn
            known = registry.get(leaving)
            clocks.append(file_sent_clock(
                upn=upn, leaving_urn=leaving, leaving_la=known.la_code if known else None,
                left_on=move.payload.effective_date,
                first_sent_on=first_sent(packets, upn, entry.version), today=today,
                calendar=calendar))
    return clocks


def pupil_names(histories: Mapping[str, Sequence[HistoryEntry]]) -> dict[str, str]:
    """Each pupil's name as the latest event of their history gives it."""
    names = {}
    for upn, history in histories.items():
        if history:
            latest = max(history, key=lambda h: h.version).event.pupil
            names[upn] = f"{latest.given_name} {latest.family_name}"
    return names


def pupils_of_scope(histories: Mapping[str, Sequence[HistoryEntry]], scope: Scope,
                    urns: frozenset[str]) -> dict[str, Sequence[HistoryEntry]]:
    """The pupils whose history has an event recorded at one of the scope's settings (or,
    for an LA, by that LA)."""
    own = f"la-{scope.identifier}" if scope.kind == "la" else None
    return {upn: h for upn, h in histories.items()
            if any(where_recorded(e.event) in urns or where_recorded(e.event) == own
                   for e in h)}


# -- the figures ----------------------------------------------------------------------------


def oversee(scope: Scope, settings: Sequence[RegisteredSetting], clocks: Sequence[ClockResult],
            packets: Sequence[MovedPacket], *, names: Mapping[str, str], window: Window,
            today: date, policy: LocalPolicy, calendar_basis: Mapping[str, str] | None = None,
            shows_pupils: Callable[[str], bool] = lambda urn: True) -> Oversight:
    """Per school of `settings` and in total, every figure of `MEASURES` over `window`;
    each school's pupils kept only where `shows_pupils(urn)` holds."""
    ordered = sorted(settings, key=lambda s: (s.name, s.urn))
    urns = {s.urn for s in ordered}
    clocks_by_school: dict[str, list[ClockResult]] = {u: [] for u in urns}
    for c in clocks:
        if c.setting_urn in urns and _runs_for(c, scope):
            clocks_by_school[c.setting_urn].append(c)
    packets_by_school: dict[str, list[MovedPacket]] = {u: [] for u in urns}
    for p in packets:
        if p.from_urn in urns and p.record.kind in SENDING_KINDS:
            packets_by_school[p.from_urn].append(p)

    schools = []
    withheld = False
    for s in ordered:
        visible = shows_pupils(s.urn)
        withheld = withheld or not visible
        figures = tuple(_figure(m, s.urn, clocks_by_school[s.urn], packets_by_school[s.urn],
                                names, window, policy) for m in MEASURES)
        if not visible:
            figures = tuple(replace(f, pupils=None) for f in figures)
        schools.append(SchoolFigures(s.urn, s.name, figures))
    in_scope = [c for u in urns for c in clocks_by_school[u]]
    return Oversight(
        scope=scope, window=window, today=today, policy=policy,
        calendar_basis=dict(calendar_basis or {}), schools=tuple(schools),
        total=_total(schools), months=_months(in_scope, window, today),
        pupils_withheld=withheld)


def _runs_for(clock: ClockResult, scope: Scope) -> bool:
    """An LA's figures count the EHC clocks that run for it: another LA's case for a
    pupil at one of its schools is that LA's to answer for, not this one's."""
    return (scope.kind != "la" or not clock.rule.startswith("ehc_")
            or clock.la_code == scope.identifier)


def withhold_pupils(oversight: Oversight) -> Oversight:
    """The same figures with no pupil in them (no reason was given for seeing them)."""
    schools = tuple(replace(s, figures=tuple(replace(f, pupils=None) for f in s.figures))
                    for s in oversight.schools)
    return replace(oversight, schools=schools, total=_total(schools), pupils_withheld=True)


def _figure(m: Measure, urn: str, clocks: Sequence[ClockResult],
            packets: Sequence[MovedPacket], names: Mapping[str, str], window: Window,
            policy: LocalPolicy) -> Figure:
    if m is CONCERNS and policy.concern_open_weeks is None:
        return Figure(m, None, None, pupils=(),
                      note="no policy set (SENDHUB_POLICY_CONCERN_OPEN_WEEKS)")
    if m is UNACKNOWLEDGED:
        return _unacknowledged(urn, packets, names, window)
    if m is LOST:
        return _lost(urn, packets, names, window)
    chosen = [c for c in clocks if c.rule in m.rules
              and (c.started_on if m.window_by == "start" else c.due_on) in window]
    counted = [c for c in chosen if c.status in m.counts]
    out_of = [c for c in chosen if c.status in m.of]
    exceptions = [c for c in chosen if c.status == "exception"] \
        if m.key in WITH_EXCEPTIONS else []
    items = tuple(_clock_item(c, urn, names, c.status in m.counts)
                  for c in sorted([*out_of, *exceptions], key=lambda c: (c.started_on, c.upn)))
    return Figure(m, len(counted), len(out_of), len(exceptions), items)


def _clock_item(c: ClockResult, urn: str, names: Mapping[str, str], counted: bool) -> PupilItem:
    return PupilItem(c.upn, names.get(c.upn, ""), urn, c.title, c.started_on, c.due_on,
                     c.status + (f" ({c.note})" if c.note else ""), counted, c.event_id)


def _unacknowledged(urn: str, packets: Sequence[MovedPacket], names: Mapping[str, str],
                    window: Window) -> Figure:
    """Of the packets sent for moves in the window, those with no receipt that nothing
    has replaced (a superseded, re-routed or undeliverable packet is not waiting)."""
    sent = [p for p in packets if p.effective_date in window and p.delivery.attempts > 0]
    items = []
    for p in sorted(sent, key=lambda p: (p.effective_date, p.record.upn)):
        d = p.delivery
        waiting = d.state == "sent"
        status = (f"sent {d.attempts} time(s), no receipt" if waiting else d.state)
        items.append(PupilItem(p.record.upn, names.get(p.record.upn, p.record.pupil), urn,
                               f"packet to {p.record.receiver} ({p.record.kind})",
                               p.effective_date, None, status, waiting, p.record.packet_id))
    return Figure(UNACKNOWLEDGED, sum(1 for i in items if i.counted), len(items),
                  pupils=tuple(items))


def _lost(urn: str, packets: Sequence[MovedPacket], names: Mapping[str, str],
          window: Window) -> Figure:
    """Of the moves in the window to no known destination (the latest packet of each, an
    amendment replacing the first), those whose packet was never re-routed."""
    lost = [p for p in packets if p.to_lost_pupils and p.effective_date in window
            and p.delivery.state != "superseded"]
    items = tuple(PupilItem(
        p.record.upn, names.get(p.record.upn, p.record.pupil), urn,
        "left for an unknown destination", p.effective_date, None,
        "re-routed" if p.delivery.state == "rerouted" else "destination not known",
        p.delivery.state != "rerouted", p.record.packet_id)
        for p in sorted(lost, key=lambda p: (p.effective_date, p.record.upn)))
    return Figure(LOST, sum(1 for i in items if i.counted), len(items), pupils=items)


def _total(schools: Sequence[SchoolFigures]) -> SchoolFigures:
    figures = []
    for n, m in enumerate(MEASURES):
        column = [s.figures[n] for s in schools]
        measured = [f for f in column if f.count is not None]
        pupils = None if any(f.pupils is None for f in column) else tuple(
            p for f in column for p in (f.pupils or ()))
        if m is CONCERNS and column and not measured:
            figures.append(Figure(m, None, None, pupils=pupils, note=column[0].note))
            continue
        figures.append(Figure(m, sum(f.count or 0 for f in measured),
                              sum(f.of or 0 for f in measured),
                              sum(f.exceptions for f in column), pupils))
    return SchoolFigures(None, "Total", tuple(figures))


def _months(clocks: Sequence[ClockResult], window: Window, today: date
            ) -> tuple[MonthCompliance, ...]:
    """Each month of the window up to `today`: transfers and EHC plans whose clock started
    that month, met in time out of those measured."""
    months = []
    month = window.start.replace(day=1)
    last = min(window.end, today)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)

        def tally(rules: frozenset[str], month: date = month, following: date = following
                  ) -> tuple[int, int]:
            chosen = [c for c in clocks if c.rule in rules and c.status in MEASURED
                      and month <= c.started_on < following and c.started_on in window]
            return sum(1 for c in chosen if c.status == "met"), len(chosen)

        months.append(MonthCompliance(month, tally(FILE_SENT_RULES), tally(EHC_20_WEEK_RULES)))
        month = following
    return tuple(months)


# -- the JSON document -----------------------------------------------------------------------


def document(oversight: Oversight) -> dict[str, Any]:
    """The stable JSON form (README: "Oversight"). A figure is
    `{"count", "of", "percent", "pupils"?}`, with `exceptions` for the EHC figures and
    `note` when not measured; `pupils` is left out where they may not be shown."""
    o = oversight
    return {
        "document_version": DOCUMENT_VERSION,
        "scope": {"kind": o.scope.kind, "identifier": o.scope.identifier, "name": o.scope.name},
        "window": {"from": o.window.start.isoformat(), "to": o.window.end.isoformat()},
        "today": o.today.isoformat(),
        "calendar_basis": dict(o.calendar_basis),
        "policy": {"concern_open_weeks": o.policy.concern_open_weeks},
        "pupils_withheld": o.pupils_withheld,
        "schools": [_row(s) for s in o.schools],
        "total": _row(o.total),
        "months": [{"month": m.month.strftime("%Y-%m"),
                    "transfers_sent_within_15_school_days": _tally(m.transfers),
                    "ehc_plans_within_20_weeks": _tally(m.ehc_20_weeks)} for m in o.months],
    }


def _row(s: SchoolFigures) -> dict[str, Any]:
    row: dict[str, Any] = {"urn": s.urn, "name": s.name} if s.urn else {"name": s.name}
    row["figures"] = {f.measure.key: _figure_document(f) for f in s.figures}
    return row


def _figure_document(f: Figure) -> dict[str, Any]:
    out: dict[str, Any] = {"count": f.count, "of": f.of, "percent": f.percent}
    if f.measure.key in WITH_EXCEPTIONS:
        out["exceptions"] = f.exceptions
    if f.note:
        out["note"] = f.note
    if f.pupils is not None:
        out["pupils"] = [{
            "upn": p.upn, "name": p.name, "urn": p.urn, "what": p.what,
            "started_on": p.started_on.isoformat(),
            "due_on": p.due_on.isoformat() if p.due_on else None, "status": p.status,
            "counted": p.counted, "reference": str(p.reference) if p.reference else None,
        } for p in f.pupils]
    return out


def _tally(pair: tuple[int, int]) -> dict[str, Any]:
    met, due = pair
    return {"met": met, "of": due, "percent": round(100 * met / due, 1) if due else None}
