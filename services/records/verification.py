"""`verify --all` shared among processes: the pupils split by ranges of their stream ids.

Each pupil's chain lies wholly inside one range, so splitting the store by pupil changes
nothing of what is checked: every process reads, opens and hashes every row of its
pupils exactly as one process would (`RecordsApplication.verify_pupil_range`), with its
own connections and its own fetch of its pupils' keys. The ranges' results are put back
in pupil order, so the breaks come out as one process would list them.

The processes are forked from a forkserver (a fresh interpreter that has imported
records, started on first use), not from the caller: the caller holds connection pools
whose threads a plain fork would copy mid-flight.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import util
from queue import SimpleQueue
from typing import Protocol
from uuid import UUID

from services.records.chain import ChainBreak

PupilRange = tuple[UUID | None, UUID | None]
"""Pupils from the first id (included) to the second (not); None: no bound."""
RangeChecked = tuple[int, int, list[ChainBreak]]
"""(pupils, events, first break per broken pupil) of one range."""

_PUPIL_IDS = 1 << 128


def pupil_ranges(count: int) -> list[PupilRange]:
    """`count` ranges of equal width covering every pupil id, in order. Stream ids are
    uuid5 of the UPN, spread evenly, so the ranges hold about as many pupils each."""
    bounds = [UUID(int=_PUPIL_IDS * n // count) for n in range(1, count)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


class RangeVerifier(Protocol):
    """What a worker checks its ranges with: records' application, opened in the worker
    from the caller's environment (so on its own connections, with its own keys)."""

    def verify_pupil_range(self, from_pupil: UUID | None, to_pupil: UUID | None
                           ) -> RangeChecked: ...

    def close(self) -> None: ...


OpenVerifier = Callable[[Mapping[str, str]], RangeVerifier]
"""Opens a worker's verifier from the caller's environment (records passes its
application class); a module's own name, so that it reaches the worker by name."""

_verifier: RangeVerifier | None = None
"""This worker process's own verifier."""


def _open_verifier(open_verifier: OpenVerifier, env: Mapping[str, str]) -> None:
    global _verifier
    _verifier = open_verifier(env)
    # Run as the worker exits (concurrent.futures ends workers with os._exit, after
    # multiprocessing's finalizers), so its connections end cleanly.
    util.Finalize(_verifier, _verifier.close, exitpriority=10)


def _verify_range(pupils: PupilRange) -> RangeChecked:
    if _verifier is None:
        raise RuntimeError("the verify worker was not initialised")
    return _verifier.verify_pupil_range(*pupils)


def verify_in_processes(open_verifier: OpenVerifier, env: Mapping[str, str],
                        ranges: Sequence[PupilRange], workers: int,
                        verify_here: Callable[[PupilRange], RangeChecked],
                        on_range: Callable[[int], None]) -> list[RangeChecked]:
    """Each range checked once, by one of `workers` processes: this one (`verify_here`)
    takes ranges from the last back, the others from the first on, so this one starts at
    once while they start up. `on_range(pupils)` as each range is done (in the order
    they finish); the results in the order of `ranges`."""
    context = multiprocessing.get_context("forkserver")
    # Records imported once, in the forkserver, not by each worker. A script's main module
    # too (every worker runs the caller's main module again, as with spawn).
    context.set_forkserver_preload(["__main__", "services.records.application"])
    results: list[RangeChecked | None] = [None] * len(ranges)

    def finished(n: int, checked: RangeChecked) -> None:
        results[n] = checked
        on_range(checked[0])

    # One connection is all a worker uses.
    with ProcessPoolExecutor(workers - 1, mp_context=context, initializer=_open_verifier,
                             initargs=(open_verifier, {**env, "POSTGRES_POOL_SIZE": "1"})
                             ) as pool:
        futures: list[Future[RangeChecked]] = [pool.submit(_verify_range, r) for r in ranges]
        done: SimpleQueue[int] = SimpleQueue()  # callbacks run in the pool's own thread
        for n, future in enumerate(futures):
            future.add_done_callback(lambda _, n=n: done.put(n))  # type: ignore[misc]

        def collect(n: int) -> bool:
            if futures[n].cancelled():  # taken back, to be checked here
                return False
            finished(n, futures[n].result())
            return True

        try:
            for n in reversed(range(len(ranges))):
                while not done.empty():
                    collect(done.get())
                if not futures[n].cancel():
                    break  # a worker has it, and every range before it
                finished(n, verify_here(ranges[n]))
            left = sum(1 for n, future in enumerate(futures)
                       if results[n] is None and not future.cancelled())
            while left:
                left -= collect(done.get())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    if any(checked is None for checked in results):
        raise RuntimeError("a range of pupils was not verified")
    return [checked for checked in results if checked is not None]
