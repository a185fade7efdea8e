"""Benchmark of GET /api/v1/metrics (issue 10): one scrape with 100,000 jobs stored.

    .venv/bin/python bench/metrics.py [--jobs 100000] [--runs-per-job 3] [--samples 10]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres | --sqlite]

Not a test; run it by hand. A database of its own (as bench/api.py: `zdm_bench_<pid>`,
created and dropped here), migrated with `flask --app wsgi zdm init`, an admin and a token;
the jobs of bench/api.py (100 servers, 5 kinds of schedules, one in ten stopped), and
--runs-per-job finished runs per job (durations 1 s to 2 h, one in five failed; one job in
twenty last succeeded ten days ago, so it is late), then `ANALYZE`. Then in-process (the
app's test client, as bench/api.py) the SQL statements and milliseconds of a scrape, and
its size; with the default ZDM_METRICS_JOB_SERIES (1000) and with it above the job count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from api import stored_job_rows
from harness import (
    ROOT,
    BenchDatabase,
    Tables,
    insert_rows,
    log,
    machine_note,
    markdown_table,
    prepare_database,
    run_main,
    seed_inventory,
    service_env,
    utcnow,
)
from sqlalchemy import select, text


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--runs-per-job", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="measured scrapes")
    parser.add_argument("--database-url", help="PostgreSQL server to create the bench database on")
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead")
    return parser.parse_args()


def run_rows(job_ids: list[int], per_job: int) -> list[dict]:
    now = utcnow()
    rows = []
    for index, job_id in enumerate(job_ids):
        stale = index % 20 == 0  # last succeeded ten days ago: late
        for n in range(per_job):
            finished = now - timedelta(days=10 if stale else 0, minutes=10 * (n + 1))
            seconds = 1 + (index * 37 + n * 911) % 7200
            state = "failed" if (index + n) % 5 == 4 else "success"
            rows.append({
                "job_id": job_id, "trigger": "schedule", "state": state,
                "scheduled_for": finished - timedelta(seconds=seconds + 1),
                "queued_at": finished - timedelta(seconds=seconds + 1),
                "dispatched_at": finished - timedelta(seconds=seconds + 1),
                "started_at": finished - timedelta(seconds=seconds),
                "finished_at": finished, "heartbeat_at": finished,
                "bytes_total": 1 << 30, "bytes_read": 1 << 30, "bytes_written": 1 << 28,
                "percent": 100.0, "speed": 1e6, "log": [],
            })  # fmt: skip
    return rows


def scrape(app, token: str, samples: int) -> dict:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    statements = [0]
    slowest: dict[str, float] = {}

    def count(conn, _cursor, statement, *_args):
        statements[0] += 1
        conn.info["zdm_bench_started"] = time.perf_counter()

    def timed(conn, _cursor, statement, *_args):
        key = " ".join(statement.split())[:90]
        took = (time.perf_counter() - conn.info.pop("zdm_bench_started")) * 1000
        slowest[key] = max(slowest.get(key, 0.0), took)

    event.listen(Engine, "before_cursor_execute", count)
    event.listen(Engine, "after_cursor_execute", timed)
    times, counts = [], []
    try:
        for n in range(samples + 2):  # two to warm up
            statements[0] = 0
            started = time.perf_counter()
            answer = client.get("/api/v1/metrics", headers=headers)
            elapsed = time.perf_counter() - started
            if answer.status_code != 200:
                raise SystemExit(f"{answer.status_code} {answer.get_data(as_text=True)[:500]}")
            if n >= 2:
                times.append(elapsed * 1000)
                counts.append(statements[0])
    finally:
        event.remove(Engine, "before_cursor_execute", count)
        event.remove(Engine, "after_cursor_execute", timed)
    for key, took in sorted(slowest.items(), key=lambda kv: -kv[1])[:6]:
        log(f"  slowest statement {took:7.1f} ms: {key}")
    body = answer.get_data(as_text=True)
    series = [line for line in body.splitlines() if line and not line.startswith("#")]
    late = sum(1 for line in series if line.startswith("zdm_job_late{"))
    return {
        "statements": statistics.median(counts),
        "ms_median": statistics.median(times),
        "ms_max": max(times),
        "bytes": len(body.encode()),
        "series": len(series),
        "late_series": late,
        "late": next(line for line in series if line.startswith('zdm_jobs_health{health="late"}')),
    }


def main() -> int:
    options = parse_arguments()
    tmp = Path(tempfile.mkdtemp(prefix="zdm-bench-metrics-"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, tmp, True)
        database = BenchDatabase(options.database_url, tmp if options.sqlite else None)
        database.create()
        cleanup.callback(database.drop)
        env = service_env(database.url, "redis://127.0.0.1:1/0", tmp / "var")
        token = prepare_database(env)
        tables = Tables(database.engine)
        inventory = seed_inventory(tables, options.servers, centers=4, repositories=2)
        started = time.monotonic()
        with tables.engine.begin() as conn:
            insert_rows(conn, tables["backup_jobs"], stored_job_rows(inventory, options.jobs))
            job_ids = list(conn.scalars(select(tables["backup_jobs"].c.id)))
            insert_rows(conn, tables["runs"], run_rows(job_ids, options.runs_per_job))
        if database.kind == "PostgreSQL":
            with tables.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        runs = options.jobs * options.runs_per_job
        log(f"{options.jobs} jobs, {runs} runs inserted in {time.monotonic() - started:.1f} s")

        for key in ("DATABASE_URL", "REDIS_URL", "ZDM_VAR_DIR"):
            os.environ[key] = env[key]
        sys.path.insert(0, str(ROOT))
        from app import create_app

        app = create_app()
        results = {}
        for label, limit in (("default (1000 per-job series)", 1000),
                             ("per-job series for every job", options.jobs + 1)):  # fmt: skip
            app.config["ZDM_METRICS_JOB_SERIES"] = limit
            results[label] = scrape(app, token, options.samples)
            log(f"{label}: {results[label]}")
        with database.engine.connect() as conn:
            version = conn.execute(text("select 1")).scalar() and database.version()

    print(f"\n{database.kind} {version}, {options.jobs:,} jobs, {runs:,} runs; {machine_note()}\n")
    print(
        markdown_table(
            ["scrape", "SQL statements", "ms (median)", "ms (max)", "series", "bytes"],
            [
                [
                    label,
                    f"{r['statements']:.0f}",
                    f"{r['ms_median']:.0f}",
                    f"{r['ms_max']:.0f}",
                    f"{r['series']:,}",
                    f"{r['bytes']:,}",
                ]
                for label, r in results.items()
            ],  # fmt: skip
        )
    )
    print(f"\n{next(iter(results.values()))['late']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
