"""A token bucket per principal: how many requests each may make per minute.

Pure (the clock is passed in). Hand-written rather than a library: it is twenty lines,
the hub's dependencies have no rate limiter, and the gateway needs it keyed by the
authenticated principal (which it knows only after authentication), in process. Each
gateway process limits on its own, so N gateways allow N times the rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`per_minute` requests a minute, refilled continuously, with a burst of as many."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, principal: str) -> float:
        """0.0 when the request may go ahead (a token is spent), else the seconds until
        the next token."""
        now = self.clock()
        bucket = self._buckets.setdefault(principal, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate
