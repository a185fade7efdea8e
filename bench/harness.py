"""What the control-plane benchmarks share: processes in their own group, a private Redis,
a database of the bench's own, SQL bulk inserts into the product's tables, percentiles,
py-spy profiles and tables.

The benchmarks talk to the product only through its commands (`flask --app wsgi zdm ...`,
`celery -A workers beat`, `gunicorn wsgi:app`), its HTTP API, its database columns and its
Redis queues, so they keep working while the code behind those changes. Tables are
reflected from the database the migrations made; a new NOT NULL column without a default
stops the bench with a sentence naming it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, select, text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-not-secret"
ADMIN_EMAIL = "bench-admin@example.com"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def epoch(moment: datetime) -> float:
    """Seconds since the epoch of a naive UTC datetime (how the database stores times)."""
    return moment.replace(tzinfo=UTC).timestamp()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, seconds: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {seconds:.0f} s")
        time.sleep(interval)


def stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP unwind as KeyboardInterrupt, so every `finally` and
    ExitStack callback cleans up (SIGINT too when started with it ignored, as `cmd &` is)."""

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def run_main(main) -> int:
    """Run a bench's main(); an interruption ends it with status 130 after the clean-up."""
    stop_on_signals()
    try:
        return main()
    except KeyboardInterrupt as stop:
        log(f"interrupted ({stop or 'Ctrl-C'}); processes stopped, database and files removed")
        return 130


class Process:
    """A child in its own process group (Ctrl-C at the terminal reaches only the bench),
    its output in a log file; stopped with SIGTERM, then SIGKILL, group-wide."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path, cwd: Path = ROOT):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, seconds: float = 15) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=10)
        else:
            self.signal(signal.SIGKILL)  # children left behind by a dead leader
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_contains(self, needle: str) -> bool:
        return needle in self.log_path.read_text(errors="replace")


def start_redis(directory: Path, cleanup: contextlib.ExitStack) -> str:
    """A private redis-server on a free loopback port, no persistence; returns its URL."""
    import redis

    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is missing: apt-get install -y redis-server")
    for _attempt in range(5):
        port = free_port()
        process = Process(
            f"redis-{port}",
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            os.environ.copy(),
            directory,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.alive():
            try:
                if client.ping():
                    client.close()
                    cleanup.callback(process.stop)
                    return f"redis://127.0.0.1:{port}"
            except redis.ConnectionError:
                time.sleep(0.05)
        process.stop()
    raise SystemExit("could not start a private redis-server")


# ---- the bench's own database -------------------------------------------------------------


class BenchDatabase:
    """`zdm_bench_<pid>` on a PostgreSQL server (created here, dropped at the end), or a
    SQLite file in the bench's temporary directory."""

    def __init__(self, server_url: str | None, sqlite_dir: Path | None):
        if sqlite_dir is not None:
            self.server_url = None
            self.url = f"sqlite:///{sqlite_dir / 'zdm-bench.sqlite3'}"
        else:
            self.server_url = server_url or DEFAULT_POSTGRES
            name = f"zdm_bench_{os.getpid()}"
            self.url = make_url(self.server_url).set(database=name).render_as_string(False)
        self.name = make_url(self.url).database
        self._engine: Engine | None = None

    @property
    def kind(self) -> str:
        return "SQLite" if self.server_url is None else "PostgreSQL"

    def create(self) -> None:
        if self.server_url is None:
            return
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self.server_url is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(statement))
        finally:
            admin.dispose()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.url, connect_args=self._connect_args())
        return self._engine

    def _connect_args(self) -> dict:
        return {"timeout": 30} if self.server_url is None else {}

    def version(self) -> str:
        with self.engine.connect() as conn:
            if self.server_url is None:
                return "SQLite " + conn.execute(text("select sqlite_version()")).scalar()
            return conn.execute(text("show server_version")).scalar().split()[0]


def service_env(database_url: str, redis_url: str, var_dir: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ZDM_VAR_DIR=str(var_dir),
        ZDM_PASSWORD=PASSWORD,
        PATH=f"{BIN}:{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def flask_cli(env: dict, *args: str) -> str:
    """Run `flask --app wsgi ...` as an operator would; its stdout, or SystemExit."""
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def prepare_database(env: dict) -> str:
    """Migrate, create the bench's admin user and return a fresh bearer token."""
    flask_cli(env, "zdm", "init")
    flask_cli(env, "zdm", "create-user", ADMIN_EMAIL, "--role", "admin")
    return flask_cli(env, "zdm", "create-token", ADMIN_EMAIL).strip()


# ---- bulk inserts into the product's tables ----------------------------------------------


class Tables:
    """The product's tables as the migrations made them (reflected, not imported)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.metadata = MetaData()
        self.metadata.reflect(engine)

    def __getitem__(self, name: str) -> Table:
        return self.metadata.tables[name]


def _auto_key(column) -> bool:
    return column.primary_key and column.autoincrement in (True, "auto")


def insert_rows(conn, table: Table, rows: list[dict], batch: int = 5000) -> None:
    """Bulk INSERT (executemany, batched); keys the table no longer has are dropped, and a
    required column the bench does not know stops it with a clear sentence."""
    if not rows:
        return
    columns = set(table.columns.keys())
    given = set(rows[0]) & columns
    missing = [
        c.name
        for c in table.columns
        if c.name not in given and not c.nullable and c.server_default is None and not _auto_key(c)
    ]
    if missing:
        raise SystemExit(
            f"table {table.name} has required columns the bench does not fill: "
            f"{', '.join(missing)}; teach bench/harness.py their values"
        )
    for start in range(0, len(rows), batch):
        chunk = [{k: row[k] for k in given} for row in rows[start : start + batch]]
        conn.execute(table.insert(), chunk)


@dataclass
class Inventory:
    user_id: int
    centers: list[tuple[int, str]]
    # server name -> (server id, center name, [(partition id, partition name, kind)])
    servers: dict[str, tuple[int, str, list[tuple[int, str, str]]]]
    # center name -> [(repository id, path)]
    repositories: dict[str, list[tuple[int, str]]]
    server_names: list[str] = field(default_factory=list)


PARTITIONS = [
    ("/dev/sda1", "block", "/boot", 1 << 30),
    ("/dev/sda2", "block", "/", 64 << 30),
    ("/dev/sdb1", "block", "/var", 256 << 30),
    ("/data", "directory", "/data", None),
]


def seed_inventory(tables: Tables, servers: int, centers: int, repositories: int) -> Inventory:
    """Centers, servers (each with the four PARTITIONS) and repositories, spread evenly;
    server `srv-NNNN` belongs to center `CENTER-%03d` round-robin."""
    now = utcnow()
    with tables.engine.begin() as conn:
        user_id = conn.execute(
            select(tables["users"].c.id).where(tables["users"].c.email == ADMIN_EMAIL)
        ).scalar_one()
        center_names = [f"CENTER-{n + 1:03d}" for n in range(centers)]
        insert_rows(
            conn,
            tables["centers"],
            [{"name": name, "description": "bench", "created_at": now} for name in center_names],
        )
        center_ids = {
            r.name: r.id
            for r in conn.execute(select(tables["centers"].c.name, tables["centers"].c.id))
        }
        server_names = [f"srv-{n + 1:04d}" for n in range(servers)]
        insert_rows(
            conn,
            tables["servers"],
            [
                {
                    "name": name,
                    "center_id": center_ids[center_names[n % centers]],
                    "online": True,
                    "last_seen": now,
                    "created_at": now,
                    "description": None,
                }
                for n, name in enumerate(server_names)
            ],
        )
        server_rows = {
            r.name: (r.id, r.center_id)
            for r in conn.execute(
                select(
                    tables["servers"].c.name, tables["servers"].c.id, tables["servers"].c.center_id
                )
            )
        }
        insert_rows(
            conn,
            tables["partitions"],
            [
                {
                    "server_id": server_rows[name][0],
                    "name": p,
                    "kind": kind,
                    "mountpoint": mount,
                    "size": size,
                    "position": position,
                }
                for name in server_names
                for position, (p, kind, mount, size) in enumerate(PARTITIONS)
            ],
        )
        partitions = defaultdict(list)
        part = tables["partitions"]
        for row in conn.execute(select(part.c.id, part.c.server_id, part.c.name, part.c.kind)):
            partitions[row.server_id].append((row.id, row.name, row.kind))
        insert_rows(
            conn,
            tables["repositories"],
            [
                {
                    "center_id": center_ids[c],
                    "type": "local",
                    "path": f"/backup/{c.lower()}/r{n + 1}",
                    "created_at": now,
                    "verify_read_data": 0,
                }
                for c in center_names
                for n in range(repositories)
            ],
        )
        repos = defaultdict(list)
        names_by_id = {v: k for k, v in center_ids.items()}
        repo = tables["repositories"]
        for row in conn.execute(
            select(repo.c.id, repo.c.center_id, repo.c.path).order_by(repo.c.id)
        ):
            repos[names_by_id[row.center_id]].append((row.id, row.path))
    center_of = {v: k for k, v in center_ids.items()}
    return Inventory(
        user_id=user_id,
        centers=[(center_ids[c], c) for c in center_names],
        servers={
            name: (sid, center_of[cid], sorted(partitions[sid]))
            for name, (sid, cid) in server_rows.items()
        },
        repositories=dict(repos),
        server_names=server_names,
    )


def job_row(
    inventory: Inventory,
    server: str,
    partition: tuple[int, str, str],
    name: str,
    cron: str,
    schedule_type: str,
    next_run_at: datetime | None,
    *,
    repository_index: int = 0,
    mode: str = "full",
    active: bool = True,
    created_at: datetime | None = None,
) -> dict:
    """One backup_jobs row as registration would store it."""
    server_id, center, _partitions = inventory.servers[server]
    repos = inventory.repositories[center]
    repository_id = repos[repository_index % len(repos)][0]
    job_uuid = str(uuid.uuid4())
    moment = created_at or utcnow()
    return {
        "uuid": job_uuid,
        "engine_job": f"job-{job_uuid}",
        "name": name,
        "server_id": server_id,
        "partition_id": partition[0],
        "repository_id": repository_id,
        "user_id": inventory.user_id,
        "created_by_id": inventory.user_id,
        "mode": mode,
        "compression": "lz4" if partition[2] == "block" else "gzip",
        "encryption": "none",
        "rotation": 7,
        "network_limit": 0,
        "exclude_dirs": [],
        "mail_event": None,
        "description": None,
        "schedule_type": schedule_type,
        "schedule_expr": cron,
        "timezone": "UTC",
        "auto_start": active,
        "active": active,
        "status": "scheduled" if active else "waiting",
        "next_run_at": next_run_at,
        "created_at": moment,
        "updated_at": moment,
        "deleted_at": None,
    }


def next_fire(cron: str, after: datetime) -> datetime:
    """The first fire time of a UTC cron expression strictly after `after` (naive UTC)."""
    from croniter import croniter

    return croniter(cron, after).get_next(datetime)


def schedule_type_of(cron: str) -> str:
    """The API's schedule type whose shape `cron` has (beat does not check it)."""
    minute, hour, day, month, weekday = cron.split()
    if (
        re.fullmatch(r"\d+", minute)
        and re.fullmatch(r"\d+", hour)
        and (day, month, weekday) == ("*", "*", "*")
    ):
        return "daily"
    if re.fullmatch(r"\d+", minute) and (hour, day, month, weekday) == ("*", "*", "*", "*"):
        return "hourly"
    return "custom"


# ---- numbers ------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (share in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def lag_summary(lags: list[float]) -> dict:
    return {
        "count": len(lags),
        "first": min(lags) if lags else None,
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "last": max(lags) if lags else None,
    }


def one_row_table(columns: dict) -> str:
    return markdown_table(list(columns), [list(columns.values())])


def fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def markdown_table(header: list[str], rows: Iterable[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"Python {sys.version.split()[0]}"
    )


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return done.stdout.strip()[:80] + (" (with uncommitted changes)" if dirty else "")


# ---- /proc -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


# ---- py-spy -------------------------------------------------------------------------------


class Profiler:
    """`py-spy record` of a running process in raw (collapsed stack) format; idle samples
    included, so time spent waiting for the database or Redis shows as its caller."""

    def __init__(self, pid: int, out: Path, log_dir: Path, subprocesses: bool = False):
        spy = BIN / "py-spy"
        if not spy.exists():
            raise SystemExit("py-spy is missing: .venv/bin/pip install -r bench/requirements.txt")
        self.out = out
        args = [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--idle",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
        ]
        if subprocesses:
            args.append("--subprocesses")
        self.process = Process(f"py-spy-{pid}", args, os.environ.copy(), log_dir)
        time.sleep(0.5)  # attach before the interesting part starts

    def stop(self) -> Path:
        # py-spy writes its output on SIGINT
        self.process.signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.popen.wait(timeout=30)
        self.process.stop()
        return self.out


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize_profile(raw: Path, skip_processes: Iterable[str] = (), top: int = 12) -> dict:
    """Shares of samples from py-spy's raw output: by leaf function (self), by function of
    our own code (inclusive), and by the call our code's deepest frame was making.

    Lines are `frame;frame;...;leaf COUNT`, root first; with --subprocesses a stack starts
    with a frame per process from the root to its own (`process 123:"..."`). Stacks whose
    own process frame contains one of `skip_processes` (e.g. gunicorn's master) are left out.
    """
    self_counts: Counter = Counter()
    inclusive: Counter = Counter()
    calls: Counter = Counter()  # deepest frame of our code -> what it called
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        owner = ""
        while frames and frames[0].startswith(("process ", "thread ")):
            if frames[0].startswith("process "):
                owner = frames[0]  # a child's stack starts with its parents' frames
            frames = frames[1:]
        if any(s in owner for s in skip_processes):
            continue
        if not frames:
            continue
        samples = int(count)
        total += samples
        names = [_frame_name(f) for f in frames]
        self_counts[names[-1]] += samples
        for name in set(names):
            inclusive[name] += samples
        own = [i for i, name in enumerate(names) if _own_code(name)]
        if own:
            deepest = own[-1]
            callee = names[deepest + 1] if deepest + 1 < len(names) else "(its own lines)"
            calls[f"{names[deepest]} -> {callee}"] += samples

    def share(counter):
        return [(name, 100.0 * n / total) for name, n in counter.most_common(top)] if total else []

    own = Counter({name: n for name, n in inclusive.items() if _own_code(name)})
    return {
        "samples": total,
        "self": share(self_counts),
        "own": share(own),
        "calls": share(calls),
    }


def _own_code(name: str) -> bool:
    return name.endswith(".py)") and name.rsplit(" (", 1)[1].startswith(("app/", "workers/"))


def print_profile(title: str, summary: dict) -> str:
    lines = [
        f"{title}: {summary['samples']} samples (100 Hz, idle included)",
        "",
        "self time (leaf function):",
        "",
    ]
    lines += [f"    {pct:5.1f} %  {name}" for name, pct in summary["self"]]
    lines += ["", "inclusive time, the project's own functions (app/, workers/):", ""]
    lines += [f"    {pct:5.1f} %  {name}" for name, pct in summary["own"]]
    lines += ["", "where our code's time goes (deepest own frame -> the call it made):", ""]
    lines += [f"    {pct:5.1f} %  {name}" for name, pct in summary["calls"]]
    return "\n".join(lines)


def unique_suffix() -> str:
    return f"{os.getpid()}-{secrets.token_hex(2)}"


def seconds_until(moment: datetime) -> float:
    return epoch(moment) - time.time()


def ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)
