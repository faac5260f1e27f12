"""The suite's table and the details behind it (rich)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from faults.checker import Outcome, failures
from faults.recovery import Recovery


@dataclass
class PhaseReport:
    instances: int
    outcome: Outcome
    recoveries: list[Recovery]
    fail_on_duplicates: bool
    notes: list[str] = field(default_factory=list)
    log_bytes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    started: float = 0.0  # when the stream started (epoch seconds)
    publisher_stopped: str | None = None  # the suite's own load stopped early: too little checked

    @property
    def failures(self) -> list[str]:
        stopped = [f"the publisher stopped before the end of the plan ({self.publisher_stopped}); "
                   "what it never sent was not checked"] if self.publisher_stopped else []
        return failures(self.outcome, self.fail_on_duplicates) + stopped


def _seconds(values: list[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return f"{statistics.median(values):.1f}", f"{max(values):.1f}"


def summary(found: list[Recovery]) -> list[str]:
    """n (with how many never recovered, overlapped the next fault, or had nothing
    moving), median and max seconds; ">" marks a lower bound (overlapped)."""
    measured = [r for r in found if r.seconds is not None]
    median, slowest = _seconds([r.seconds for r in measured if r.seconds is not None])
    if any(r.status == "overlapped" and r.seconds == max(m.seconds or 0 for m in measured)
           for r in measured):
        slowest = ">" + slowest
    counts = Counter(r.status for r in found)
    notes = [f"{counts[s]} {word}" for s, word in (("not recovered", "never"),
                                                   ("overlapped", "overlapped"),
                                                   ("nothing moving", "n/a"),
                                                   ("nothing left", "after the stream"))
             if counts[s]]
    return [f"{len(found)}" + (f" ({', '.join(notes)})" if notes else ""), median, slowest]


def recovery_rows(report: PhaseReport) -> list[list[str]]:
    by_label: dict[str, list[Recovery]] = {}
    for r in report.recoveries:
        by_label.setdefault(r.fault.label, []).append(r)
    rows = []
    for label in sorted(by_label):
        found = by_label[label]
        rows.append([str(report.instances), label, *summary(found)])
    return rows


def outcome_cells(o: Outcome) -> list[str]:
    dups = (f"{o.dup_packets} pk / {o.dup_history} hist"
            f" ({o.dup_packets_after_crash + o.dup_history_after_crash} after a crash)")
    return [str(sum(o.lost.values())), str(sum(o.doubled.values())), dups,
            f"{o.hostile_handled}/{len(o.hostile)}", f"{o.canaries_delivered}/{len(o.canaries)}",
            str(len(o.valid_rejected))]


def table(reports: list[PhaseReport]) -> Table:
    t = Table(title="Fault suite", show_lines=False)
    for name in ("inst", "fault", "n", "recovery median s", "max s", "lost", "doubled",
                 "dup publishes", "hostile dead-lettered", "canaries delivered", "valid rejected"):
        t.add_column(name, justify="left" if name in ("fault", "dup publishes") else "right")
    for report in reports:
        for row in recovery_rows(report):
            t.add_row(*row, "", "", "", "", "", "")
        verdict = "PASS" if not report.failures else "FAIL"
        t.add_row(str(report.instances), f"[bold]whole phase: {verdict}[/bold]",
                  *summary(report.recoveries),
                  *outcome_cells(report.outcome), end_section=True)
    return t


def details(console: Console, report: PhaseReport) -> None:
    o = report.outcome
    console.print(f"[bold]{report.instances} instance(s) each[/bold] ({report.seconds:.0f} s): "
                  f"{o.valid_events} valid events, {len(o.hostile)} hostile messages, "
                  f"{o.amendments} amendments")
    lost = {k: v for k, v in o.lost.items() if v}
    doubled = {k: v for k, v in o.doubled.items() if v}
    if lost:
        console.print(f"  lost: {lost}")
    if doubled:
        console.print(f"  doubled: {doubled}")
    if o.misordered:
        console.print(f"  pupils whose stored order differs from the order sent: {o.misordered}")
    for line in sorted(Counter(o.valid_rejected).items())[:10]:
        console.print(f"  valid but dead-lettered: {line[1]} x {line[0]}")
    fates = Counter(fate for _, fate, ok in o.hostile if ok)
    console.print("  hostile handled as: " + "; ".join(f"{n} x {f}" for f, n in fates.most_common()))
    for hostile, fate, ok in o.hostile:
        if not ok:
            console.print(f"  [red]not handled[/red]: {hostile.name} ({hostile.family}): {fate}")
    missing = [c.name for c, ok in o.canaries if not ok]
    if missing:
        console.print(f"  canaries not delivered ({len(missing)}), behind: " + "; ".join(missing[:12])
                      + (" ..." if len(missing) > 12 else ""))
    for r in report.recoveries:
        shown = (f"recovered in {r.seconds:.1f} s" if r.status == "recovered" else
                 f"still not moving at the next fault, {r.seconds:.1f} s later"
                 if r.status == "overlapped" else
                 f"{r.stuck} never moved again" if r.stuck else
                 "came after the stream's end, and nothing was left to write"
                 if r.status == "nothing left" else "nothing was moving before it")
        console.print(f"  fault {r.fault.label} ({r.fault.target}) at "
                      f"{r.fault.at - report.started:.1f} s: {shown} ({r.lanes} lanes followed)")
    if report.log_bytes:
        console.print("  service logs: " + ", ".join(
            f"{s} {b / 1e6:.1f} MB" for s, b in sorted(report.log_bytes.items())))
    faults = ", ".join(f"{r.fault.label} {r.fault.at - report.started:.2f} s"
                       for r in report.recoveries)
    for what, times in o.unexplained[:10]:
        copies = ", ".join(f"{t / 1000 - report.started:.2f} s" for t in times)
        console.print(f"  duplicate no crash explains: {what}, copies at {copies} "
                      f"(faults: {faults})")
    for note in report.notes:
        console.print(f"  note: {note}")
    for why in report.failures:
        console.print(f"  [red]FAIL[/red]: {why}")


def print_report(console: Console, reports: list[PhaseReport]) -> None:
    for report in reports:
        details(console, report)
    console.print(table(reports))
