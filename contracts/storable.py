"""What the hub's stores cannot hold, refused at the edge with a clear problem.

Contract layer, standard library only. PostgreSQL's text and jsonb cannot hold the NUL
character (U+0000): an event carrying one would be accepted, then fail in a store
downstream, so inbound contracts refuse it where it arrives, naming the field.
(Lone surrogates cannot arrive: they are not valid JSON, and the JSON parser refuses
them.)
"""

from __future__ import annotations

from typing import Any


def refuse_unstorable(data: Any) -> Any:
    """A model's `mode="before"` validator: each string field, or string in a list field,
    must be storable. Nested models check their own fields, so the error's location
    names the model and the message names the field."""
    if isinstance(data, dict):
        # Every model of every event on every topic runs this: no list made per field.
        for key, value in data.items():
            if isinstance(value, str):
                if "\x00" not in value:
                    continue
            elif not isinstance(value, list) or not any(
                    isinstance(t, str) and "\x00" in t for t in value):
                continue
            raise ValueError(f"{key} holds a NUL character (\\u0000), which the hub "
                             "cannot store; remove it and send the event again")
    return data
