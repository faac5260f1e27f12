"""Webhook signatures: HMAC-SHA256 over `"<timestamp>.<body>"`, as Stripe signs.

Pure. The gateway sends `X-Sendhub-Signature: t=<unix seconds>,v1=<hex digest>`. To
verify, a receiver:

1. splits the header on `,` into `t` and `v1`;
2. computes `HMAC-SHA256(secret, f"{t}.".encode() + raw_body)` in hex, over the body's
   bytes exactly as received (before any JSON parsing);
3. compares it with `v1` in constant time (`hmac.compare_digest`), and refuses a `t`
   more than a few minutes from its own clock (a replayed delivery).

`verify` below does exactly that, for receivers written in Python and for the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Sendhub-Signature"
TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    """Raised by `verify` when a delivery was not signed with the secret, or is stale."""


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Passes silently for a genuine, fresh delivery; else `BadSignature`."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise BadSignature("the signature header has no t= and v1=") from None
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise BadSignature("the signature does not match the body")
    if abs(now - timestamp) > tolerance:
        raise BadSignature("the delivery is too old (or from the future)")
