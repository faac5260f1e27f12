"""Background work a service does besides consuming: relaying, anchoring, delivering."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress


class PeriodicTask:
    """Calls `once()` until stopped: again at once while it says more work is waiting,
    else after `interval` seconds. An error is logged and retried after a second, so a
    broker or database outage delays the work but never ends it."""

    def __init__(self, interval: float, log: logging.Logger, name: str) -> None:
        self.interval = interval
        self.log = log
        self.name = name
        self._task: asyncio.Task[None] | None = None

    async def once(self) -> bool:
        """Do one round of work; True when more is already waiting."""
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            try:
                if not await self.once():
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception(f"{self.name}.retry")
                await asyncio.sleep(1.0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
