"""What an auditor asks for on the pupil history form: a UPN, the reason for looking, and
the point in time on one of the two axes.

Pure, and checked in full before anything about a pupil is read: a form with any problem
is shown again with every problem named, and nothing is read or logged. The two axes are
those of `sendhub history`: as the hub knew it at an instant (recording time, UTC), or
as of a date (occurrence time, as known now).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from contracts.identifiers import IdentifierError, check_upn

FIELDS = ("upn", "reason", "point", "known_date", "known_time", "as_of")
PointKind = Literal["now", "known", "asof"]
POINT_KINDS: tuple[PointKind, ...] = ("now", "known", "asof")
MAX_REASON = 500


@dataclass(frozen=True)
class Point:
    """Now (both None), as known at an instant, or as of a day: never both."""

    known_at: datetime | None = None
    as_of: date | None = None

    @property
    def kind(self) -> PointKind:
        return "known" if self.known_at else "asof" if self.as_of else "now"

    @property
    def words(self) -> str:
        """As people read it on the page."""
        if self.known_at:
            return f"as the hub knew it at {self.known_at:%H:%M:%S} UTC on " \
                   f"{self.known_at:%-d %B %Y}"
        if self.as_of:
            return f"as of {self.as_of:%-d %B %Y} (what had happened by then, as known now)"
        return "now"

    def measured_to(self, now: datetime) -> date:
        """The day the statutory clocks and intervals are measured to."""
        if self.known_at:
            return self.known_at.date()
        return self.as_of or now.date()

    def values(self) -> dict[str, str]:
        """The form's fields for this point, to show it again."""
        return {"point": self.kind,
                "known_date": self.known_at.date().isoformat() if self.known_at else "",
                "known_time": f"{self.known_at:%H:%M:%S}" if self.known_at else "",
                "as_of": self.as_of.isoformat() if self.as_of else ""}


@dataclass(frozen=True)
class HistoryAsk:
    """A valid request: whose history, why, and at which point."""

    upn: str
    reason: str
    point: Point

    def values(self) -> dict[str, str]:
        return {"upn": self.upn, "reason": self.reason, **self.point.values()}


class FormProblems(Exception):
    """What is wrong with the form: {field: message}, in the form's order."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = {f: problems[f] for f in FIELDS if f in problems}


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The form's own fields as stripped strings (anything else posted is ignored)."""
    values = {}
    for name in FIELDS:
        value = form.get(name)
        values[name] = value.strip() if isinstance(value, str) else ""
    return values


def read_upn(text: str) -> str:
    """A UPN as typed (spaces and case forgiven), or ValueError saying what is wrong."""
    upn = "".join(text.split()).upper()
    if not upn:
        raise ValueError("Enter the pupil's UPN")
    try:
        check_upn(upn)
    except IdentifierError as wrong:
        raise ValueError(f"{upn} is not a UPN: {wrong}") from None
    return upn


def _day(text: str, field: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FormProblems({field: f"{what} must be a date, for example 2026-03-01"}) from None


def _time_of_day(text: str) -> time:
    if not text:
        return time(0, 0)
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise FormProblems({"known_time": "The time must be a time of day in UTC, for "
                            "example 14:30 or 14:30:05"}) from None


def read_point(values: Mapping[str, str], now: datetime) -> Point:
    """The point in time the form asks for. The radio button chooses the axis (the other
    axis's fields are then ignored); a form without one is read from the fields filled,
    and both axes filled is refused."""
    kind = values.get("point", "")
    known_given = bool(values.get("known_date") or values.get("known_time"))
    as_of_given = bool(values.get("as_of"))
    if not kind:
        if known_given and as_of_given:
            raise FormProblems({"point": "Give an instant or a date, not both: they are "
                                "different time axes (recording time and occurrence time)"})
        kind = "known" if known_given else "asof" if as_of_given else "now"
    if kind not in POINT_KINDS:
        raise FormProblems({"point": "Choose now, as the hub knew it at an instant, or as "
                            "of a date"})
    if kind == "now":
        return Point()
    if kind == "asof":
        if not as_of_given:
            raise FormProblems({"as_of": "Enter the date to see the history as of"})
        day = _day(values["as_of"], "as_of", "The date")
        if day > now.date():
            raise FormProblems({"as_of": f"{day.isoformat()} is after today: nothing can have "
                                "happened by then that has not happened yet"})
        return Point(as_of=day)
    if not values.get("known_date"):
        raise FormProblems({"known_date": "Enter the date of the instant (UTC)"})
    day = _day(values["known_date"], "known_date", "The date of the instant")
    instant = datetime.combine(day, _time_of_day(values.get("known_time", "")), tzinfo=UTC)
    if instant > now:
        raise FormProblems({"known_date": f"{instant:%Y-%m-%d %H:%M:%S} UTC is in the future: "
                            "the hub cannot have known anything then yet"})
    return Point(known_at=instant)


def read_ask(values: Mapping[str, str], now: datetime) -> HistoryAsk:
    """The whole form, or FormProblems naming every field that is wrong."""
    problems: dict[str, str] = {}
    upn = reason = ""
    try:
        upn = read_upn(values.get("upn", ""))
    except ValueError as wrong:
        problems["upn"] = str(wrong)
    reason = values.get("reason", "")
    if not reason:
        problems["reason"] = ("Give the reason you are looking at this pupil's record: it is "
                              "written in the access log with your name")
    elif len(reason) > MAX_REASON:
        problems["reason"] = f"Keep the reason to {MAX_REASON} characters"
    point = Point()
    try:
        point = read_point(values, now)
    except FormProblems as wrong:
        problems.update(wrong.problems)
    if problems:
        raise FormProblems(problems)
    return HistoryAsk(upn, reason, point)
