"""The cost of per-pupil encryption on the backfill path, with and without, in one run.

Run: `make bench` (or `.venv/bin/python bench/encryption.py --pupils 2000 --runs 3`).
Needs PostgreSQL (deploy/local/up). The backfill path is records storing a school's
bulk load: batches of 200 accepted events (as records' consumer takes them), each stored
in one transaction with its Kafka position. Each run, into a fresh database each time:
- sealed: the records application as it runs, each event sealed with its pupil's data
  key (AES-256-GCM; keys made, wrapped with the master key and stored in `pupil_keys`
  in one round trip per batch);
- plain (the baseline): the same application with eventsourcing's plain mapper, the
  same events, nothing else changed;
and then reads every pupil's history back (decrypting, or not). The order of the two
alternates between runs. Prints medians and the ratios sealed / plain.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.persistence import Mapper  # noqa: E402

from bench.harness import fresh_database  # noqa: E402
from contracts.accepted import AcceptedSchoolEventV1, Position  # noqa: E402
from contracts.school_events import SCHOOL_EVENT  # noqa: E402
from services.records.application import ConsumedPosition, RecordsApplication  # noqa: E402
from services.records.handlers import to_school_event_record  # noqa: E402
from services.shared.pupil_keys import InMemoryPupilKeys  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402

KINDS = ("concern_raised", "assessment_completed", "plan_reviewed", "plan_reviewed", "pupil_moved")
BATCH = 200


class PlainRecords(RecordsApplication):
    """Records without sealing: the baseline (records' own tables)."""

    name = "records"

    def construct_mapper(self) -> Mapper[UUID]:
        self._keys = InMemoryPupilKeys()  # asked for by record_school_events, never used
        return Mapper(transcoder=self.construct_transcoder())


def backfill(pupils: int) -> tuple[list[str], list[list[Any]]]:
    now = datetime.now(UTC)
    upns, items, offset = [], [], 0
    for _ in range(pupils):
        upn = random_upn()
        upns.append(upn)
        who = {"upn": upn, "given_name": "Pupil", "family_name": "Generated",
               "date_of_birth": "2014-02-03"}
        for kind in KINDS:
            accepted = AcceptedSchoolEventV1(
                accepted_at=now, upn_is_temporary=False,
                received_from=Position(topic="bench", partition=0, offset=offset),
                event=SCHOOL_EVENT.validate_python(school_event(kind, pupil=who)))
            items.append((to_school_event_record(accepted), ConsumedPosition("bench", 0, offset)))
            offset += 1
    return upns, [items[i:i + BATCH] for i in range(0, len(items), BATCH)]


def one(kind: type[RecordsApplication], pupils: int) -> tuple[float, float, int]:
    """Store `pupils`' backfill and read every history back, in a database of its own."""
    with fresh_database() as settings:
        app = kind(env=settings.eventsourcing_env())
        try:
            upns, batches = backfill(pupils)
            started = time.perf_counter()
            for batch in batches:
                app.record_school_events(batch)
            stored = time.perf_counter() - started
            started = time.perf_counter()
            read = sum(len(app.history_events(upn)) for upn in upns)
            return stored, time.perf_counter() - started, read
        finally:
            app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    events = args.pupils * len(KINDS)
    times: dict[str, list[tuple[float, float]]] = {"sealed": [], "plain": []}
    for run in range(1, args.runs + 1):
        order = [("sealed", RecordsApplication), ("plain", PlainRecords)]
        for label, kind in order if run % 2 else order[::-1]:
            stored, read, count = one(kind, args.pupils)
            assert count == events, (label, count, events)
            times[label].append((stored, read))
            print(f"  run {run} {label}: stored {events:,} events in {stored:.2f} s, "
                  f"read back in {read:.2f} s", flush=True)
    med = {k: (statistics.median(s for s, _ in v), statistics.median(r for _, r in v))
           for k, v in times.items()}
    print(f"pupils {args.pupils:,}, events {events:,}, batches of {BATCH}, runs {args.runs}")
    for label in ("sealed", "plain"):
        stored, read = med[label]
        print(f"{label}: backfill median {stored:.2f} s ({events / stored:,.0f} events/s), "
              f"read back median {read:.2f} s ({events / read:,.0f} events/s)")
    print(f"ratio sealed / plain: backfill {med['sealed'][0] / med['plain'][0]:.2f}x, "
          f"read back {med['sealed'][1] / med['plain'][1]:.2f}x")


if __name__ == "__main__":
    main()
