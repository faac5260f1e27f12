"""Time to recover from each fault, from the broker's timestamps (LogAppendTime) of
what each stage wrote. Pure.

A stage's lanes are the partitions of pupils' UPNs (the key all the way from school
events to history; packets are placed by their pupil's UPN). For a fault at t, every
lane of an affected stage that moved in the 5 s before t is followed: its recovery is
the end of the last pause of at least `PAUSE` seconds that is under way at t or starts
within `WINDOW` seconds after it, measured from t; with no such pause it is the time to
its next record. The fault's recovery is the slowest lane of its stages. A lane that
never writes again has not recovered, unless the fault came after the stream's last
message was sent: then it had nothing left to write (whether all of it arrived is the
checker's business). With no lane moving before t, there is nothing to measure. When
the next fault on the same stages comes before the slowest lane moved again, the time
to it is a lower bound ("overlapped"): what follows is its doing too.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from faults.model import Fault

PAUSE = 1.5  # seconds: longer than any pause of a stage under the steady stream
WINDOW = 5.0  # seconds after the fault in which its pause must start
ACTIVE = 5.0  # seconds before the fault in which a lane must have moved


@dataclass(frozen=True)
class Recovery:
    fault: Fault
    seconds: float | None  # None: not measured (see status)
    status: str  # "recovered", "overlapped" (seconds is a lower bound), "not recovered",
    # "nothing moving", "nothing left" (after the stream ended, no lane wrote again)
    lanes: int = 0  # lanes of its stages that were moving before it
    stuck: int = 0  # of those, lanes that never wrote again


Lanes = dict[tuple[str, int], list[float]]


def lanes_of(progress: Iterable[tuple[str, int, int]]) -> Lanes:
    lanes: Lanes = defaultdict(list)
    for stage, lane, ts_ms in progress:
        lanes[(stage, lane)].append(ts_ms / 1000)
    for times in lanes.values():
        times.sort()
    return lanes


def lane_recovery(times: list[float], t: float) -> float | None:
    """Seconds from t until the lane moves again after the fault's pause; None if never."""
    after = bisect.bisect_right(times, t)
    if after == len(times):
        return None
    end = times[after]
    for i in range(max(after, 1), len(times)):
        start, stop = times[i - 1], times[i]
        if start >= t + WINDOW:
            break
        if stop - start >= PAUSE:
            end = max(end, stop)
    return max(0.0, end - t)


def recovery(fault: Fault, lanes: Lanes, next_fault: float | None = None,
             stream_ended: float | None = None) -> Recovery:
    t = fault.at
    after_the_stream = stream_ended is not None and t >= stream_ended
    slowest = 0.0
    moving = stuck = drained = 0
    for (stage, _), times in lanes.items():
        if stage not in fault.stages:
            continue
        first = bisect.bisect_left(times, t - ACTIVE)
        if first >= len(times) or times[first] > t:
            continue  # not moving before the fault: stalled already, or idle
        moving += 1
        seconds = lane_recovery(times, t)
        if seconds is None and after_the_stream:
            drained += 1  # nothing was left for it to write
        elif seconds is None:
            stuck += 1
        else:
            slowest = max(slowest, seconds)
    if moving == 0:
        return Recovery(fault, None, "nothing moving")
    if stuck:
        return Recovery(fault, None, "not recovered", moving, stuck)
    if drained == moving:
        return Recovery(fault, None, "nothing left", moving)
    if next_fault is not None and t + slowest > next_fault:
        return Recovery(fault, round(next_fault - t, 2), "overlapped", moving)
    return Recovery(fault, round(slowest, 2), "recovered", moving)


def recoveries(faults: list[Fault], progress: Iterable[tuple[str, int, int]],
               stream_ended: float | None = None) -> list[Recovery]:
    lanes = lanes_of(progress)
    ordered = sorted(faults, key=lambda f: f.at)

    def next_on_its_stages(fault: Fault) -> float | None:
        return next((f.at for f in ordered
                     if f.at > fault.at and set(f.stages) & set(fault.stages)), None)

    return [recovery(f, lanes, next_on_its_stages(f), stream_ended) for f in faults]
