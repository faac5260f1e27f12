"""How long replaying one pupil's 200-event history takes, on both time axes.

Run: `.venv/bin/python bench/replay.py --calls 200 --runs 3`. Needs PostgreSQL
(deploy/local/up). Into a fresh database, through the records application (so every
event is sealed and hash-chained as in production), records one pupil's 200 events
(concerns, assessments, plan reviews, one every day from September 2024, a move last)
in two halves, the instant between them noted, and `--others` pupils of 5 events each
so the table is not trivially small. Then, each run, `--calls` times each:
- `replay(upn, known_at=...)`: as the hub held it between the two halves (100 events);
- `replay(upn, as_of_day=...)`: what had happened by the 100th day, as known now;
- the auditor's command in process (`sendhub history --as-of D --json`):
  `sendhub.replay.history_at` and `history_document` as JSON, which is what the command
  does after its access check and before its access log entry;
- the bare baseline: one SELECT of that pupil's 200 rows from records_events, ordered
  by version, on an open psycopg connection, binary rows as records reads them (no
  decryption, no decoding).
Prints each run's medians, the medians over runs, p99, and the ratio replay / baseline.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import LOGS, fresh_database, percentile  # noqa: E402
from verify_chains import generate  # noqa: E402

from contracts.accepted import AcceptedSchoolEventV1, Position  # noqa: E402
from contracts.school_events import SCHOOL_EVENT  # noqa: E402
from sendhub.replay import history_at, history_document  # noqa: E402
from services.records.application import ConsumedPosition, RecordsApplication  # noqa: E402
from services.records.domain import pupil_id_for  # noqa: E402
from services.records.handlers import to_school_event_record  # noqa: E402
from services.shared.settings import HubSettings  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402

KINDS = ("concern_raised", "assessment_completed", "plan_reviewed", "plan_reviewed")
FIRST_DAY = date(2024, 9, 2)


def pupil_events(upn: str, count: int) -> list[dict[str, Any]]:
    """`count` school events of one pupil, a day apart, the last a move."""
    who = {"upn": upn, "given_name": "Pupil", "family_name": "Replayed",
           "date_of_birth": "2014-02-03"}
    out = []
    for i in range(count):
        kind = "pupil_moved" if i == count - 1 else KINDS[i % len(KINDS)]
        day = datetime.combine(FIRST_DAY + timedelta(days=i), datetime.min.time(), UTC)
        out.append(school_event(kind, pupil=who, occurred_at=(day + timedelta(hours=10))
                                .isoformat()))
    return out


def record(app: RecordsApplication, events: list[dict[str, Any]], first_offset: int) -> None:
    """Record as records' consumer does: one partition's batch, with its positions."""
    now = datetime.now(UTC)
    items = []
    for n, e in enumerate(events, start=first_offset):
        accepted = AcceptedSchoolEventV1(
            accepted_at=now, upn_is_temporary=False,
            received_from=Position(topic="bench-replay", partition=0, offset=n),
            event=SCHOOL_EVENT.validate_python(e))
        items.append((to_school_event_record(accepted), ConsumedPosition("bench-replay", 0, n)))
    app.record_school_events(items)


def timed(calls: int, work: Callable[[], object]) -> list[float]:
    """Milliseconds of each of `calls` calls."""
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        work()
        out.append((time.perf_counter() - started) * 1000)
    return out


def profiled(label: str, work: Callable[[], object], calls: int) -> None:
    """Where a replay's time goes: the top functions, by own time and with callees."""
    profile = cProfile.Profile()
    profile.runcall(timed, calls, work)
    LOGS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z_]+", "-", label).strip("-")
    path = LOGS / f"{slug if slug.startswith('replay') else 'replay-' + slug}.prof"
    profile.dump_stats(path)
    print(f"profile of {calls} x {label} ({path}):")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(14)
        print("\n".join(line for line in out.getvalue().splitlines()
                        if line.strip() and "function calls" not in line
                        and not line.startswith(("Ordered by", "   List reduced")))[:6000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--others", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="also profile the replays (cProfile, .cache/bench/replay-*.prof)")
    args = parser.parse_args()
    with fresh_database(HubSettings()) as settings:
        app = RecordsApplication(env=settings.eventsourcing_env())
        print(f"Recording {args.others:,} other pupils x 5 events...", flush=True)
        generate(app, args.others)
        upn = random_upn()
        events = pupil_events(upn, args.events)
        half = args.events // 2
        record(app, events[:half], 0)
        time.sleep(0.05)
        known_at = datetime.now(UTC)  # between the two halves on the recording axis
        time.sleep(0.05)
        record(app, events[half:], half)
        as_of_day = FIRST_DAY + timedelta(days=half - 1)  # the first half happened by then
        pupil_id = pupil_id_for(upn)

        def cli() -> str:
            entries, _ = history_at(app, upn, None, as_of_day)
            return json.dumps(history_document(upn, entries, known_at=None, as_of=as_of_day))

        with psycopg.connect(settings.database_conninfo) as conn:
            def bare() -> int:
                with conn.cursor(binary=True) as rows:  # as records reads them
                    return len(rows.execute(
                        "SELECT originator_version, topic, state FROM records_events "
                        "WHERE originator_id = %s ORDER BY originator_version", (pupil_id,)
                    ).fetchall())

            counts = (len(app.replay(upn, known_at=known_at)),
                      len(app.replay(upn, as_of_day=as_of_day)),
                      len(app.history_events(upn)), bare())
            print(f"pupil {upn}: {counts[2]} events stored, {counts[3]} rows; as known at "
                  f"{known_at:%H:%M:%S.%f}: {counts[0]}; as of {as_of_day}: {counts[1]}")
            if counts != (half, half, args.events, args.events):
                raise SystemExit(f"replays selected {counts}, expected "
                                 f"{(half, half, args.events, args.events)}")
            measures: dict[str, Callable[[], object]] = {
                "replay known_at": lambda: app.replay(upn, known_at=known_at),
                "replay as_of_day": lambda: app.replay(upn, as_of_day=as_of_day),
                "history --as-of --json (in process)": cli,
                "bare SELECT of the 200 rows": bare,
            }
            medians: dict[str, list[float]] = {k: [] for k in measures}
            p99s: dict[str, list[float]] = {k: [] for k in measures}
            for run in range(1, args.runs + 1):
                for label, work in measures.items():
                    work()  # warm: the pupil's key in the cache, the statement prepared
                    times = timed(args.calls, work)
                    medians[label].append(statistics.median(times))
                    p99s[label].append(percentile(times, 99))
                print(f"  run {run}: " + ", ".join(f"{k} {v[-1]:.2f} ms"
                                                   for k, v in medians.items()), flush=True)
            if args.profile:
                for label in ("replay known_at", "replay as_of_day",
                              "history --as-of --json (in process)"):
                    profiled(label, measures[label], args.calls)
    print(f"one pupil of {args.events} events among {args.others:,} others x 5; "
          f"{args.calls} calls each per run, {args.runs} runs; medians of per-run medians")
    for label in measures:
        runs = ", ".join(f"{v:.2f}" for v in medians[label])
        print(f"{label}: median {statistics.median(medians[label]):.2f} ms (runs: {runs}); "
              f"p99 {statistics.median(p99s[label]):.2f} ms (median over runs)")
    bare_ms = statistics.median(medians["bare SELECT of the 200 rows"])
    for label in ("replay known_at", "replay as_of_day", "history --as-of --json (in process)"):
        mine = statistics.median(medians[label])
        verdict = "meets" if mine <= 10 else "misses"
        print(f"ratio {label} / bare: {mine / bare_ms:.1f}x ({verdict} the 10 ms median target)")


if __name__ == "__main__":
    main()
