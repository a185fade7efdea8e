"""Operations at once on one repository never corrupt it: concurrent backups, a prune while
backups run (their claims keep what they need), a point being restored kept, prune's lock
timeout."""

import os
import subprocess
import sys
import time

import pytest

from tests.workers.engine.helpers import MIB, ROOT, sha256, write_image
from workers.engine import RepositoryLocked, backup, list_points, prune, restore, verify
from workers.engine.locks import RepositoryLock
from workers.engine.operations import Operation
from workers.engine.repository import RepositoryDir


def _cli_backup(repo, job, source, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "workers.engine", "backup", "--repo", str(repo), "--job", job,
         "--source", str(source), "--compression", "lz4", *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_until_claiming(repo, process) -> None:
    """Until the backup has recorded its first claim (it has found its parent and started)."""
    deadline = time.monotonic() + 30
    while not any(f.stat().st_size for f in (repo / "tmp").glob("backup-*/refs")):
        assert process.poll() is None, "the backup ended before it could be disturbed"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_two_concurrent_backups_into_one_new_repository(tmp_path):
    repo = tmp_path / "repo"
    sources = [write_image(tmp_path / f"{n}.img", 12 * MIB, seed=n) for n in (1, 2)]
    processes = [_cli_backup(repo, f"job{n}", source) for n, source in enumerate(sources)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs

    assert verify(repo, read_data=True).ok
    for (stdout, _), source in zip(outputs, sources, strict=True):
        point = stdout.strip().splitlines()[-1]
        restore(repo, point, tmp_path / "out.img")
        assert sha256(tmp_path / "out.img") == sha256(source)


def test_prune_of_one_job_while_another_backs_up(tmp_path):
    repo = tmp_path / "repo"
    shared = write_image(tmp_path / "a.img", 8 * MIB, seed=4)
    for _ in range(3):
        backup(repo, "a", shared, "full", compression="lz4")
    other = tmp_path / "b.img"
    other.write_bytes(os.urandom(40 * MIB))  # more than two packs: some are finished mid-run

    running = _cli_backup(repo, "b", other, "--rate-limit-mbps", "160")  # about 2 s
    _wait_until_claiming(repo, running)
    removed = []
    while running.poll() is None:  # collect garbage again and again while b is writing
        removed += prune(repo, "a", keep=0).removed_points
        time.sleep(0.05)
    stdout, stderr = running.communicate(timeout=60)
    assert running.returncode == 0, stderr
    assert len(removed) == 3

    assert verify(repo, read_data=True).ok
    restore(repo, stdout.strip().splitlines()[-1], tmp_path / "out.img")
    assert sha256(tmp_path / "out.img") == sha256(other)


def test_prune_deleting_the_parent_of_a_running_incremental(tmp_path):
    """The incremental reuses the parent's packs; prune removes the parent meanwhile. Claims
    keep the reused packs alive, so the new point is complete."""
    repo = tmp_path / "repo"
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(24 * MIB))
    backup(repo, "job", source, "full", compression="lz4")  # same codec as _cli_backup: reusable
    with open(source, "r+b") as image:  # change the second half: it is written, slowly
        image.seek(12 * MIB)
        image.write(os.urandom(12 * MIB))

    running = _cli_backup(repo, "job", source, "--mode", "incremental", "--rate-limit-mbps", "64")
    _wait_until_claiming(repo, running)
    assert len(prune(repo, "job", keep=0).removed_points) == 1
    stdout, stderr = running.communicate(timeout=60)
    assert running.returncode == 0, stderr

    (point,) = list_points(repo, "job")
    assert point.mode == "incremental"
    # Blocks whose pack was claimed before the prune are reused; the others are stored again.
    assert 12 * MIB < point.stored_size < 24 * MIB
    assert verify(repo, read_data=True).ok
    restore(repo, point.id, tmp_path / "out.img")
    assert sha256(tmp_path / "out.img") == sha256(source)


def test_prune_spares_a_point_being_restored(image, repo):
    ids = [backup(repo, "job", image, "full").point_id for _ in range(2)]
    operation = Operation(RepositoryDir.open(repo), "restore")
    try:
        assert operation.mark_restoring(ids[0])
        report = prune(repo, "job", keep=1)
        assert report.kept_in_use == [ids[0]] and report.removed_points == []
    finally:
        operation.close()
    assert prune(repo, "job", keep=1).removed_points == [ids[0]]
    assert verify(repo).ok


def test_prune_gives_up_with_repository_locked_after_its_timeout(image, repo):
    backup(repo, "job", image, "full")
    holder = RepositoryLock(RepositoryDir.open(repo).root)
    holder.exclusive()
    try:
        with pytest.raises(RepositoryLocked, match="Could not lock"):
            prune(repo, "job", keep=0, lock_timeout=0.3)
    finally:
        holder.release()
        holder.close()
    assert len(prune(repo, "job", keep=0).removed_points) == 1
