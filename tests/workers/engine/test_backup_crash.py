"""A backup killed (kill -9) or canceled at any moment leaves no visible point and no damage."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.workers.engine.helpers import MIB, ROOT, run_engine, sha256
from workers.engine import BackupCanceled, backup, list_points, prune, restore, verify


def _start_cli_backup(repo, source, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "workers.engine", "backup", "--repo", str(repo), "--job", "job",
         "--source", str(source), "--mode", "incremental", "--compression", "lz4", *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _bytes_in_flight(repo) -> int:
    total = 0
    for directory in (repo / "tmp", repo / "packs"):
        for path in directory.rglob("*") if directory.exists() else ():
            if path.is_file():
                total += path.stat().st_size
    return total


@pytest.mark.parametrize("kill_after_bytes", [1 * MIB, 20 * MIB, 40 * MIB])
def test_kill_9_mid_backup_leaves_no_point_and_next_run_cleans_up(tmp_path, kill_after_bytes):
    repo = tmp_path / "repo"
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(48 * MIB))
    # an earlier point must stay intact through the crash
    earlier = backup(repo, "job", source, "full", compression="lz4")
    with open(source, "r+b") as image:
        image.write(os.urandom(48 * MIB))
    before = _bytes_in_flight(repo)

    process = _start_cli_backup(repo, source, "--rate-limit-mbps", "240")
    deadline = time.monotonic() + 30
    while _bytes_in_flight(repo) - before < kill_after_bytes and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert process.poll() is None, "the backup finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert [p.id for p in list_points(repo)] == [earlier.point_id]
    assert any((repo / "tmp").iterdir())  # the dead run's leftovers are still there ...
    report = verify(repo, read_data=True)
    assert report.ok, report.problems
    listed = run_engine("list", "--repo", repo, "--json")
    assert listed.returncode == 0 and earlier.point_id in listed.stdout

    done = run_engine("backup", "--repo", repo, "--job", "job", "--source", source,
                      "--mode", "incremental", "--compression", "lz4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not any((repo / "tmp").iterdir())  # ... and the next run removed them
    new_point = done.stdout.strip().splitlines()[-1]
    assert verify(repo, read_data=True).ok
    restore(repo, new_point, tmp_path / "restored.img")
    assert sha256(tmp_path / "restored.img") == sha256(source)
    prune(repo, "job", keep=2)
    assert verify(repo).unreferenced_packs == 0  # prune removed what the dead run stored


def test_should_cancel_stops_backup_without_a_point(tmp_path, repo):
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(16 * MIB))
    calls = []

    def should_cancel():
        calls.append(time.monotonic())
        return len(calls) >= 3

    with pytest.raises(BackupCanceled):
        backup(repo, "job", source, "full", rate_limit_mbps=200, should_cancel=should_cancel)
    assert list_points(repo) == []
    assert not any((repo / "tmp").iterdir())
    assert verify(repo).ok
    # should_cancel is asked a few times per second, not once per block
    assert all(b - a >= 0.15 for a, b in zip(calls, calls[1:], strict=False))


def test_progress_reports_bytes_total_and_speed(tmp_path, repo):
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(8 * MIB))
    reports = []
    backup(repo, "job", source, "full", rate_limit_mbps=64, progress=lambda *r: reports.append(r))

    done = [r[0] for r in reports]
    assert done == sorted(done) and done[-1] == 8 * MIB
    assert all(r[1] == 8 * MIB for r in reports)
    assert reports[-1][2] > 0
    assert 3 <= len(reports) <= 30  # about 1 s of work, reported a few times per second


def test_kill_9_mid_directory_backup(tmp_path):
    repo = tmp_path / "repo"
    source = tmp_path / "tree"
    for number in range(20):
        (source / f"dir{number % 4}").mkdir(parents=True, exist_ok=True)
        (source / f"dir{number % 4}" / f"file{number}").write_bytes(os.urandom(2 * MIB))

    process = _start_cli_backup(repo, source, "--rate-limit-mbps", "160")
    deadline = time.monotonic() + 30
    while _bytes_in_flight(repo) < 10 * MIB and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert process.poll() is None, "the backup finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert list_points(repo) == []
    assert verify(repo, read_data=True).ok
    done = run_engine("backup", "--repo", repo, "--job", "job", "--source", source)
    assert done.returncode == 0, done.stderr
    assert not any((repo / "tmp").iterdir())
    restore(repo, done.stdout.split()[-1], tmp_path / "out")
    for number in range(20):
        relative = f"dir{number % 4}/file{number}"
        assert sha256(tmp_path / "out" / relative) == sha256(source / relative)


def test_progress_speed_is_current_while_running_and_the_average_at_the_end(tmp_path, repo):
    """16 MiB of zeros (never written, read at once), then 16 MiB of random data written at
    32 Mbit/s (4 MB/s, about 4 s): once the zeros are more than the speed's window behind,
    the reported speed is the rate limit, not the average since the start."""
    source = tmp_path / "disk.img"
    source.write_bytes(bytes(16 * MIB) + os.urandom(16 * MIB))
    reports = []
    started = time.monotonic()

    result = backup(repo, "job", source, "full", rate_limit_mbps=32,
                    progress=lambda *r: reports.append((time.monotonic() - started, *r)))  # fmt: skip

    rate = 32 * 1_000_000 / 8
    running, last = reports[:-1], reports[-1]
    late = [r for r in running if r[0] > 2.5]  # the window (2 s) holds only random data
    assert len(late) >= 3
    for elapsed, done, _total, speed, _read, _written in late:
        assert 0.5 * rate < speed < 1.5 * rate
        assert done / elapsed > 1.5 * rate  # the average since the start: not what is shown
    # read and written move along: written is what the repository received so far
    assert [r[4] for r in running] == sorted(r[4] for r in running)
    assert [r[5] for r in running] == sorted(r[5] for r in running)
    assert running[0][5] < 4 * MIB < running[-1][5]
    assert all(r[5] <= result.bytes_written for r in running)
    # the last report is the engine's own totals, and the average speed
    _, done, total, speed, read, written = last
    assert (done, total, read, written) == (32 * MIB, 32 * MIB, result.bytes_read,
                                            result.bytes_written)  # fmt: skip
    assert speed == pytest.approx(32 * MIB / result.duration_seconds, rel=0.05)


def test_restore_progress_reports_the_bytes_written_to_the_target(tmp_path, repo, image):
    point = backup(repo, "job", image, "full")
    reports = []

    restore(repo, point.point_id, tmp_path / "restored.img", progress=lambda *r: reports.append(r))

    assert all(read == written == done for done, _t, _s, read, written in reports)
    assert reports[-1][:2] == (6 * MIB, 6 * MIB) and reports[-1][2] > 0
