"""Where the hub's time goes: a backfill through all three services under py-spy.

Run: `make profile` (or `.venv/bin/python bench/hub_profile.py --events 6000`). Starts a fresh
hub (ingest, records, transfers), samples every process with py-spy while it stores
and relays `--events` events of histories ending in moves and issues every packet, and
prints, for each service, the share of its samples spent in the hub's own functions and
the libraries it calls (inclusive), then the busiest leaf functions. The raw profile,
which flamegraph.pl or speedscope read, is kept in .cache/bench/profiles/ (not in the
repository). Sampling slows the hub; read the shares, not the speed.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import LOGS, ROOT, consume_count, fresh_hub, publish, pupil_histories  # noqa: E402

OURS = ("services/", "contracts/", "eventsourcing/", "pydantic/", "psycopg/", "cryptography/",
        "aiokafka/", "faststream/")


def backfill(events: int) -> None:
    """Run by py-spy: one backfill, start to last packet."""
    messages = pupil_histories(events)
    with fresh_hub() as hub:
        for service in ("ingest", "records", "transfers"):
            hub.start(service)
        time.sleep(8)  # joined their groups
        started = time.perf_counter()
        publish(hub.base, hub.topics.school_events, messages)
        consume_count(hub.base, hub.topics.pupil_history, events)
        stored = time.perf_counter() - started
        consume_count(hub.base, [], max(1, events // 10),
                      pattern=re.escape(hub.topics.inbox("")) + ".*")
        print(f"{events:,} events: history relayed at {stored:.1f} s, every packet at "
              f"{time.perf_counter() - started:.1f} s (slowed by sampling)", flush=True)


def summary(raw: Path, top: int) -> None:
    total: collections.Counter[str] = collections.Counter()
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        named = next((m.group(1) for f in frames[:3] if (m := re.search(r"serve (\w+)", f))),
                     None)
        if named is None:
            continue
        total[named] += n
        leaves[named][re.sub(r" \(.*\)$", "", frames[-1])] += n
        for frame in dict.fromkeys(f for f in frames if any(o in f for o in OURS)):
            inclusive[named][frame] += n
    for service in ("ingest", "records", "transfers"):
        if not total[service]:
            continue
        print(f"\n{service}: {total[service]:,} samples; inclusive share")
        for frame, n in inclusive[service].most_common(top):
            print(f"  {100 * n / total[service]:5.1f}%  {frame}")
        print(f"{service}: busiest leaf functions (waiting included)")
        for frame, n in leaves[service].most_common(8):
            print(f"  {100 * n / total[service]:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6_000)
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--run-backfill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_backfill:
        backfill(args.events)
        return
    out = LOGS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"hub-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    subprocess.run([str(spy), "record", "--subprocesses", "--rate", str(args.rate),
                    "--format", "raw", "--output", str(raw), "--",
                    sys.executable, __file__, "--run-backfill", "--events", str(args.events)],
                   check=True, cwd=ROOT)
    print(f"raw profile: {raw}")
    summary(raw, args.top)


if __name__ == "__main__":
    main()
