"""Benchmark of beat (issue 8): N jobs due at the same minute, and beat at rest with many jobs.

    .venv/bin/python bench/scheduler.py [--jobs 10000] [--cron '* * * * *' | --cron daily]
        [--servers 100] [--database-url postgresql://postgres@127.0.0.1:5432/postgres | --sqlite]
        [--idle-jobs 100000] [--idle-seconds 60] [--skip-redbeat] [--skip-idle] [--profile]

Not a test; run it by hand. What it does, in one run:

1. A database of its own (`zdm_bench_<pid>` on the PostgreSQL server of --database-url,
   created and dropped here; or a SQLite file with --sqlite), migrated with
   `flask --app wsgi zdm init`, and a private redis-server on a free loopback port.
2. Ours: beat started as the Procfile starts it (`celery -A workers beat -S
   workers.beat.scheduler:ZdmScheduler`), N jobs bulk-inserted with SQL, spread over --servers
   servers (one queue `zdm.server.<name>` each), all due at the fire time T: the next whole
   minute (`--cron` fields `M` and `H` become T's minute and hour: `daily` is `M H * * *`).
   No agent: the bench reads what beat sent. Every 50 ms it takes the length of every queue
   (nothing consumes them, so a message's arrival is the first sample that counts it);
   afterwards it reads the messages (their `run_id`, `expires`) and the runs of fire time T
   from the database (state, `queued_at`, `dispatched_at`).
3. celery-redbeat, same machine, same run, same Redis server (another database): N crontab
   entries with the same cron, each sending to its server's queue; arrival measured the same way.
4. Beat at rest: --idle-jobs jobs stored, none due within the hour; beat's CPU (utime+stime
   from /proc/<pid>/stat) and RSS (VmRSS) over --idle-seconds, after a warm-up.

--profile attaches `py-spy record` to our beat during the due minute (numbers of a profiled
run are slower; take the baseline from a run without it). Every wait has a deadline;
processes and the database are cleaned up on exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import redis
from harness import (
    BIN,
    PARTITIONS,
    ROOT,
    BenchDatabase,
    Inventory,
    Process,
    Profiler,
    Tables,
    ceil_minute,
    cpu_seconds,
    epoch,
    fmt,
    git_commit,
    insert_rows,
    job_row,
    lag_summary,
    log,
    machine_note,
    markdown_table,
    memory_kib,
    next_fire,
    one_row_table,
    prepare_database,
    print_profile,
    run_main,
    schedule_type_of,
    seconds_until,
    seed_inventory,
    service_env,
    start_redis,
    summarize_profile,
    utcnow,
    wait_until,
)
from sqlalchemy import delete, func, select

POLL_SECONDS = 0.05
BACKUP_TASK = "zdm.backup.run"
SHORTCUTS = {"daily": "M H * * *", "hourly": "M * * * *", "every-minute": "* * * * *"}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs due at the same minute")
    parser.add_argument(
        "--cron",
        default="* * * * *",
        help="their schedule; fields M and H become the fire time's minute and hour "
        "('daily' = 'M H * * *', 'hourly' = 'M * * * *')",
    )
    parser.add_argument("--servers", type=int, default=100, help="servers (queues) the jobs use")
    parser.add_argument("--beats", type=int, default=1, help="our beat processes running at once")
    parser.add_argument("--database-url", help="PostgreSQL server to create the bench database on")
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead")
    parser.add_argument("--idle-jobs", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--idle-warmup", type=float, default=10)
    parser.add_argument(
        "--lead", type=float, default=15, help="seconds from set-up to the fire time"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=420,
        help="seconds after the fire time after which a fan-out counts as unfinished",
    )
    parser.add_argument("--max-wait", type=float, default=180, help="longest wait for a fire time")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--skip-redbeat", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy our beat during the fan-out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    return parser.parse_args()


# ---- the fire time ------------------------------------------------------------------------


def resolve_cron(spec: str, earliest: datetime, max_wait: float) -> tuple[str, datetime]:
    """The cron expression and its first fire time at or after `earliest`."""
    fields = SHORTCUTS.get(spec, spec).split()
    if len(fields) != 5:
        raise SystemExit(f"--cron needs five fields, got {spec!r}")
    target = ceil_minute(earliest)
    if fields[0] == "M":
        fields[0] = str(target.minute)
    if fields[1] == "H":
        fields[1] = str(target.hour)
    cron = " ".join(fields)
    fire = next_fire(cron, earliest - timedelta(microseconds=1))
    if seconds_until(fire) > max_wait:
        raise SystemExit(
            f"{cron!r} fires next at {fire:%H:%M} UTC, more than {max_wait:.0f} s away; "
            "use the fields M and H (e.g. --cron daily) or raise --max-wait"
        )
    return cron, fire


def wait_for(moment: datetime, what: str) -> None:
    remaining = seconds_until(moment)
    if remaining > 0:
        log(f"waiting {remaining:.0f} s for {what} ({moment:%H:%M:%S} UTC)")
        time.sleep(remaining)


# ---- what reaches the queues --------------------------------------------------------------


@dataclass
class Message:
    queue: str
    arrived: float  # epoch seconds: the first 50 ms sample that counted it
    kwargs: dict
    expires: float | None


@dataclass
class QueueWatcher:
    """Lengths of the queues every POLL_SECONDS; nothing consumes them, so the k-th
    message of a queue arrived at the first sample whose length exceeds k."""

    client: redis.Redis
    queues: list[str]
    samples: list[tuple[float, list[int]]] = field(default_factory=list)

    def sample(self) -> int:
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.llen(queue)
            lengths = pipe.execute()
        self.samples.append((time.time(), lengths))
        return sum(lengths)

    def watch(self, until, deadline: float, check_every: float = 1.0) -> bool:
        """Sample until `until()` is true (asked every `check_every` s) or the deadline."""
        next_check = 0.0
        while time.time() < deadline:
            started = time.monotonic()
            self.sample()
            if started >= next_check:
                if until():
                    self.sample()
                    return True
                next_check = started + check_every
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))
        self.sample()
        return False

    def messages(self) -> list[Message]:
        found = []
        for index, queue in enumerate(self.queues):
            raw = list(reversed(self.client.lrange(queue, 0, -1)))  # LPUSH: oldest last
            arrivals = []
            previous = 0
            for moment, lengths in self.samples:
                arrivals.extend([moment] * max(0, lengths[index] - previous))
                previous = max(previous, lengths[index])
            for position, payload in enumerate(raw):
                arrived = arrivals[position] if position < len(arrivals) else time.time()
                found.append(_decode(queue, arrived, payload))
        return found


def _decode(queue: str, arrived: float, payload: bytes) -> Message:
    message = json.loads(payload)
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    _args, kwargs, _embed = json.loads(body)
    expires = message.get("headers", {}).get("expires")
    return Message(
        queue, arrived, kwargs, datetime.fromisoformat(expires).timestamp() if expires else None
    )


def queue_names(servers: list[str]) -> list[str]:
    return [f"zdm.server.{name}" for name in servers]


# ---- ours ---------------------------------------------------------------------------------


def beat_command(tmp: Path, name: str) -> list[str]:
    """The Procfile's beat, with its pid and schedule files in the bench's directory."""
    return [
        str(BIN / "celery"),
        "-A",
        "workers",
        "beat",
        "-S",
        "workers.beat.scheduler:ZdmScheduler",
        "-l",
        "INFO",
        f"--pidfile={tmp / name}.pid",
        f"--schedule={tmp / name}.db",
    ]


def start_beat(env: dict, tmp: Path, name: str, cleanup: contextlib.ExitStack) -> Process:
    beat = Process(name, beat_command(tmp, name), env, tmp)
    cleanup.callback(beat.stop)
    try:
        wait_until(
            lambda: beat.log_contains("beat: Starting") or not beat.alive(), 60, f"{name} start"
        )
    except TimeoutError:
        raise SystemExit(f"{name} did not start:\n{beat.tail()}") from None
    if not beat.alive():
        raise SystemExit(f"{name} exited:\n{beat.tail()}")
    time.sleep(1.5)  # past its first tick
    return beat


def due_job_rows(inventory: Inventory, count: int, cron: str, fire: datetime) -> list[dict]:
    """`count` jobs round-robin over servers and partitions, unique names per partition."""
    servers = inventory.server_names
    kind = schedule_type_of(cron)
    rows = []
    for n in range(count):
        server = servers[n % len(servers)]
        partitions = inventory.servers[server][2]
        partition = partitions[(n // len(servers)) % len(partitions)]
        name = f"due-{n // (len(servers) * len(partitions)):05d}"
        rows.append(
            job_row(inventory, server, partition, name, cron, kind, fire, repository_index=n)
        )
    return rows


def measure_ours(
    options,
    env,
    tables: Tables,
    inventory: Inventory,
    redis_url: str,
    tmp: Path,
    cleanup: contextlib.ExitStack,
) -> dict:
    client = redis.Redis.from_url(f"{redis_url}/0")
    client.flushdb()
    beats = [start_beat(env, tmp, f"beat{n + 1}", cleanup) for n in range(options.beats)]
    cron, fire = resolve_cron(
        options.cron, utcnow() + timedelta(seconds=options.lead), options.max_wait
    )
    jobs, runs = tables["backup_jobs"], tables["runs"]
    started = time.monotonic()
    with tables.engine.begin() as conn:
        insert_rows(conn, jobs, due_job_rows(inventory, options.jobs, cron, fire))
    log(
        f"ours: {options.jobs} jobs on {cron!r} inserted in {time.monotonic() - started:.1f} s, "
        f"due at {fire:%H:%M:%S} UTC"
    )
    if seconds_until(fire) < 3:
        raise SystemExit("the insert took longer than --lead; raise --lead")

    profiler = None
    wait_for(fire - timedelta(seconds=2), "our fire time")
    if options.profile:
        options.out.mkdir(parents=True, exist_ok=True)
        profiler = Profiler(beats[0].pid, options.out / "beat-profile.txt", tmp)
    watcher = QueueWatcher(client, queue_names(inventory.server_names))

    def fan_out_done() -> bool:
        with tables.engine.connect() as conn:
            unclaimed = conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.active.is_(True), jobs.c.next_run_at <= fire)
            ).scalar()
            unsent = conn.execute(
                select(func.count())
                .select_from(runs)
                .where(
                    runs.c.scheduled_for == fire,
                    runs.c.state == "queued",
                    runs.c.dispatched_at.is_(None),
                )
            ).scalar()
        return time.time() > epoch(fire) and unclaimed == 0 and unsent == 0

    finished = watcher.watch(fan_out_done, epoch(fire) + options.deadline)
    stopped_at = time.time()
    if profiler:
        profile = profiler.stop()
    for beat in beats:
        beat.stop()
    if not finished:
        log(f"ours: fan-out not finished {options.deadline:.0f} s after the fire time")
    result = analyse_ours(tables, watcher.messages(), fire, options.jobs)
    result.update(
        cron=cron,
        fire=fire.isoformat(),
        finished=finished,
        watched_seconds=stopped_at - epoch(fire),
    )
    if profiler:
        summary = summarize_profile(profile)
        result["profile"] = {"file": str(profile), **summary}
    return result


def analyse_ours(tables: Tables, messages: list[Message], fire: datetime, expected: int) -> dict:
    runs = tables["runs"]
    with tables.engine.connect() as conn:
        rows = conn.execute(
            select(
                runs.c.id,
                runs.c.job_id,
                runs.c.state,
                runs.c.trigger,
                runs.c.queued_at,
                runs.c.dispatched_at,
                runs.c.error_message,
            ).where(runs.c.scheduled_for == fire)
        ).all()
        later = {
            row[0]: row[1]
            for row in conn.execute(
                select(runs.c.scheduled_for, func.count())
                .where(runs.c.scheduled_for > fire)
                .group_by(runs.c.scheduled_for)
            )
        }
    t0 = epoch(fire)
    by_id = {row.id: row for row in rows}
    jobs_with_run = {row.job_id for row in rows}
    states = Counter(row.state for row in rows)
    sent_missed = sum(1 for r in rows if r.state == "missed" and r.dispatched_at is not None)

    mine = [m for m in messages if m.kwargs.get("run_id") in by_id]
    first_arrival: dict[int, Message] = {}
    for message in sorted(mine, key=lambda m: m.arrived):
        first_arrival.setdefault(message.kwargs["run_id"], message)
    expired = 0
    for run_id, message in first_arrival.items():
        dispatched = by_id[run_id].dispatched_at
        sent = min(message.arrived, epoch(dispatched)) if dispatched else message.arrived
        if message.expires is not None and message.expires <= sent:
            expired += 1
    return {
        "expected": expected,
        "runs": len(rows),
        "jobs_with_run": len(jobs_with_run),
        "duplicate_runs": len(rows) - len(jobs_with_run),
        "missing": expected - len(jobs_with_run),
        "states": dict(states),
        "missed_after_send": sent_missed,
        "messages": len(mine),
        "duplicate_messages": len(mine) - len(first_arrival),
        "runs_without_message": sum(
            1 for r in rows if r.dispatched_at and r.id not in first_arrival
        ),
        "expired_at_send": expired,
        "other_messages": len(messages) - len(mine),
        "later_fire_times": {k.isoformat(): v for k, v in sorted(later.items())},
        "lag_arrival": lag_summary([m.arrived - t0 for m in first_arrival.values()]),
        "lag_dispatched_at": lag_summary(
            [epoch(r.dispatched_at) - t0 for r in rows if r.dispatched_at]
        ),
        "lag_queued_at": lag_summary([epoch(r.queued_at) - t0 for r in rows if r.queued_at]),
    }


# ---- celery-redbeat -----------------------------------------------------------------------


def measure_redbeat(
    options, inventory: Inventory, redis_url: str, tmp: Path, cleanup: contextlib.ExitStack
) -> dict:
    try:
        from celery.schedules import crontab
        from redbeat import RedBeatSchedulerEntry
    except ImportError:
        raise SystemExit(
            "celery-redbeat is missing: .venv/bin/pip install -r bench/requirements.txt"
        ) from None
    from redbeat_app import make_app

    url = f"{redis_url}/1"
    client = redis.Redis.from_url(url)
    client.flushdb()
    app = make_app(url)
    # creating the entries takes a while: the fire time leaves room for it and beat's start
    cron, fire = resolve_cron(
        options.cron,
        utcnow() + timedelta(seconds=options.lead + options.jobs / 1000),
        options.max_wait,
    )
    minute, hour, day, month, weekday = cron.split()
    schedule = crontab(
        minute=minute,
        hour=hour,
        day_of_month=day,
        month_of_year=month,
        day_of_week=weekday,
        app=app,
    )
    servers = inventory.server_names
    started = time.monotonic()
    for n in range(options.jobs):
        server = servers[n % len(servers)]
        RedBeatSchedulerEntry(
            f"zdm-bench-{n + 1}",
            BACKUP_TASK,
            schedule,
            kwargs={"job_id": n + 1, "job_name": f"due-{n:05d}"},
            options={"queue": f"zdm.server.{server}"},
            app=app,
        ).save()
    log(
        f"redbeat: {options.jobs} entries on {cron!r} saved in {time.monotonic() - started:.1f} s, "
        f"due at {fire:%H:%M:%S} UTC"
    )
    env = service_env("sqlite://", url, tmp / "var", PYTHONPATH=str(ROOT))
    beat = Process(
        "redbeat",
        [
            str(BIN / "celery"),
            "-A",
            "redbeat_app",
            "beat",
            "-S",
            "redbeat.RedBeatScheduler",
            "-l",
            "INFO",
            f"--pidfile={tmp / 'redbeat.pid'}",
        ],
        env,
        tmp,
        cwd=ROOT / "bench",
    )
    cleanup.callback(beat.stop)
    wait_until(lambda: beat.log_contains("Acquired lock") or not beat.alive(), 60, "redbeat start")
    if not beat.alive() or seconds_until(fire) < 1:
        raise SystemExit(f"redbeat was not ready before its fire time:\n{beat.tail()}")
    wait_for(fire - timedelta(seconds=2), "redbeat's fire time")
    watcher = QueueWatcher(client, queue_names(servers))
    finished = watcher.watch(
        lambda: (
            time.time() > epoch(fire)
            and watcher.samples
            and sum(watcher.samples[-1][1]) >= options.jobs
        ),
        epoch(fire) + options.deadline,
    )
    beat.stop()
    messages = watcher.messages()
    first: dict[int, Message] = {}
    for message in sorted(messages, key=lambda m: m.arrived):
        first.setdefault(message.kwargs.get("job_id"), message)
    t0 = epoch(fire)
    return {
        "cron": cron,
        "fire": fire.isoformat(),
        "finished": finished,
        "expected": options.jobs,
        "messages": len(messages),
        "jobs_with_message": len(first),
        "duplicate_messages": len(messages) - len(first),
        "missing": options.jobs - len(first),
        "lag_arrival": lag_summary([m.arrived - t0 for m in first.values()]),
    }


# ---- beat at rest -------------------------------------------------------------------------


def idle_job_rows(inventory: Inventory, count: int) -> list[dict]:
    """Daily jobs spread over 20 hours starting two hours from now: none due meanwhile."""
    start = ceil_minute(utcnow()) + timedelta(hours=2)
    servers = inventory.server_names
    rows = []
    for n in range(count):
        server = servers[n % len(servers)]
        partitions = inventory.servers[server][2]
        partition = partitions[(n // len(servers)) % len(partitions)]
        fire = start + timedelta(minutes=n % 1200)
        name = f"nightly-{n // (len(servers) * len(PARTITIONS)):05d}"
        rows.append(
            job_row(
                inventory,
                server,
                partition,
                name,
                f"{fire.minute} {fire.hour} * * *",
                "daily",
                fire,
                repository_index=n,
                mode=("full", "incremental")[n % 2],
            )
        )
    return rows


def measure_idle(
    options, env, tables: Tables, inventory: Inventory, tmp: Path, cleanup: contextlib.ExitStack
) -> dict:
    started = time.monotonic()
    with tables.engine.begin() as conn:
        conn.execute(delete(tables["runs"]))
        conn.execute(delete(tables["backup_jobs"]))
        insert_rows(conn, tables["backup_jobs"], idle_job_rows(inventory, options.idle_jobs))
    log(f"idle: {options.idle_jobs} jobs inserted in {time.monotonic() - started:.1f} s")
    beat = start_beat(env, tmp, "beat-idle", cleanup)
    time.sleep(options.idle_warmup)
    cpu_before, t_before = cpu_seconds(beat.pid), time.monotonic()
    rss = []
    deadline = t_before + options.idle_seconds
    log(f"idle: measuring beat (pid {beat.pid}) for {options.idle_seconds:.0f} s")
    while time.monotonic() < deadline and beat.alive():
        rss.append(memory_kib(beat.pid)["VmRSS"])
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    if not beat.alive():
        raise SystemExit(f"beat exited while idle:\n{beat.tail()}")
    cpu = cpu_seconds(beat.pid) - cpu_before
    elapsed = time.monotonic() - t_before
    memory = memory_kib(beat.pid)
    beat.stop()
    with tables.engine.connect() as conn:
        fired = conn.execute(select(func.count()).select_from(tables["runs"])).scalar()
    return {
        "jobs": options.idle_jobs,
        "seconds": elapsed,
        "cpu_percent": 100 * cpu / elapsed,
        "rss_mib_last": memory["VmRSS"] / 1024,
        "rss_mib_max": max(rss) / 1024 if rss else None,
        "peak_rss_mib": memory["VmHWM"] / 1024,
        "runs_recorded": fired,
    }


# ---- report -------------------------------------------------------------------------------


def report(results: dict, options, database: BenchDatabase) -> str:
    lines = [
        f"scheduler bench, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, commit {git_commit()}",
        f"{database.kind} {database.version()}, {machine_note()}",
        f"{options.jobs} jobs due at once over {options.servers} servers (queues); "
        f"{options.beats} beat process(es) of ours",
        "",
    ]
    ours, theirs = results.get("ours"), results.get("redbeat")
    rows = []
    if ours:
        rows.append([f"ours: arrival in Redis ({ours['cron']})", *_lag_cells(ours["lag_arrival"])])
        rows.append(["ours: runs.dispatched_at", *_lag_cells(ours["lag_dispatched_at"])])
        rows.append(["ours: runs.queued_at (run recorded)", *_lag_cells(ours["lag_queued_at"])])
    if theirs:
        rows.append(
            [
                f"celery-redbeat: arrival in Redis ({theirs['cron']})",
                *_lag_cells(theirs["lag_arrival"]),
            ]
        )
    if rows:
        lines += [
            "send lag after the fire time, seconds:",
            "",
            markdown_table(["", "sent", "first", "p50", "p99", "last"], rows),
            "",
        ]
    if ours and theirs and ours["lag_arrival"]["last"] and theirs["lag_arrival"]["last"]:
        ratio = theirs["lag_arrival"]["last"] / ours["lag_arrival"]["last"]
        lines += [
            f"redbeat last / ours last = {ratio:.2f}x (issue target >= 3x; "
            f"ours first send {fmt(ours['lag_arrival']['first'])} s, target < 1 s)",
            "",
        ]
        if ours["lag_arrival"]["count"] < ours["expected"]:
            lines += [
                f"(ours sent only {ours['lag_arrival']['count']} of {ours['expected']} runs of "
                "this fire time: its last send is not the end of a full fan-out, so the ratio "
                "flatters it)",
                "",
            ]
    if ours:
        lines += [
            f"ours, runs of fire time {ours['fire']} (must be {ours['expected']}, one per job):",
            "",
            one_row_table(_fire_time_columns(ours)),
            "",
            f"fan-out finished: {ours['finished']} (watched {ours['watched_seconds']:.0f} s after "
            f"the fire time); runs of later fire times meanwhile: {ours['later_fire_times'] or 'none'}",
            "",
        ]
    if theirs:
        lines += [
            f"celery-redbeat: {theirs['messages']} messages, {theirs['jobs_with_message']} entries "
            f"sent, {theirs['missing']} missing, {theirs['duplicate_messages']} duplicates; "
            f"finished: {theirs['finished']}",
            "",
        ]
    idle = results.get("idle")
    if idle:
        lines += [
            "beat at rest:",
            "",
            one_row_table(
                {
                    "jobs stored (none due)": idle["jobs"],
                    "measured": f"{idle['seconds']:.0f} s",
                    "CPU (% of a core)": f"{idle['cpu_percent']:.2f} %",
                    "RSS": f"{idle['rss_mib_last']:.1f} MiB",
                    "peak RSS": f"{idle['peak_rss_mib']:.1f} MiB",
                    "runs recorded": idle["runs_recorded"],
                }
            ),
            "",
            "(issue target: under 1 % of a core and under 100 MiB)",
            "",
        ]
    if ours and "profile" in ours:
        lines += [
            print_profile(
                f"py-spy of our beat during the fan-out ({ours['profile']['file']})",
                ours["profile"],
            ),
            "",
        ]
    return "\n".join(lines)


def _fire_time_columns(ours: dict) -> dict:
    states = ours["states"]
    missed = states.get("missed", 0)
    return {
        "jobs": ours["expected"],
        "runs": ours["runs"],
        "jobs with a run": ours["jobs_with_run"],
        "missing (no run, no record)": ours["missing"],
        "duplicate runs": ours["duplicate_runs"],
        "queued": states.get("queued", 0),
        "missed (sent, then agent offline)": ours["missed_after_send"],
        "missed (not sent)": missed - ours["missed_after_send"],
        "skipped": states.get("skipped", 0),
        "other states": sum(states.values())
        - states.get("queued", 0)
        - missed
        - states.get("skipped", 0),
        "messages": ours["messages"],
        "duplicate messages": ours["duplicate_messages"],
        "expired at send": ours["expired_at_send"],
    }


def _lag_cells(lag: dict) -> list[str]:
    return [str(lag["count"]), *(fmt(lag[k]) for k in ("first", "p50", "p99", "last"))]


def main() -> int:
    options = parse_arguments()
    tmp = Path(tempfile.mkdtemp(prefix="zdm-bench-scheduler-"))
    results: dict = {}
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
        prepare_database(env)
        tables = Tables(database.engine)
        inventory = seed_inventory(tables, options.servers, centers=4, repositories=2)
        if not options.skip_ours:
            results["ours"] = measure_ours(options, env, tables, inventory, redis_url, tmp, cleanup)
        if not options.skip_redbeat:
            results["redbeat"] = measure_redbeat(options, inventory, redis_url, tmp, cleanup)
        if not options.skip_idle:
            results["idle"] = measure_idle(options, env, tables, inventory, tmp, cleanup)
        text = report(results, options, database)
    print(text)
    options.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (options.out / f"scheduler-{stamp}.json").write_text(json.dumps(results, indent=2, default=str))
    (options.out / f"scheduler-{stamp}.md").write_text(text + "\n")
    log(f"results in {options.out}/scheduler-{stamp}.*")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
