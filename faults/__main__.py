"""`python -m faults --seed N --profile short|long`: the hub under faults and hostile input.

Exit status: 0 when nothing was lost or doubled, every hostile message was handled and
every canary delivered (and, where they count, no unexplained duplicate publishes);
1 otherwise; 3 when Kafka or PostgreSQL cannot be reached.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from faults import infra
from faults.plan import PROFILES, build_plan
from faults.report import PhaseReport, print_report
from faults.run import Options, run_phase
from services.shared.settings import HubSettings

ROOT = Path(__file__).resolve().parents[1]
FAULT_KINDS = ("kill", "broker", "postgres", "rebalance")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--instances", default="1,2",
                        help="instances of each service, one phase per number (default 1,2)")
    parser.add_argument("--faults", default=",".join(FAULT_KINDS),
                        help=f"fault kinds to inject, comma-separated ({','.join(FAULT_KINDS)})")
    parser.add_argument("--no-hostile", action="store_true", help="send the steady stream only")
    parser.add_argument("--duplicates", choices=("auto", "fail", "report"), default="auto",
                        help="whether duplicate publishes not explained by a crash fail the run "
                             "(auto: with two or more instances)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of the steady stream (default: the profile's)")
    parser.add_argument("--keep", action="store_true",
                        help="keep each phase's topics and database (they are dropped by default)")
    parser.add_argument("--logs", type=Path, default=ROOT / ".cache" / "faults",
                        help="where service logs go (emptied first)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    console = Console(width=170)
    base = HubSettings()
    kinds = frozenset(k for k in args.faults.split(",") if k)
    if not kinds <= set(FAULT_KINDS):
        console.print(f"unknown fault kinds: {sorted(kinds - set(FAULT_KINDS))}")
        return 2
    if not infra.broker_answers(base) or not infra.database_answers(
            base.database_conninfo):
        console.print("Kafka or PostgreSQL cannot be reached: start them (deploy/local/up)")
        return 3
    shutil.rmtree(args.logs, ignore_errors=True)
    began = time.monotonic()
    reports: list[PhaseReport] = []
    for instances in (int(n) for n in args.instances.split(",")):
        profile = PROFILES[args.profile]
        if args.seconds:
            profile = dataclasses.replace(profile, stream_seconds=args.seconds)
        plan = build_plan(args.seed, profile, instances, kinds, not args.no_hostile)
        fail_dups = args.duplicates == "fail" or (args.duplicates == "auto" and instances > 1)
        reports.append(run_phase(plan, base, Options(fail_dups, args.logs, args.keep), console))
    print_report(console, reports)
    failed = any(r.failures for r in reports)
    console.print(f"seed {args.seed}, profile {args.profile}: {'FAIL' if failed else 'PASS'} "
                  f"in {time.monotonic() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
