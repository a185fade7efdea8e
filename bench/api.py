"""Benchmark of the REST API (issue 8): registration and lists with 100,000 jobs stored,
beside a bare Flask JSON endpoint served the same way.

    .venv/bin/python bench/api.py [--jobs 100000] [--workers 4] [--seconds 10]
        [--connections 16] [--threads 2] [--servers 100]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres | --sqlite] [--profile]
        [--vacuum]

Not a test; run it by hand. What it does:

1. A database of its own (`zdm_bench_<pid>`, created and dropped here, or a SQLite file),
   migrated with `flask --app wsgi zdm init`; an admin and a token made with
   `flask --app wsgi zdm create-user` / `create-token`; a private redis-server.
2. --jobs jobs bulk-inserted with SQL over --servers servers (4 centers, 2 repositories
   each, 4 partitions per server, 250 job names per partition), daily/hourly/weekly
   schedules, one in ten stopped.
3. In-process (the app's test client): SQL statements (SQLAlchemy `before_cursor_execute`)
   and milliseconds per request, for registration and each list.
4. gunicorn as the Procfile starts it (`gunicorn --bind 127.0.0.1:<free> --workers N
   --access-logfile - wsgi:app`), and the same for `bench/bare_app.py`; wrk (Debian's
   package) on loopback with `bench/wrk_zdm.lua` against: the bare endpoint, the first page
   of `GET /api/v1/backups`, `?page=5000`, `?server=<name>&page=10`, and `POST
   /api/v1/backups` (the seed's body, a unique job name per request, an existing
   partition). req/s, p50 and p99 for each, and req/s as a share of the bare endpoint's.

--profile repeats the registration and list runs with `py-spy record` attached to the
gunicorn workers (the numbers above are taken without it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from harness import (
    ADMIN_EMAIL,
    BIN,
    ROOT,
    BenchDatabase,
    Inventory,
    Process,
    Profiler,
    Tables,
    free_port,
    git_commit,
    insert_rows,
    job_row,
    log,
    machine_note,
    markdown_table,
    next_fire,
    prepare_database,
    print_profile,
    run_main,
    seed_inventory,
    service_env,
    start_redis,
    summarize_profile,
    unique_suffix,
    utcnow,
    wait_until,
)

SCRIPT = ROOT / "bench" / "wrk_zdm.lua"
# name of the job (with its number), schedule type, cron for job number k, mode
JOB_KINDS = [
    ("daily-backup", "daily", lambda k: f"{k % 60} {k % 24} * * *", "full"),
    ("hourly-incr", "hourly", lambda k: f"{k % 60} * * * *", "incremental"),
    ("weekly-full", "weekly", lambda k: f"{k % 60} {k % 24} * * {k % 7}", "full"),
    ("nightly-db", "daily", lambda k: "0 2 * * *", "incremental"),
    ("logs-archive", "custom", lambda k: "*/15 * * * *", "full"),
]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs stored")
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--seconds", type=float, default=10, help="length of each wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured wrk run before each")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--samples", type=int, default=20, help="in-process requests per endpoint")
    parser.add_argument("--database-url", help="PostgreSQL server to create the bench database on")
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers (extra runs)")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE after the bulk insert (the state autovacuum leaves), not ANALYZE",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    return parser.parse_args()


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian's package)")
    return wrk


# ---- the stored jobs ----------------------------------------------------------------------


def stored_job_rows(inventory: Inventory, count: int) -> list[dict]:
    """Jobs over every server and partition, 5 kinds of names and schedules, 1 in 10 stopped."""
    servers = inventory.server_names
    now = utcnow()
    fires: dict[str, object] = {}
    rows = []
    for n in range(count):
        server = servers[n % len(servers)]
        partitions = inventory.servers[server][2]
        partition = partitions[(n // len(servers)) % len(partitions)]
        k = n // (len(servers) * len(partitions))
        name, kind, cron_of, mode = JOB_KINDS[k % len(JOB_KINDS)]
        cron = cron_of(k)
        active = n % 10 != 9
        if cron not in fires:
            fires[cron] = next_fire(cron, now)
        rows.append(
            job_row(
                inventory,
                server,
                partition,
                f"{name}-{k:03d}",
                cron,
                kind,
                fires[cron] if active else None,
                repository_index=n // len(servers),
                mode=mode,
                active=active,
                created_at=now - timedelta(minutes=count - n),
            )
        )
    return rows


def registration_targets(inventory: Inventory) -> list[dict]:
    """Every block partition of every server, with its center's first repository."""
    targets = []
    for server in inventory.server_names:
        _sid, center, partitions = inventory.servers[server]
        repository_id, path = inventory.repositories[center][0]
        for _pid, partition, kind in partitions:
            if kind == "block":
                targets.append(
                    {
                        "center": center,
                        "server": server,
                        "partition": partition,
                        "repository_id": repository_id,
                        "repository_path": path,
                    }
                )
    return targets


def registration_body(target: dict, name: str) -> dict:
    """The seed's first example, for `target`."""
    return {
        "center": target["center"],
        "server": target["server"],
        "type": "full",
        "partition": [target["partition"]],
        "repository": {
            "id": target["repository_id"],
            "type": "local",
            "path": target["repository_path"],
        },
        "jobName": name,
        "user": ADMIN_EMAIL,
        "schedule": {"type": "daily", "description": "0 2 * * *"},
    }


def write_lua_params(path: Path, prefix: str, targets: list[dict]) -> Path:
    def lua(value) -> str:
        return json.dumps(value)  # a JSON string is a valid Lua string literal here

    entries = ",\n".join(
        "{" + ", ".join(f"{k} = {lua(v)}" for k, v in t.items()) + "}" for t in targets
    )
    path.write_text(
        f"return {{prefix = {lua(prefix)}, user = {lua(ADMIN_EMAIL)}, targets = {{\n{entries}\n}}}}\n"
    )
    return path


# ---- in-process: statements and time per request -----------------------------------------


def in_process(env: dict, token: str, endpoints: dict, targets: list[dict], samples: int) -> dict:
    """SQL statements and milliseconds per request through the app's test client."""
    for key in ("DATABASE_URL", "REDIS_URL", "ZDM_VAR_DIR"):
        os.environ[key] = env[key]
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from app import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    statements = [0]

    def count(*_args, **_kwargs):
        statements[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    prefix = f"inproc-{unique_suffix()}"
    results = {}
    try:
        for label, path in [("registration", None), *endpoints.items()]:
            counts, times = [], []
            for n in range(samples + 3):  # three to warm up
                statements[0] = 0
                started = time.perf_counter()
                if path is None:
                    body = registration_body(targets[n % len(targets)], f"{prefix}-{n}")
                    answer = client.post("/api/v1/backups", json=body, headers=headers)
                    expected = 201
                else:
                    answer = client.get(path, headers=headers)
                    expected = 200
                elapsed = time.perf_counter() - started
                if answer.status_code != expected:
                    raise SystemExit(
                        f"{label}: {answer.status_code} {answer.get_data(as_text=True)[:500]}"
                    )
                if n >= 3:
                    counts.append(statements[0])
                    times.append(elapsed * 1000)
            results[label] = {
                "statements": statistics.median(counts),
                "statements_max": max(counts),
                "ms_mean": statistics.fmean(times),
                "ms_median": statistics.median(times),
            }
            log(
                f"in-process {label}: {results[label]['statements']:.0f} statements, "
                f"{results[label]['ms_mean']:.1f} ms"
            )
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return results


# ---- gunicorn and wrk ---------------------------------------------------------------------


def start_gunicorn(
    name: str,
    target: str,
    env: dict,
    workers: int,
    tmp: Path,
    cwd: Path,
    probe: str,
    cleanup: contextlib.ExitStack,
) -> tuple[Process, str]:
    """gunicorn as the Procfile starts it; returns the process and its base URL."""
    port = free_port()
    server = Process(
        name,
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-",
            target,
        ],
        env,
        tmp,
        cwd=cwd,
    )
    cleanup.callback(server.stop)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if not server.alive():
            raise SystemExit(f"{name} exited:\n{server.tail()}")
        try:
            with urllib.request.urlopen(base + probe, timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    wait_until(answers, 60, f"{name} answering")
    return server, base


def check(base: str, path: str, token: str, body: dict | None = None, expected: int = 200) -> dict:
    """One request before the load: the endpoint answers what the bench expects."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, payload = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    if status != expected:
        raise SystemExit(f"{path}: expected {expected}, got {status}: {payload[:500]!r}")
    return json.loads(payload)


def drain(url: str, workers: int) -> None:
    """Wait until the requests wrk left in flight are answered: gunicorn's sync workers
    still serve them after wrk has gone, which would eat into the next run. One request
    per worker, one after the other, each queued behind what is left."""
    origin = url.split("/api/", 1)[0]
    for _ in range(workers):
        try:
            with urllib.request.urlopen(origin + "/api/v1/health", timeout=120):
                pass
        except urllib.error.HTTPError:
            pass
        except OSError:
            return  # a server without that route or gone: nothing to wait for


def run_wrk(
    url: str, token: str, options, tmp: Path, label: str, seconds: float, params: Path | None = None
) -> dict:
    args = [
        require_wrk(),
        "-t",
        str(options.threads),
        "-c",
        str(options.connections),
        "-d",
        f"{seconds:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-H",
        f"Authorization: Bearer {token}",
        "-s",
        str(SCRIPT),
        url,
    ]
    if params is not None:
        args += ["--", str(params)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    drain(url, options.workers)
    with open(tmp / "wrk.log", "a") as out:
        out.write(
            f"--- {label}: {' '.join(args[:-1] if params is None else args)}\n{done.stdout}{done.stderr}\n"
        )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("ZDM-BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed for {label}:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len("ZDM-BENCH ") :])
    errors = sum(
        raw[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "status_errors": raw["status_errors"],
    }


def measure(label: str, url: str, token: str, options, tmp: Path, params=None) -> dict:
    if options.warmup > 0:
        run_wrk(
            url,
            token,
            options,
            tmp,
            f"{label} (warm-up)",
            options.warmup,
            params() if params else None,
        )
    result = run_wrk(url, token, options, tmp, label, options.seconds, params() if params else None)
    log(
        f"{label}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}"
    )
    return result


# ---- report -------------------------------------------------------------------------------


def report(
    options, database: BenchDatabase, loads: dict, inproc: dict, profiles: dict, paths: dict
) -> str:
    bare = loads["bare Flask"]["rps"]
    lines = [
        f"API bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, commit {git_commit()}",
        f"{database.kind} {database.version()}, {machine_note()}",
        f"{options.jobs} jobs stored over {options.servers} servers"
        f"{' (VACUUM ANALYZE after the insert)' if options.vacuum else ''}; gunicorn --workers "
        f"{options.workers}; wrk -t {options.threads} -c {options.connections} -d {options.seconds:g}s",
        "",
        markdown_table(
            ["endpoint", "req/s", "p50 ms", "p99 ms", "errors", "req/s vs bare"],
            [
                [
                    f"{label} `{paths.get(label, '')}`",
                    f"{r['rps']:.0f}",
                    f"{r['p50_ms']:.1f}",
                    f"{r['p99_ms']:.1f}",
                    r["errors"],
                    f"{100 * r['rps'] / bare:.1f} %",
                ]
                for label, r in loads.items()
            ],
        ),
        "",
        "in-process (test client, no HTTP server; median of "
        f"{options.samples} requests after 3 to warm up):",
        "",
        markdown_table(
            ["request", "SQL statements", "ms (mean)", "ms (median)"],
            [
                [
                    label,
                    f"{r['statements']:.0f}"
                    + (
                        f" (max {r['statements_max']})"
                        if r["statements_max"] != r["statements"]
                        else ""
                    ),
                    f"{r['ms_mean']:.1f}",
                    f"{r['ms_median']:.1f}",
                ]
                for label, r in inproc.items()
            ],
        ),
        "",
        "(issue targets: registration >= 40 % of bare and p99 < 50 ms; lists p99 < 100 ms)",
        "",
    ]
    for label, summary in profiles.items():
        lines += [print_profile(f"py-spy of the gunicorn workers, {label}", summary), ""]
    return "\n".join(lines)


def main() -> int:
    options = parse_arguments()
    require_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="zdm-bench-api-"))
    with contextlib.ExitStack() as cleanup:
        if not options.keep:
            cleanup.callback(shutil.rmtree, tmp, True)
        else:
            log(f"logs stay in {tmp}")
        database = BenchDatabase(options.database_url, tmp if options.sqlite else None)
        database.create()
        cleanup.callback(database.drop)
        redis_url = start_redis(tmp, cleanup)
        env = service_env(database.url, f"{redis_url}/0", tmp / "var")
        log(f"{database.kind} database {database.name}, Redis {redis_url}")
        token = prepare_database(env)
        tables = Tables(database.engine)
        inventory = seed_inventory(tables, options.servers, centers=4, repositories=2)
        started = time.monotonic()
        with tables.engine.begin() as conn:
            insert_rows(conn, tables["backup_jobs"], stored_job_rows(inventory, options.jobs))
        if database.kind == "PostgreSQL":
            with tables.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE" if options.vacuum else "ANALYZE")
        log(f"{options.jobs} jobs inserted in {time.monotonic() - started:.1f} s")
        deep = max(1, math.ceil(options.jobs / 20))
        server = inventory.server_names[0]
        filtered = max(1, min(10, math.ceil(math.ceil(options.jobs / options.servers) / 20)))
        paths = {
            "bare Flask": "/api/v1/ping",
            "list, first page": "/api/v1/backups",
            f"list, page {deep}": f"/api/v1/backups?page={deep}",
            f"list, filtered page {filtered}": f"/api/v1/backups?server={server}&page={filtered}",
            "registration": "POST /api/v1/backups",
        }
        lists = {k: v for k, v in paths.items() if k.startswith("list")}
        targets = registration_targets(inventory)
        inproc = in_process(env, token, lists, targets, options.samples)

        loads = {}
        bare, bare_url = start_gunicorn(
            "gunicorn-bare",
            "bare_app:app",
            env,
            options.workers,
            tmp,
            ROOT / "bench",
            "/api/v1/ping",
            cleanup,
        )
        loads["bare Flask"] = measure(
            "bare Flask", bare_url + paths["bare Flask"], token, options, tmp
        )
        bare.stop()

        web, base = start_gunicorn(
            "gunicorn-zdm", "wsgi:app", env, options.workers, tmp, ROOT, "/api/v1/health", cleanup
        )
        for label, path in lists.items():
            page = check(base, path, token)
            if not page["data"]["items"]:
                raise SystemExit(f"{path} has no items: the bench's data is wrong")
            loads[label] = measure(label, base + path, token, options, tmp)
        check(
            base,
            "/api/v1/backups",
            token,
            registration_body(targets[0], f"check-{unique_suffix()}"),
            201,
        )

        def params() -> Path:
            suffix = unique_suffix()
            return write_lua_params(tmp / f"params-{suffix}.lua", f"wrk-{suffix}", targets)

        loads["registration"] = measure(
            "registration", base + "/api/v1/backups", token, options, tmp, params
        )

        profiles = {}
        if options.profile:
            options.out.mkdir(parents=True, exist_ok=True)
            for label, path, extra in [
                ("registration", "/api/v1/backups", params),
                *((k, v, None) for k, v in lists.items()),
            ]:
                slug = label.split(",")[-1].strip().replace(" ", "-")
                profiler = Profiler(
                    web.pid, options.out / f"api-profile-{slug}.txt", tmp, subprocesses=True
                )
                run_wrk(
                    base + path,
                    token,
                    options,
                    tmp,
                    f"{label} (profiled)",
                    options.seconds,
                    extra() if extra else None,
                )
                raw = profiler.stop()
                profiles[f"{label} ({raw})"] = summarize_profile(
                    raw, skip_processes=[f"process {web.pid}:"]
                )
        text = report(options, database, loads, inproc, profiles, paths)
    print(text)
    options.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (options.out / f"api-{stamp}.json").write_text(
        json.dumps({"loads": loads, "in_process": inproc, "profiles": profiles}, indent=2)
    )
    (options.out / f"api-{stamp}.md").write_text(text + "\n")
    log(f"results in {options.out}/api-{stamp}.*")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
