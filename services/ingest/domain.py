"""What makes an inbound message unusable before its content is even read.

Domain layer, pure. The order of checks gives the most useful first reason: empty,
size, encoding, JSON; so a sender is told "not UTF-8" rather than a schema error. The
content itself is checked against the contract afterwards (`handlers.py`).
"""

from __future__ import annotations

import json

from contracts.dead_letter import Problem
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
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise MessageRefused("not_json", [Problem(
            path="", message=f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        ]) from None
    return text
