"""How fast transfers keeps one partition's batch of pupils' histories on PostgreSQL:
`TransfersApplication.record_history` fed batches of 200 `PupilHistoryEventV1` (20
pupils x 10 versions, interleaved, each history ending in a move, so every pupil's
packet is built and sealed), against a bare baseline: the same rows inserted into a
plain table with one `executemany` per batch. No Kafka: the application in process, on
a fresh database of its own (created and dropped here).

    python bench/transfers_batch.py [--runs 3] [--batches 5] [--profile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.history import PupilHistoryEventV1  # noqa: E402
from contracts.inbound import INBOUND_EVENT  # noqa: E402
from services.shared.pupil_keys import pupil_keys_for  # noqa: E402
from services.transfers.application import TransfersApplication  # noqa: E402
from services.transfers.registry import RegisteredSetting  # noqa: E402
from services.transfers.repository import ConsumedPosition  # noqa: E402
from tests.factories import random_upn, school_event  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import fresh_database  # noqa: E402

HISTORY = ("concern_raised", "assessment_completed", "plan_reviewed", "plan_reviewed")
Batch = list[tuple[PupilHistoryEventV1, ConsumedPosition]]


def batches(topic: str, count: int, pupils: int, per_pupil: int) -> list[Batch]:
    """`count` batches of one partition, each `pupils` new pupils x `per_pupil` versions,
    interleaved as records relays them, each history ending in a move."""
    out, offset = [], 0
    recorded_at = datetime.now(UTC)
    for b in range(count):
        streams = []
        for n in range(pupils):
            upn = random_upn()
            who = {"upn": upn, "given_name": "Pupil", "family_name": f"Bench{b}x{n}",
                   "date_of_birth": "2015-01-01"}
            stream = []
            for v in range(1, per_pupil + 1):
                if v == per_pupil:
                    e = school_event("pupil_moved", pupil=who,
                                     occurred_at="2025-10-20T09:00:00+01:00", payload={
                                         "destination": {"kind": "school",
                                                         "urn": f"{200001 + n}"},
                                         "move_kind": "in_year",
                                         "effective_date": "2025-11-10"})
                else:
                    e = school_event(HISTORY[(v - 1) % len(HISTORY)], pupil=who)
                stream.append(PupilHistoryEventV1(
                    pupil_id=UUID(int=n + 1), upn=upn, version=v, notification_id=v,
                    recorded_at=recorded_at, upn_is_temporary=False,
                    event=INBOUND_EVENT.validate_python(e, context={"trusted": True}),
                    event_hash=f"{v:064x}"))
            streams.append(stream)
        batch: Batch = []
        for v in range(per_pupil):
            for stream in streams:
                batch.append((stream[v], ConsumedPosition(topic, 0, offset)))
                offset += 1
        out.append(batch)
    return out


def registry(pupils: int) -> list[RegisteredSetting]:
    """The sending school and every receiving one, as the operator imports them."""
    schools = [RegisteredSetting(urn="100001", name="Oak Primary", phase="Primary",
                                 la_code="801", la_name="Bristol, City of",
                                 establishment_number="2001")]
    schools += [RegisteredSetting(urn=f"{200001 + n}", name=f"Receiver {n}", phase="Primary",
                                  la_code="801", la_name="Bristol, City of",
                                  establishment_number=f"{3000 + n}") for n in range(pupils)]
    return schools


def run_hub(app: TransfersApplication, work: list[Batch]) -> tuple[float, int]:
    started = time.perf_counter()
    issued = 0
    for batch in work:
        issued += len(app.record_history(batch))
    return time.perf_counter() - started, issued


def run_bare(conninfo: str, work: list[Batch]) -> float:
    """The same rows (the message's JSON as the event, its bytes as the seal), one
    `executemany` and one commit per batch: the floor for storing a batch at all."""
    rows = [[(m.upn, m.version, m.notification_id, m.model_dump_json(),
              m.model_dump_json().encode()) for m, _ in batch] for batch in work]
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        for batch_rows in rows:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_bare_history (upn, version, notification_id, event, "
                    "sealed) VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT DO NOTHING",
                    batch_rows)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=5, help="batches per run")
    parser.add_argument("--pupils", type=int, default=20, help="pupils per batch")
    parser.add_argument("--per-pupil", type=int, default=10, help="versions per pupil")
    parser.add_argument("--profile", type=int, default=0,
                        help="after the runs, profile one more and print this many lines")
    args = parser.parse_args()

    print("Fresh database...", flush=True)
    with fresh_database() as settings:
        with psycopg.connect(settings.database_conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_bare_history (upn text, version integer, "
                         "notification_id bigint, event jsonb, sealed bytea, "
                         "PRIMARY KEY (upn, version))")
        app = TransfersApplication.on_postgres(settings.database_conninfo,
                                               keys=pupil_keys_for(settings))
        app.import_settings(registry(args.pupils))
        events = args.batches * args.pupils * args.per_pupil
        # One small batch first: connections opened, statements prepared.
        run_hub(app, batches("bench-warmup", 1, args.pupils, args.per_pupil))
        hub_times, bare_times = [], []
        for run in range(1, args.runs + 1):
            work = batches(f"bench-run-{run}", args.batches, args.pupils, args.per_pupil)
            took, issued = run_hub(app, work)
            assert issued == args.batches * args.pupils, issued
            hub_times.append(took)
            bare_times.append(run_bare(settings.database_conninfo, work))
            print(f"  run {run}: record_history {took:.2f} s ({events / took:,.0f} events/s, "
                  f"{issued} packets), bare {bare_times[-1]:.3f} s", flush=True)
        hub, bare = statistics.median(hub_times), statistics.median(bare_times)
        print(f"batches of {args.pupils * args.per_pupil} ({args.pupils} pupils x "
              f"{args.per_pupil} versions, each ending in a move), {args.batches} batches "
              f"= {events:,} events per run, runs {args.runs}")
        print(f"record_history: median {hub:.2f} s ({events / hub:,.0f} events/s)")
        print(f"bare executemany baseline: median {bare:.3f} s ({events / bare:,.0f} events/s)")
        print(f"ratio: record_history takes {hub / bare:.1f}x the bare path")
        if args.profile:
            work = batches("bench-profile", args.batches, args.pupils, args.per_pupil)
            profiler = cProfile.Profile()
            profiler.enable()
            run_hub(app, work)
            profiler.disable()
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)
        app.close()


if __name__ == "__main__":
    main()
