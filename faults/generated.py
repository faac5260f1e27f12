"""Property-based hostile messages: hypothesis draws a valid-looking event (or receipt)
and exactly one mutation that the contract must refuse: a wrong type, an unknown field,
a bad code or identifier, a date or number out of range.

Hypothesis draws the mutation (its kind, the field's path and the new value); the event
itself, with its seeded ids, is built afterwards, so generated ids never collide. With
`@seed`, no example database and the generate phase only, the same seed draws the same
mutations.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from contracts import identifiers
from contracts.school_events import (
    AssessmentKind,
    AssessmentOutcome,
    AssessorRole,
    MoveKind,
    NeedCode,
    PlanKind,
    ProvisionKind,
    RaisedBy,
    ReviewDecision,
    TargetProgress,
)
from faults.workload import Seeded, event_for, move_payload

T = TypeVar("T")
Path = tuple[str | int, ...]
EVENT_TYPES = ("concern_raised", "assessment_completed", "plan_reviewed", "pupil_moved")


def _values(*enums: Any) -> frozenset[str]:
    return frozenset(str(member.value) for enum in enums for member in enum)


# Path templates ("*" is any list index) of the fields with a closed set of values.
EVENT_CODES: dict[Path, frozenset[str]] = {
    ("event_type",): frozenset(EVENT_TYPES),
    ("payload", "raised_by"): _values(RaisedBy),
    ("payload", "areas_of_need", "*"): _values(NeedCode),
    ("payload", "assessor_role"): _values(AssessorRole),
    ("payload", "assessment_kind"): _values(AssessmentKind),
    ("payload", "outcome"): _values(AssessmentOutcome),
    ("payload", "identified_needs", "*", "code"): _values(NeedCode),
    ("payload", "plan_kind"): _values(PlanKind),
    ("payload", "targets", "*", "progress"): _values(TargetProgress),
    ("payload", "provision", "*", "kind"): _values(ProvisionKind),
    ("payload", "decision"): _values(ReviewDecision),
    ("payload", "destination", "kind"): frozenset({"school", "post16_provider", "unknown"}),
    ("payload", "move_kind"): _values(MoveKind),
}
EVENT_IDENTIFIERS: dict[Path, Callable[[str], object]] = {
    ("source", "urn"): identifiers.check_urn,
    ("pupil", "upn"): identifiers.check_upn,
    ("payload", "destination", "urn"): identifiers.check_urn,
}
# "moment": an aware date-time not in the future; "aware": any aware date-time;
# "past": a date not in the future; "date": any date.
EVENT_DATES: dict[Path, str] = {
    ("occurred_at",): "moment",
    ("pupil", "date_of_birth"): "past",
    ("payload", "provision", "*", "started_on"): "date",
    ("payload", "next_review_due"): "date",
    ("payload", "effective_date"): "date",
}
EVENT_NUMBERS: dict[Path, tuple[int, int]] = {("payload", "identified_needs", "*", "rank"): (1, 12)}

RECEIPT_CODES: dict[Path, frozenset[str]] = {("status",): frozenset({"received", "accepted",
                                                                      "rejected"})}
RECEIPT_DATES: dict[Path, str] = {("at",): "aware"}


@dataclass(frozen=True)
class Mutation:
    kind: str  # wrong_type, unknown_field, bad_code, bad_identifier, out_of_range
    path: Path
    value: Any = None
    field_name: str = ""

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(document)
        if self.kind == "unknown_field":
            container = _get(out, self.path)
            container[self.field_name] = self.value
            return out
        *parent, last = self.path
        _get(out, tuple(parent))[last] = self.value
        return out


def _get(document: Any, path: Path) -> Any:
    for part in path:
        document = document[part]
    return document


def paths(document: Any, prefix: Path = ()) -> list[tuple[Path, Any]]:
    """Every (path, value) below the root, containers included."""
    found: list[tuple[Path, Any]] = []
    items = (document.items() if isinstance(document, dict)
             else enumerate(document) if isinstance(document, list) else ())
    for key, value in items:
        path = (*prefix, key)
        found.append((path, value))
        found.extend(paths(value, path))
    return found


def matches(path: Path, template: Path) -> bool:
    return len(path) == len(template) and all(
        t == "*" and isinstance(p, int) or t == p for p, t in zip(path, template, strict=True))


def _refused_by(check: Callable[[str], object]) -> Callable[[str], bool]:
    def refused(value: str) -> bool:
        try:
            check(value)
        except identifiers.IdentifierError:
            return True
        return False

    return refused


def _out_of_range_date(kind: str) -> st.SearchStrategy[str]:
    impossible = st.one_of(
        st.builds("{}-{:02d}-{:02d}".format, st.integers(1000, 2030), st.integers(13, 99),
                  st.integers(1, 28)),
        st.builds("{}-{:02d}-{:02d}".format, st.integers(1000, 2030), st.integers(1, 12),
                  st.integers(32, 99)),
        st.builds("{}-02-30".format, st.integers(1000, 2030)))
    future = st.builds("{}-01-01".format, st.integers(2100, 9999))
    if kind == "date":
        return impossible
    if kind == "past":
        return st.one_of(impossible, future)
    naive = st.just("2025-03-01T10:00:00")
    if kind == "aware":  # any real aware moment is allowed: only impossible or naive ones
        return st.one_of(impossible.map(lambda d: d + "T10:00:00+00:00"), naive)
    return st.one_of(st.one_of(impossible, future).map(lambda d: d + "T10:00:00+00:00"), naive)


_WRONG_FOR_SCALAR = st.one_of(st.lists(st.integers(), max_size=2),
                              st.dictionaries(st.text("abc", max_size=3), st.integers(), max_size=2))
_WRONG_FOR_LIST = st.one_of(st.integers(), st.text(max_size=5), st.booleans())
_WRONG_FOR_DICT = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))


@st.composite
def mutations(draw: st.DrawFn, template: dict[str, Any], codes: dict[Path, frozenset[str]],
              idents: dict[Path, Callable[[str], object]], dates: dict[Path, str],
              numbers: dict[Path, tuple[int, int]]) -> Mutation:
    """One mutation of `template` that its contract must refuse."""
    every = paths(template)
    kinds = ["wrong_type", "unknown_field"]

    def at(table: dict[Path, Any]) -> list[tuple[Path, Any]]:
        return [(p, spec) for p, _ in every for t, spec in table.items() if matches(p, t)]

    coded, named, dated, numbered = at(codes), at(idents), at(dates), at(numbers)
    kinds += ["bad_code"] * bool(coded) + ["bad_identifier"] * bool(named)
    kinds += ["out_of_range"] * bool(dated or numbered)
    kind = draw(st.sampled_from(kinds))
    if kind == "wrong_type":
        path, value = draw(st.sampled_from(every))
        wrong = (_WRONG_FOR_DICT if isinstance(value, dict) else
                 _WRONG_FOR_LIST if isinstance(value, list) else _WRONG_FOR_SCALAR)
        return Mutation(kind, path, draw(wrong))
    if kind == "unknown_field":
        containers = [()] + [p for p, v in every if isinstance(v, dict)]
        path = draw(st.sampled_from(containers))
        taken = set(_get(template, path))
        name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20)
                    .filter(lambda n: n not in taken))
        return Mutation(kind, path, draw(st.one_of(st.none(), st.integers(), st.text(max_size=8))),
                        field_name=name)
    if kind == "bad_code":
        path, allowed = draw(st.sampled_from(coded))
        return Mutation(kind, path, draw(st.text(max_size=30).filter(lambda v: v not in allowed)))
    if kind == "bad_identifier":
        path, check = draw(st.sampled_from(named))
        bad = st.text("0123456789ABCDEFGHJKLMNPQRTUVWXYZIOS -", max_size=16).filter(_refused_by(check))
        return Mutation(kind, path, draw(bad))
    return _out_of_range(draw, dated, numbered)


def _out_of_range(draw: st.DrawFn, dated: list[tuple[Path, Any]],
                  numbered: list[tuple[Path, Any]]) -> Mutation:
    path, spec = draw(st.sampled_from(dated + numbered))
    if isinstance(spec, tuple):
        low, high = spec
        value: Any = draw(st.one_of(st.integers(-10**6, low - 1), st.integers(high + 1, 10**6)))
    else:
        value = draw(_out_of_range_date(spec))
    return Mutation("out_of_range", path, value)


def template_event(event_type: str) -> dict[str, Any]:
    """The shape of a seeded event of this type (its ids are replaced later)."""
    return build_event(Seeded(random.Random(0)), event_type, "H801200001001")


def build_event(ids: Seeded, event_type: str, upn: str) -> dict[str, Any]:
    extra = {"payload": move_payload("100005", 9)} if event_type == "pupil_moved" else {}
    return event_for(ids, event_type, upn, day=0, **extra)


TEMPLATES = {t: template_event(t) for t in EVENT_TYPES}


def event_mutations() -> st.SearchStrategy[tuple[str, Mutation]]:
    return st.sampled_from(EVENT_TYPES).flatmap(lambda t: st.tuples(st.just(t), mutations(
        TEMPLATES[t], EVENT_CODES, EVENT_IDENTIFIERS, EVENT_DATES, EVENT_NUMBERS)))


RECEIPT_TEMPLATE = {"packet_id": "00000000-0000-4000-8000-000000000000", "receiver": "urn-100002",
                    "status": "received", "at": "2025-12-01T10:00:00+00:00"}


def receipt_mutations() -> st.SearchStrategy[Mutation]:
    receivers: dict[Path, Callable[[str], object]] = {("receiver",): _bad_receiver}
    return mutations(RECEIPT_TEMPLATE, RECEIPT_CODES, receivers, RECEIPT_DATES, {})


def _bad_receiver(value: str) -> None:
    if re.fullmatch(r"(urn-[0-9]{6}|ukprn-1[0-9]{7}|lost-pupils|la-[0-9]{3})", value):
        return
    raise identifiers.IdentifierError(value)


def draw_examples(strategy: st.SearchStrategy[T], count: int, at_seed: int) -> list[T]:
    """`count` examples of `strategy`, the same ones for the same seed."""
    found: list[T] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(at_seed)
    @given(strategy)
    def collect(example: T) -> None:
        found.append(example)

    collect()
    return found[:count]


def generated_events(ids: Seeded, count: int, at_seed: int) -> list[tuple[str, bytes, str]]:
    """(name, bytes, upn) of `count` mutated events, each for a fresh pupil."""
    out = []
    for n, (event_type, mutation) in enumerate(draw_examples(event_mutations(), count, at_seed)):
        upn = ids.upn()
        event = mutation.apply(build_event(ids, event_type, upn))
        where = ".".join(str(p) for p in mutation.path) or "(root)"
        out.append((f"{event_type}: {mutation.kind} at {where} #{n + 1}",
                    json.dumps(event).encode(), upn))
    return out


def generated_receipts(ids: Seeded, count: int, at_seed: int) -> list[bytes]:
    out = []
    for mutation in draw_examples(receipt_mutations(), count, at_seed):
        receipt = {**RECEIPT_TEMPLATE, "packet_id": ids.uuid()}
        out.append(json.dumps(mutation.apply(receipt)).encode())
    return out
