"""What makes an inbound message unusable before its content is even read.

Domain layer, pure. The order of checks gives the most useful first reason: empty,
size, encoding, JSON; so a sender is told "not UTF-8" rather than a schema error. No
input can make these checks fail other than by refusing it: deeply nested arrays and
5,000-digit numbers are "not JSON" here, not a crash. The
content itself is checked against the contract afterwards (`handlers.py`).
"""

from __future__ import annotations

import re

from pydantic_core import from_json

from contracts.dead_letter import Problem
from services.shared.access import Kind, Principal, may_send_events_for
from services.shared.errors import MessageRefused


def screen(raw: bytes | None, max_bytes: int) -> str:
    """The message as JSON text, or `MessageRefused` saying why it cannot be read."""
    if not raw:
        raise MessageRefused("empty", [Problem(path="", message="the message has no content")])
    if len(raw) > max_bytes:
        raise MessageRefused("too_large", [Problem(
            path="", message=f"{len(raw)} bytes is over the limit of {max_bytes}")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRefused("not_utf8", [Problem(
            path="", message=f"not UTF-8: invalid byte at {exc.start}")]) from None
    try:
        # pydantic's own parser: it refuses nesting too deep and numbers too long with a
        # message, where the standard library's raises RecursionError or ValueError.
        from_json(text)
    except ValueError as exc:
        where = re.sub(r" at line (\d+) column (\d+)$", r" (line \1, column \2)", str(exc))
        raise MessageRefused("not_json", [Problem(path="", message=f"not JSON: {where}")]) from None
    return text


def authorise(sender: str, principal: Principal | None, urn: str) -> None:
    """Refuses an event its sender may not send: authority comes from the topic it was
    written to (the broker's ACLs decide who can write there), never from the event.
    `principal` None on a sender's topic means unknown or revoked."""
    if principal is None:
        raise MessageRefused("not_authorised", [Problem(
            path="", message=f"the sender {sender!r} is not an active principal of this hub")])
    if principal.kind is Kind.operator:
        return  # the bare topic: the operator's bulk loads
    if not may_send_events_for(principal, urn):
        acts = f" (it acts for {', '.join(sorted(principal.acts_for))})" \
            if principal.acts_for else ""
        what = f"LA {urn[3:]}" if urn.startswith("la-") else f"URN {urn}"
        raise MessageRefused("not_authorised", [Problem(
            path="source.la" if urn.startswith("la-") else "source.urn",
            message=f"{principal.name} may not send events for {what}{acts}")])
