"""CPU seconds used on this machine during a benchmark, by who used them: each service
process of the hub, Kafka, PostgreSQL, and the benchmark's own process. On a machine
where everything shares the cores, this says where the time goes: throughput is the
cores divided by the CPU each event costs all of them together."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping

TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[str, float]]:
    """pid: (what it is, CPU seconds so far) for every process we may read."""
    found: dict[int, tuple[str, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as cmd:
                cmdline = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone already
        used = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        found[int(name)] = (cmdline, used)
    return found


class CpuMeter:
    """CPU seconds from `start()` to `stop()`, by kind of process; `services` names the
    hub's own processes by pid (the benchmark's `Hub.procs`)."""

    def __init__(self) -> None:
        self.before: dict[int, tuple[str, float]] = {}
        self.used: Counter[str] = Counter()

    def start(self) -> None:
        self.before = _processes()

    def stop(self, services: Mapping[int, str]) -> Counter[str]:
        me = os.getpid()
        for pid, (cmdline, used) in _processes().items():
            kind = (services.get(pid) or ("benchmark" if pid == me else
                    "Kafka" if "kafka" in cmdline and "java" in cmdline else
                    "PostgreSQL" if "postgres" in cmdline.split(" ", 1)[0] else None))
            if kind is not None:
                self.used[kind] += used - self.before.get(pid, (cmdline, 0.0))[1]
        return self.used

    def line(self, events: int, wall: float) -> str:
        total = sum(self.used.values())
        parts = ", ".join(f"{kind} {1000 * used / events:.2f}"
                          for kind, used in self.used.most_common())
        cores = os.cpu_count() or 1
        return (f"CPU ms per event: {parts}; all {1000 * total / events:.2f} "
                f"({100 * total / (wall * cores):.0f}% of {cores} cores over {wall:.1f} s)")
