"""The steady stream: seeded, valid school events of many pupils, interleaved.

Each pupil's story is one or two concerns, an assessment, a review, then a move to one
of a few schools, so every pupil ends with a packet. Stories overlap (a pool of active
pupils, one event of a random one at a time), as many schools' systems would send them;
each pupil's events keep their order on one key, the UPN.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import date, timedelta
from typing import Any

from contracts.identifiers import upn_check_letter
from faults.model import Message, ValidEvent
from tests.factories import pupil, school_event

SOURCE_URN = "100001"
RECEIVER_URNS = ("100002", "100003", "100004", "100005", "100006")
RECEIVERS = tuple(f"urn-{urn}" for urn in RECEIVER_URNS)
ACTIVE_PUPILS = 40
FIRST_DAY = date(2024, 9, 2)


class Seeded:
    """Identifiers from one seeded generator: the same seed gives the same run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.upns: set[str] = set()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def upn(self) -> str:
        while True:
            body = f"801{self.rng.randrange(10**9):09d}"
            upn = upn_check_letter(body) + body
            if upn not in self.upns:
                self.upns.add(upn)
                return upn


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def event_for(ids: Seeded, event_type: str, upn: str, day: int, **changes: Any) -> dict[str, Any]:
    """A valid event of `tests.factories.school_event`, for this pupil, with a seeded id."""
    when = FIRST_DAY + timedelta(days=day)
    fields: dict[str, Any] = {"event_id": ids.uuid(), "pupil": pupil(upn, "Pat"),
                              "occurred_at": f"{when.isoformat()}T10:00:00+00:00",
                              "source": {"urn": SOURCE_URN, "system": "SIMS"}}
    return school_event(event_type, **{**fields, **changes})


def move_payload(urn: str, day: int) -> dict[str, Any]:
    when = FIRST_DAY + timedelta(days=day)
    return {"destination": {"kind": "school", "urn": urn}, "move_kind": "in_year",
            "effective_date": when.isoformat()}


def story(ids: Seeded, upn: str) -> list[tuple[dict[str, Any], str | None]]:
    """One pupil's events in order, each with the receiver of its packet (moves only)."""
    rng = ids.rng
    kinds = ["concern_raised"] * rng.randint(1, 2) + ["assessment_completed", "plan_reviewed"]
    events: list[tuple[dict[str, Any], str | None]] = [
        (event_for(ids, kind, upn, day=n * 7), None) for n, kind in enumerate(kinds)]
    urn = rng.choice(RECEIVER_URNS)
    move_day = len(kinds) * 7 + 7
    events.append((event_for(ids, "pupil_moved", upn, day=move_day,
                             payload=move_payload(urn, move_day + 3)), f"urn-{urn}"))
    return events


def canary_events(ids: Seeded, key: bytes | None) -> tuple[list[Message], list[ValidEvent], str, str]:
    """A fresh pupil's concern and move, sent on `key` (the hostile message's key, so on
    its partition). Returns the messages, the valid events, the UPN and the move's id."""
    upn = ids.upn()
    urn = ids.rng.choice(RECEIVER_URNS)
    concern = event_for(ids, "concern_raised", upn, day=0)
    move = event_for(ids, "pupil_moved", upn, day=14, payload=move_payload(urn, 17))
    messages = [Message("events", key if key is not None else upn.encode(), encode(e))
                for e in (concern, move)]
    valid = [ValidEvent(upn, concern["event_id"]), ValidEvent(upn, move["event_id"], f"urn-{urn}")]
    return messages, valid, upn, move["event_id"]


def steady_stream(ids: Seeded, count: int) -> list[tuple[Message, ValidEvent]]:
    """About `count` events (every story is finished), interleaved over active pupils."""
    rng = ids.rng
    active: list[list[tuple[dict[str, Any], str | None]]] = []
    out: list[tuple[Message, ValidEvent]] = []
    started = 0
    while len(out) < count or active:
        while len(out) + sum(len(s) for s in active) < count and len(active) < ACTIVE_PUPILS:
            active.append(story(ids, ids.upn()))
            started += 1
        if not active:
            break
        chosen = active[rng.randrange(len(active))]
        event, receiver = chosen.pop(0)
        upn = event["pupil"]["upn"]
        out.append((Message("events", upn.encode(), encode(event)),
                    ValidEvent(upn, event["event_id"], receiver)))
        if not chosen:
            active.remove(chosen)
    return out
