"""Background work a service does besides consuming: relaying, anchoring, delivering."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

MAX_BACKOFF_SECONDS = 10.0


class PeriodicTask:
    """Calls `once()` until stopped: again at once while it says more work is waiting,
    else after `interval` seconds or as soon as something calls `wake()` (new work is
    known to be waiting: a batch was stored). An error is retried, backing off from 1 s to
    `MAX_BACKOFF_SECONDS`, so a broker or database outage delays the work but never
    ends it; the outage is logged when it starts and when it ends, not every retry."""

    def __init__(self, interval: float, log: logging.Logger, name: str) -> None:
        self.interval = interval
        self.log = log
        self.name = name
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Run `once()` now rather than at the end of the interval (safe from the task's
        own event loop only)."""
        self._woken.set()

    async def _rest(self) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), self.interval)
        self._woken.clear()

    async def once(self) -> bool:
        """Do one round of work; True when more is already waiting."""
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            try:
                more = await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.failures += 1
                if self.failures == 1:
                    self.log.error(f"{self.name}.retrying", exc_info=error)
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 2.0 ** (self.failures - 1)))
                continue
            if self.failures:
                self.log.info(f"{self.name}.recovered", extra={"attempts": self.failures})
                self.failures = 0
            if not more:
                await self._rest()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
