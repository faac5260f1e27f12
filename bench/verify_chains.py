"""How long `sendhub verify --all` takes over many pupils, against a bare baseline.

Run: `make bench` (or `.venv/bin/python bench/verify_chains.py --pupils 10000 --runs 3`).
Needs PostgreSQL (deploy/local/up). Generates N pupils with 5 events each (concern,
assessment, two reviews, move) into a fresh database through the records application
(so every event is hash-chained as in production), then times:
- verify: records' `verify_all` (read every stored event, decode it, recompute and
  check every link), median of the runs;
- baseline: read every stored row with psycopg and SHA-256 its raw bytes, the least any
  check of every row must do, median of the runs, in the same process;
- the whole CLI command `sendhub verify --all` once, start-up included.
Prints the figures and the ratio verify / baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.accepted import AcceptedSchoolEventV1, Position  # noqa: E402
from contracts.school_events import SCHOOL_EVENT  # noqa: E402
from services.records.application import ConsumedPosition, RecordsApplication  # noqa: E402
from services.records.handlers import to_school_event_record  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import fresh_database  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("concern_raised", "assessment_completed", "plan_reviewed", "plan_reviewed", "pupil_moved")


def generate(app: RecordsApplication, pupils: int, batch: int = 100) -> int:
    now = datetime.now(UTC)
    offset = 0
    started = time.perf_counter()
    for first in range(0, pupils, batch):
        items = []
        for _ in range(min(batch, pupils - first)):
            who = {"upn": random_upn(), "given_name": "Pupil", "family_name": "Generated",
                   "date_of_birth": "2014-02-03"}
            for kind in KINDS:
                accepted = AcceptedSchoolEventV1(
                    accepted_at=now, upn_is_temporary=False,
                    received_from=Position(topic="bench", partition=0, offset=offset),
                    event=SCHOOL_EVENT.validate_python(school_event(kind, pupil=who)))
                items.append((to_school_event_record(accepted),
                              ConsumedPosition("bench", 0, offset)))
                offset += 1
        app.record_school_events(items)
        done = min(first + batch, pupils)
        if done % 2000 == 0 or done == pupils:
            print(f"  generated {done:,} pupils ({offset:,} events) in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    return offset


def baseline(conninfo: str) -> int:
    count = 0
    with psycopg.connect(conninfo) as conn, conn.cursor(name="all_rows") as rows:
        rows.itersize = 5_000
        rows.execute("SELECT originator_id, originator_version, state FROM records_events "
                     "ORDER BY notification_id")
        for _, _, state in rows:
            hashlib.sha256(state).hexdigest()
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with fresh_database() as settings:
        app = RecordsApplication(env=settings.eventsourcing_env())
        print(f"Generating {args.pupils:,} pupils x {len(KINDS)} events...")
        events = generate(app, args.pupils)

        verify_times, baseline_times = [], []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            counted = baseline(settings.database_conninfo)
            baseline_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            pupils, checked, breaks = app.verify_all()
            verify_times.append(time.perf_counter() - started)
            assert (pupils, checked, breaks, counted) == (args.pupils, events, [], events)
            print(f"  run {run}: verify {verify_times[-1]:.2f} s, baseline {baseline_times[-1]:.2f} s")

        started = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "sendhub.cli", "verify", "--all"], cwd=ROOT,
                             env={**os.environ, "SENDHUB_DATABASE_URL": str(settings.database_url),
                                  "COLUMNS": "100"},
                             capture_output=True, text=True, check=True)
        whole = time.perf_counter() - started
        verify, bare = statistics.median(verify_times), statistics.median(baseline_times)
        print(cli.stdout.strip().splitlines()[-1])
        print(f"pupils {args.pupils:,}, events {events:,}, runs {args.runs}")
        print(f"verify --all (in process): median {verify:.2f} s ({events / verify:,.0f} events/s)")
        print(f"bare baseline (read + SHA-256 of raw rows): median {bare:.2f} s "
              f"({events / bare:,.0f} events/s)")
        print(f"ratio verify / baseline: {verify / bare:.1f}x")
        print(f"`sendhub verify --all` as a command, start-up included: {whole:.2f} s")


if __name__ == "__main__":
    main()
