"""Chaos (issue 11): the whole service in real processes — its own redis-server and database,
the control worker, two beats and two agents — with jobs firing every minute, while a random
one of the five processes is killed -9 every ~`kill_every` seconds and started again a few
seconds later. Then the killing stops, the jobs' schedules move a year away, the service
settles, and the checks run:

- every fire time of every job in the window has exactly one outcome: `success`, `failed`
  with a reason, `skipped` or `missed` (a run lost with its agent is `failed` "worker lost"
  and retried once; the retry's outcome is the fire time's, `run_lifecycle.py`), and nothing
  is left queued or running;
- a recovery point belongs to a successful run, one per run; every successful run of a job
  that keeps all its points has its point;
- the repository's points are exactly the database's, and each restores byte-identical to
  its partition's image (the images never change);
- the engine's `verify` of the repository, every object read, is clean.

One outcome is a known gap, reported apart and not counted a violation: an agent killed after
the engine renamed a point into place but before the database recorded it leaves that point
in the repository, unrecorded; its run is declared lost and retried (docs/operations.md,
"Agent killed"). A point unknown to the database counts as that gap only when its job has a
lost run that was running when the point was made; any other is a violation.

Both agents serve the same server (one queue, the same partitions), so either takes any run,
as a standby agent would. Timings are FaultStack's (lease 6 s, sweep every 2 s). Used by
`bench/chaos.py` (the command) and `tests/end_to_end/test_chaos.py` (a short run in CI).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Run
from app.services.run_lifecycle import WORKER_LOST
from app.timeutil import utcnow
from tests.end_to_end.fault_stack import FaultStack, MiB, make_random_image, register
from tests.end_to_end.processes import wait_until
from workers import engine

SERVER = "chaos-server-01"
TARGETS = ("beat1", "beat2", "agent1", "agent2", "control")
OUTCOMES = ("success", "failed", "skipped", "missed")
UNFINISHED = ("queued", "running", "canceling")
# After the run, every job's next fire time moves a year away: nothing new fires while the
# service settles, and nothing is canceled (as `stop` would).
QUIET_SCHEDULE = {"type": "custom", "description": "0 0 1 1 *"}
# A fire time this close to the moment schedules were moved may have been taken by neither
# beat yet: it is checked if it has runs, not required.
CUTOFF_MARGIN = timedelta(seconds=15)
KEEP_ALL, ROTATION = 365, 3  # every third job keeps 3 points: rotation runs under the kills


@dataclass
class ChaosSettings:
    minutes: float = 10.0
    jobs: int = 50
    kill_every: float = 40.0  # seconds, each gap drawn from 0.5x to 1.5x of it
    seed: int = 0
    down: tuple[float, float] = (2.0, 6.0)  # seconds a killed process stays down
    image_mib: tuple[int, int] = (2, 5)
    settle_seconds: float = 240.0
    # kill an agent once a backup runs (waiting at most `kill_every`): a short run then
    # kills backups midway, not only idle agents
    aim: bool = False
    network_limit: int = 0  # the jobs' networkLimit (Mbit/s): slower backups, longer to hit


@dataclass(frozen=True)
class JobPlan:
    id: int
    name: str
    image: Path
    sha256: str
    first_fire: datetime  # the first fire time after it was registered
    keeps_all: bool


@dataclass(frozen=True)
class RunRecord:
    id: int
    job_id: int
    trigger: str
    scheduled_for: datetime
    state: str
    error: str | None
    retry_of_id: int | None
    started_at: datetime | None = None
    finished_at: datetime | None = None


_RUN_COLUMNS = ("id", "job_id", "trigger", "scheduled_for", "state", "error_message",
                "retry_of_id", "started_at", "finished_at")  # fmt: skip


@dataclass(frozen=True)
class PointOnDisk:
    engine_id: str
    engine_job: str
    created_at: datetime  # when its backup started (the point file says)


@dataclass(frozen=True)
class PointRecord:
    id: int
    engine_id: str
    job_id: int | None
    run_id: int | None
    state: str
    digest: str | None


@dataclass
class Kill:
    at: float  # seconds after the killing began
    target: str
    down: float


@dataclass
class ChaosReport:
    settings: ChaosSettings
    database: str = ""
    kills: list[Kill] = field(default_factory=list)
    fire_times: int = 0
    outcomes: Counter = field(default_factory=Counter)
    retried: int = 0
    reasons: Counter = field(default_factory=Counter)
    runs: int = 0
    points: int = 0
    restored: int = 0
    verified: str = ""
    settled_seconds: float | None = None
    violations: list[str] = field(default_factory=list)
    known_gaps: list[str] = field(default_factory=list)
    logs: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        s = self.settings
        per_target = Counter(k.target for k in self.kills)
        outcomes = ", ".join(f"{state} {self.outcomes[state]}" for state in OUTCOMES)
        lines = [
            f"chaos: {s.minutes:g} min, {s.jobs} jobs every minute, kill -9 every ~{s.kill_every:g} s,"
            f" seed {s.seed}, {self.database}",
            f"kills: {len(self.kills)} ("
            + ", ".join(f"{t} {per_target[t]}" for t in TARGETS)
            + ")",
            f"fire times checked: {self.fire_times} — {outcomes}; {self.retried} runs lost with"
            f" their agent and retried; {self.runs} runs in all",
            *(f"  {count} {reason}" for reason, count in sorted(self.reasons.items())),
            f"recovery points: {self.points} recorded, {self.restored} restored byte-identical;"
            f" verify: {self.verified}",
            "settled: "
            + (f"in {self.settled_seconds:.0f} s" if self.settled_seconds is not None else "NO"),
        ]
        if self.violations:
            lines.append(f"VIOLATIONS ({len(self.violations)}):")
            lines += [f"  - {v}" for v in self.violations]
        else:
            lines.append("violations: none")
        if self.known_gaps:
            lines.append(
                f"known gaps ({len(self.known_gaps)}; docs/operations.md, 'Agent killed'):"
            )
            lines += [f"  - {g}" for g in self.known_gaps]
        if self.logs is not None:
            lines.append(f"process logs: {self.logs}")
        return "\n".join(lines)


# ---- the run ---------------------------------------------------------------------------------


def run_chaos(
    tmp: Path,
    settings: ChaosSettings,
    database_url: str | None = None,
    worker_id: str = "chaos",
    say: Callable[[str], None] = print,
) -> ChaosReport:
    """Start the service in `tmp`, run the chaos, settle, check. Every wait is bounded."""
    rng = random.Random(settings.seed)
    report = ChaosReport(settings)
    stack = FaultStack(tmp, worker_id, database_url=database_url)
    report.database = "PostgreSQL" if stack.postgres else "SQLite"
    report.logs = stack.logs
    try:
        partitions = _make_images(tmp / "images", settings, rng)
        say(f"{len(partitions)} images made; starting redis, control, beat1, beat2, agent1, agent2")
        stack.start_control()
        stack.start_beat("beat1")
        stack.start_beat("beat2")
        stack.start_agent("agent1", SERVER, partitions)
        stack.wait_registered(SERVER, len(partitions))
        stack.start_agent("agent2", SERVER, partitions)
        for name in ("control", "beat1", "beat2", "agent1", "agent2"):
            _wait_started(stack, name)
        stack.setup_admin_and_repository()
        jobs = _register_jobs(stack, partitions, settings.network_limit)
        say(f"{len(jobs)} jobs registered on '* * * * *'; killing for {settings.minutes:g} min")
        _kill_at_random(stack, settings, rng, report, say)
        # First the runs of the chaos settle under their own schedule: a run whose message a
        # killed agent had reserved stays queued until the job's next fire time (its message
        # comes back only after the visibility timeout), then it is recorded missed. Then the
        # schedules move a year away and the runs fired meanwhile finish.
        say("killing stopped; waiting for the runs to settle")
        began = time.monotonic()
        settled = _settle(stack, settings.settle_seconds, fired_until=utcnow())
        cutoff = _quiet_schedules(stack, jobs)
        say("schedules moved a year away; waiting for the last runs")
        if settled is not None:
            settled = _settle(stack, settings.settle_seconds - (time.monotonic() - began))
        report.settled_seconds = None if settled is None else time.monotonic() - began
        if report.settled_seconds is None:
            report.violations.append(
                f"runs still unfinished {settings.settle_seconds:g} s after the killing stopped"
            )
        say("checking fire times, points, restores and verify")
        _check(stack, jobs, cutoff - CUTOFF_MARGIN, report, tmp / "scratch")
    except BaseException:
        say(stack.logs_tail(40))
        raise
    finally:
        stack.stop()
    return report


def _make_images(directory: Path, settings: ChaosSettings, rng: random.Random) -> dict:
    directory.mkdir()
    partitions = {}
    for index in range(settings.jobs):
        image = directory / f"chaos{index:02d}.img"
        make_random_image(image, rng.randint(*settings.image_mib) * MiB)
        partitions[f"/dev/chaos{index:02d}"] = image
    return partitions


def _wait_started(stack: FaultStack, name: str) -> None:
    process = stack.processes[name]

    def started():
        if process.popen.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{process.tail(40)}")
        text = process.log_path.read_text(errors="replace")
        return " ready." in text or "beat: Starting" in text

    wait_until(started, 90, interval=0.2, what=f"{name} started")


def _register_jobs(stack: FaultStack, partitions: dict, network_limit: int) -> list[JobPlan]:
    jobs = []
    with stack.app.app_context():
        client = stack.app.test_client()
        for index, (partition, image) in enumerate(partitions.items()):
            keeps_all = index % 3 != 0
            name = f"chaos-{index:02d}"
            job_id = register(stack, client, name, SERVER, partition,
                              type="full" if index % 2 else "incremental",
                              rotation=KEEP_ALL if keeps_all else ROTATION,
                              networkLimit=network_limit)  # fmt: skip
            registered = utcnow()  # the service took its own "now" before this
            first = registered.replace(second=0, microsecond=0) + timedelta(minutes=1)
            jobs.append(JobPlan(job_id, name, image, _sha256(image), first, keeps_all))
        db.session.remove()
    return jobs


def _kill_at_random(stack, settings, rng, report, say) -> None:
    began = time.monotonic()
    end = began + settings.minutes * 60
    for _ in range(100_000):  # bounded: the time check below ends it long before
        gap = settings.kill_every * rng.uniform(0.5, 1.5)
        if time.monotonic() + gap >= end:
            time.sleep(max(0.0, end - time.monotonic()))
            break
        time.sleep(gap)
        _restart_the_fallen(stack, report, say)
        target, down = rng.choice(TARGETS), rng.uniform(*settings.down)
        if settings.aim and target.startswith("agent"):
            _wait_for_a_backup(stack, min(settings.kill_every, max(0.0, end - time.monotonic())))
        at = time.monotonic() - began
        stack.kill(target)
        say(f"{at:6.0f} s  kill -9 {target}, down {down:.1f} s")
        report.kills.append(Kill(at, target, down))
        time.sleep(down)
        stack.restart(target)
    _restart_the_fallen(stack, report, say)


def _wait_for_a_backup(stack: FaultStack, seconds: float) -> None:
    with stack.app.app_context():

        def running():
            db.session.remove()
            return db.session.scalar(select(Run.id).where(Run.state == "running").limit(1))

        try:
            wait_until(running, seconds, interval=0.2, what="a backup running")
        except TimeoutError:
            pass  # killed idle, then
        finally:
            db.session.remove()


def _restart_the_fallen(stack: FaultStack, report: ChaosReport, say) -> None:
    """A process that exited without being killed is a finding: recorded, and restarted so
    the run goes on."""
    for name in TARGETS:
        code = stack.processes[name].popen.poll()
        if code is not None:
            report.violations.append(f"{name} exited by itself (status {code}); see its log")
            say(f"{name} exited by itself (status {code}); restarting it")
            stack.processes[name].stop()
            stack.restart(name)


def _quiet_schedules(stack: FaultStack, jobs: list[JobPlan]) -> datetime:
    cutoff = utcnow()
    with stack.app.app_context():
        client = stack.app.test_client()
        for job in jobs:
            response = client.put(
                f"/api/v1/backups/{job.id}", json={"schedule": QUIET_SCHEDULE}, headers=stack.auth
            )
            assert response.status_code == 200, response.get_data(as_text=True)
        db.session.remove()
    return cutoff


def _settle(stack: FaultStack, seconds: float, fired_until: datetime | None = None):
    """Seconds until no run (of a fire time up to `fired_until`) is queued, running or
    canceling; None if that never came."""
    began = time.monotonic()
    unfinished = select(func.count(Run.id)).where(Run.state.in_(UNFINISHED))
    if fired_until is not None:
        unfinished = unfinished.where(Run.scheduled_for <= fired_until)
    with stack.app.app_context():

        def settled():
            db.session.remove()
            return db.session.scalar(unfinished) == 0

        try:
            wait_until(settled, max(1.0, seconds), interval=1, what="every run finished")
        except TimeoutError:
            return None
        finally:
            db.session.remove()
    return time.monotonic() - began


# ---- the checks ------------------------------------------------------------------------------


def _check(stack, jobs: list[JobPlan], window_end: datetime, report: ChaosReport, scratch):
    with stack.app.app_context():
        db.session.remove()
        job_ids = [job.id for job in jobs]
        runs = [
            RunRecord(*(getattr(r, name) for name in _RUN_COLUMNS))
            for r in db.session.scalars(select(Run).where(Run.job_id.in_(job_ids)).order_by(Run.id))
        ]
        points = [
            PointRecord(p.id, p.engine_id, p.job_id, p.run_id, p.state, p.digest)
            for p in db.session.scalars(select(RecoveryPoint).order_by(RecoveryPoint.id))
        ]
        engine_jobs = select(BackupJob.id, BackupJob.engine_job).where(BackupJob.id.in_(job_ids))
        engine_jobs = dict(db.session.execute(engine_jobs).all())
        db.session.remove()
    report.runs = len(runs)
    if not any(job.first_fire <= window_end for job in jobs):
        report.violations.append("no fire time fell in the window: nothing was checked")
    report.points = len(points)
    fire = check_fire_times(jobs, runs, window_end)
    report.fire_times, report.outcomes = fire.fire_times, fire.outcomes
    report.retried, report.reasons = fire.retried, fire.reasons
    report.violations += fire.violations
    violations, report.known_gaps = check_points(
        jobs, runs, points, points_on_disk(stack.repository), engine_jobs
    )
    report.violations += violations
    violations, report.restored = check_restores(stack.repository, jobs, points, scratch)
    report.violations += violations
    violations, report.verified = check_verify(stack.repository, points)
    report.violations += violations


@dataclass
class FireTimeCheck:
    fire_times: int = 0
    outcomes: Counter = field(default_factory=Counter)
    retried: int = 0
    violations: list[str] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)  # "state: reason" of failed and missed


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def _named_until(run: RunRecord) -> datetime | None:
    """The newest fire time a `missed` run names besides its own (beat's catch-up records one
    missed run for several passed fire times), or None."""
    if run.state != "missed" or not run.error:
        return None
    times = [
        datetime.strptime(t.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        for t in _ISO.findall(run.error)
    ]
    return max(times) if times else None


def check_fire_times(jobs: list[JobPlan], runs: list[RunRecord], window_end: datetime):
    """Every fire time of every job from its first to `window_end` has exactly one outcome;
    every run is finished; retries belong to lost runs, one each."""
    result = FireTimeCheck()
    by_id = {run.id: run for run in runs}
    per_job: dict[int, list[RunRecord]] = defaultdict(list)
    for run in runs:
        per_job[run.job_id].append(run)
    bad = result.violations.append
    for job in jobs:
        scheduled: dict[datetime, list[RunRecord]] = defaultdict(list)
        retry_of: dict[int, list[RunRecord]] = defaultdict(list)
        for run in per_job.get(job.id, []):
            if run.trigger == "schedule":
                scheduled[run.scheduled_for].append(run)
            elif run.trigger == "retry":
                retry_of[run.retry_of_id].append(run)
            else:
                bad(f"job {job.name}: run {run.id} has trigger {run.trigger!r}; none was asked")
        for original_id, retries in retry_of.items():
            original = by_id.get(original_id)
            ids = [r.id for r in retries]
            if len(retries) > 1:
                bad(f"job {job.name}: run {original_id} was retried {len(retries)} times ({ids})")
            if original is None or original.job_id != job.id or original.trigger != "schedule":
                bad(f"job {job.name}: retry {ids} names run {original_id}, not its scheduled run")
            elif original.state != "failed" or original.error != WORKER_LOST:
                bad(f"job {job.name}: run {original.id} ({original.state}: {original.error}) was"
                    f" retried by {ids} though it was not lost")  # fmt: skip
            elif any(r.scheduled_for != original.scheduled_for for r in retries):
                bad(f"job {job.name}: retry {ids} is for another fire time than run {original.id}")
        covered: set[datetime] = set()
        for fire_time, records in sorted(scheduled.items()):
            if len(records) > 1:
                bad(f"job {job.name}: fire time {fire_time} has {len(records)} scheduled runs"
                    f" ({[r.id for r in records]})")  # fmt: skip
            original = records[0]
            retries = retry_of.get(original.id, [])
            if original.state == "failed" and original.error == WORKER_LOST and not retries:
                bad(f"job {job.name}: run {original.id} at {fire_time} was lost and not retried")
            outcome = retries[-1] if retries else original
            result.retried += bool(retries)
            if outcome.state in UNFINISHED:
                bad(f"job {job.name}: run {outcome.id} at {fire_time} is still {outcome.state}")
            elif outcome.state not in OUTCOMES:
                bad(f"job {job.name}: run {outcome.id} at {fire_time} ended {outcome.state}"
                    f" ({outcome.error})")  # fmt: skip
            elif outcome.state == "failed" and not (outcome.error or "").strip():
                bad(f"job {job.name}: run {outcome.id} at {fire_time} failed without a reason")
            if fire_time.second or fire_time.microsecond:
                bad(f"job {job.name}: run {original.id} is for {fire_time}, not a fire time")
            if fire_time < job.first_fire:
                bad(f"job {job.name}: run {original.id} is for {fire_time}, before the job's"
                    f" first fire time {job.first_fire}")  # fmt: skip
            result.fire_times += fire_time <= window_end
            result.outcomes[outcome.state] += fire_time <= window_end
            if outcome.state in ("failed", "missed") and fire_time <= window_end:
                result.reasons[f"{outcome.state}: {_ISO.sub('<time>', outcome.error or '')}"] += 1
            until = _named_until(original)
            moment = fire_time
            while until is not None and moment < until:  # bounded: one minute a step
                moment += timedelta(minutes=1)
                covered.add(moment)
        moment = job.first_fire
        while moment <= window_end:
            if moment not in scheduled:
                if moment in covered:
                    result.fire_times += 1
                    result.outcomes["missed"] += 1
                    result.reasons["missed: named by the missed run of an earlier fire time"] += 1
                else:
                    bad(f"job {job.name}: fire time {moment} has no run")
            moment += timedelta(minutes=1)
    return result


def points_on_disk(repository: Path) -> dict[str, PointOnDisk]:
    found: dict[str, PointOnDisk] = {}
    if not (repository / "config").exists():
        return found  # no backup ran: the first one makes the repository
    for info in engine.list_points(repository):
        created = datetime.strptime(info.created_at.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        found[info.id] = PointOnDisk(info.id, info.job, created)
    unreadable = engine.point_ids(repository) - set(found)
    for point_id in unreadable:  # a point file list_points cannot read: still a point on disk
        found[point_id] = PointOnDisk(point_id, "", datetime.min)
    return found


def check_points(
    jobs: list[JobPlan],
    runs: list[RunRecord],
    points: list[PointRecord],
    on_disk: dict[str, PointOnDisk],
    engine_jobs: dict[int, str],
) -> tuple[list[str], list[str]]:
    """A point belongs to a successful run, one per run; a job that keeps all its points has
    one for every success, a rotating job for its newest; disk and database agree.
    Returns (violations, known gaps): see the module's doc for the one gap."""
    violations, gaps = [], []
    bad = violations.append
    by_id = {run.id: run for run in runs}
    per_run: dict[int | None, list[PointRecord]] = defaultdict(list)
    for point in points:
        per_run[point.run_id].append(point)
        run = by_id.get(point.run_id)
        if run is None:
            bad(f"point {point.id} ({point.engine_id}) belongs to no run of the chaos (run"
                f" {point.run_id})")  # fmt: skip
        elif run.state != "success":
            bad(f"point {point.id} ({point.engine_id}) was recorded for run {run.id}, which ended"
                f" {run.state} ({run.error}): a fire time decided twice")  # fmt: skip
        if point.state != "available":
            bad(f"point {point.id} ({point.engine_id}) is recorded {point.state}")
    for run_id, recorded in per_run.items():
        if len(recorded) > 1:
            bad(f"run {run_id} has {len(recorded)} points ({[p.engine_id for p in recorded]})")
    for job in jobs:
        successes = [r for r in runs if r.job_id == job.id and r.state == "success"]
        required = successes if job.keeps_all else successes[-1:]
        for run in required:
            if not per_run.get(run.id):
                bad(f"job {job.name}: successful run {run.id} ({run.scheduled_for}) has no point")
    recorded_ids = {p.engine_id for p in points}
    gone = sorted(recorded_ids - set(on_disk))
    if gone:
        bad(f"{len(gone)} points recorded that the repository does not hold: {gone}")
    job_of_engine_job = {engine_job: job_id for job_id, engine_job in engine_jobs.items()}
    names = {job.id: job.name for job in jobs}
    for point_id in sorted(set(on_disk) - recorded_ids):
        point = on_disk[point_id]
        job_id = job_of_engine_job.get(point.engine_job)
        lost = _lost_run_that_made(point, job_id, runs)
        if lost is None:
            bad(f"point {point_id} in the repository is not recorded (engine job"
                f" {point.engine_job or 'unreadable'}), and no lost run explains it")  # fmt: skip
        else:
            gaps.append(f"point {point_id} of {names[job_id]}, made by run {lost.id} (fire time"
                        f" {lost.scheduled_for}) whose agent was killed before recording it,"
                        f" is in the repository unrecorded; the run was retried")  # fmt: skip
    return violations, gaps


def _lost_run_that_made(point: PointOnDisk, job_id: int | None, runs: list[RunRecord]):
    """The job's lost run that was running when `point`'s backup started, or None."""
    for run in runs:
        if (
            run.job_id == job_id
            and run.state == "failed"
            and run.error == WORKER_LOST
            and run.started_at is not None
            and run.finished_at is not None
            and run.started_at - timedelta(seconds=2) <= point.created_at <= run.finished_at
        ):
            return run
    return None


def check_restores(repository: Path, jobs: list[JobPlan], points: list[PointRecord], scratch: Path):
    """Every available point restores (its recorded digest checked) byte-identical to its
    job's image. Returns (violations, points restored identical)."""
    scratch.mkdir(exist_ok=True)
    images = {job.id: job for job in jobs}
    violations, identical = [], 0
    for point in points:
        job = images.get(point.job_id)
        if job is None or point.state != "available":
            continue  # reported by check_points
        target = scratch / "restore.img"
        try:
            engine.restore(repository, point.engine_id, target, expected_digest=point.digest)
        except engine.EngineError as exc:
            violations.append(f"point {point.id} ({point.engine_id}) of {job.name} does not"
                              f" restore: {exc}")  # fmt: skip
            continue
        if _sha256(target) == job.sha256:
            identical += 1
        else:
            violations.append(f"point {point.id} ({point.engine_id}) of {job.name} restores"
                              f" different bytes from its image")  # fmt: skip
        target.unlink()
    return violations, identical


def check_verify(repository: Path, points: list[PointRecord]) -> tuple[list[str], str]:
    """The engine's verify, every object read, against the recorded digests."""
    expected = {p.engine_id: p.digest for p in points if p.digest}
    if not (repository / "config").exists():
        return [], "no repository (no backup ran)"
    try:
        result = engine.verify(repository, read_data=True, expected=expected)
    except engine.EngineError as exc:
        return [f"verify failed: {exc}"], "failed"
    said = (
        f"{result.points_checked} points, {result.objects_checked} objects read,"
        f" {result.unreferenced_packs} unreferenced packs (garbage of killed runs),"
        f" {'clean' if result.ok else f'{len(result.problems)} problems'}"
    )
    return [f"verify: {problem}" for problem in result.problems], said


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()
