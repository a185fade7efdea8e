"""Chaos, as a command (issue 11): the whole service in real processes while a random one of
them is killed -9 every ~40 s, then the checks. Exits 1 on any violation.

    .venv/bin/python bench/chaos.py [--minutes 10] [--jobs 50] [--kill-every 40] [--seed N]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--aim] [--keep]

It starts a private redis-server on a free loopback port, a database of its own (a SQLite
file in a temporary directory; with --database-url, `zdm_bench_<pid>` created on that
PostgreSQL server and dropped at the end, nothing else touched), the control worker, two
beats and two agents serving the same server (either takes any run), with the lease at 6 s
and the sweep every 2 s. It registers --jobs jobs on `* * * * *`, each backing up an image
file of its own (2-5 MiB of random bytes, never changed), and for --minutes kills -9 one of
beat1, beat2, agent1, agent2 and control, chosen at random, every --kill-every seconds (each
gap drawn from half to one and a half of it), starting it again 2-6 s later.

Then the schedules move a year away, the runs settle (at most 4 min), and it checks (see
`tests/end_to_end/chaos.py`): every fire time has exactly one outcome (success, failed with a
reason, skipped or missed; a lost run's retry counts for it), nothing stays queued or running;
every point belongs to one successful run and every success of a job keeping all its points
has one; the repository holds exactly the recorded points, each restoring byte-identical to
its image; the engine's verify, reading every object, is clean.

The processes' logs stay in the temporary directory when a check fails (or with --keep).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, BenchDatabase, log, run_main

sys.path.insert(0, str(ROOT))

from tests.end_to_end.chaos import ChaosSettings, run_chaos  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to kill (10)")
    parser.add_argument("--jobs", type=int, default=50, help="jobs on '* * * * *' (50)")
    parser.add_argument("--kill-every", type=float, default=40.0,
                        help="seconds between kills, on average (40)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server to make the bench's database on"
                        " (default: SQLite in a temporary directory)")  # fmt: skip
    parser.add_argument("--aim", action="store_true",
                        help="kill an agent once a backup runs (waits up to --kill-every)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.jobs < 1 or args.kill_every <= 0:
        parser.error("--minutes, --jobs and --kill-every must be positive")
    if args.database_url and not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a postgresql:// URL (SQLite is the default)")
    return args


def main() -> int:
    args = parse_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    settings = ChaosSettings(
        minutes=args.minutes,
        jobs=args.jobs,
        kill_every=args.kill_every,
        seed=seed,
        aim=args.aim,
    )
    tmp = Path(tempfile.mkdtemp(prefix="zdm-chaos-"))
    database = BenchDatabase(args.database_url, None) if args.database_url else None
    keep = args.keep
    began = time.monotonic()
    try:
        if database is not None:
            database.create()
            log(f"database {database.name} created on {args.database_url}")
        report = run_chaos(tmp, settings, database.url if database else None, say=log)
        keep = keep or not report.ok
        print(report.summary())
        print(f"wall time: {time.monotonic() - began:.0f} s")
        return 0 if report.ok else 1
    except BaseException:
        keep = True
        raise
    finally:
        if database is not None:
            database.drop()
            log(f"database {database.name} dropped")
        if keep:
            log(f"kept {tmp} (process logs in {tmp / 'logs'})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_main(main))
