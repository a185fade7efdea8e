"""The command line: point id as the last line, JSON listing, exit codes, one-sentence errors."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from tests.workers.engine.helpers import ROOT, run_engine, sha256


def _one_sentence(stderr: str) -> bool:
    return stderr.count("\n") == 1 and stderr.strip().endswith(".") and "Traceback" not in stderr


def test_backup_list_restore_verify_prune(image, repo, tmp_path):
    ids = []
    for mode in ("full", "incremental", "incremental"):
        done = run_engine("backup", "--repo", repo, "--job", "web-01 sda1", "--source", image,
                          "--mode", mode, "--compression", "gzip")  # fmt: skip
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip().splitlines()[-1])

    listed = run_engine("list", "--repo", repo, "--job", "web-01 sda1", "--json")
    points = json.loads(listed.stdout)
    assert [p["id"] for p in points] == ids
    assert [p["mode"] for p in points] == ["full", "incremental", "incremental"]
    assert points[0]["source_size"] == image.stat().st_size and points[0]["compression"] == "gzip"
    assert ids[0] in run_engine("list", "--repo", repo).stdout

    assert run_engine("restore", "--repo", repo, "--point", ids[1], "--target",
                      tmp_path / "out.img").returncode == 0  # fmt: skip
    assert sha256(tmp_path / "out.img") == sha256(image)
    assert run_engine("verify", "--repo", repo, "--read-data").returncode == 0

    pruned = run_engine("prune", "--repo", repo, "--job", "web-01 sda1", "--keep", "1")
    assert pruned.returncode == 0
    remaining = json.loads(run_engine("list", "--repo", repo, "--json").stdout)
    assert [p["id"] for p in remaining] == ids[2:]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["list", "--repo", "{tmp}/nowhere"], "not a ZDM repository"),
        (["restore", "--repo", "{repo}", "--point", "20260101T000000Z-abcdef", "--target",
          "{tmp}/o"], "does not exist"),
        (["restore", "--repo", "{repo}", "--point", "../../etc", "--target", "{tmp}/o"],
         "does not exist"),
        (["backup", "--repo", "{repo}", "--job", "j", "--source", "{tmp}/missing.img"],
         "Cannot read source"),
        (["backup", "--repo", "{repo}", "--job", "j", "--source", "{tmp}", "--exclude-dir", "var"],
         "absolute path"),
        (["backup", "--repo", "{repo}", "--job", "j", "--source", "{image}", "--exclude-dir",
          "/var"], "directory sources"),
        (["restore", "--repo", "{repo}", "--point", "{point}", "--target", "{tmp}"],
         "is a directory"),
        (["restore", "--repo", "{repo}", "--point", "{point}", "--target", "{tmp}/no/dir/o"],
         "does not exist"),
        (["verify", "--repo", "{repo}", "--point", "20260101T000000Z-abcdef"], "does not exist"),
        (["backup", "--repo", "{tmp}", "--job", "j", "--source", "{image}"], "not empty"),
    ],
)  # fmt: skip
def test_failures_exit_1_with_one_sentence(image, repo, tmp_path, args, fragment):
    point = run_engine("backup", "--repo", repo, "--job", "j", "--source", image).stdout.split()[-1]
    values = {"tmp": tmp_path, "repo": repo, "image": image, "point": point}
    done = run_engine(*[arg.format(**values) for arg in args])
    assert done.returncode == 1
    assert _one_sentence(done.stderr), done.stderr
    assert fragment in done.stderr


def test_usage_errors_exit_2_with_one_sentence(repo, image):
    for args in (["backup", "--repo", repo], ["backup", "--repo", repo, "--job", "j", "--source",
                 image, "--mode", "differential"], ["nonsense"]):  # fmt: skip
        done = run_engine(*args)
        assert done.returncode == 2
        assert _one_sentence(done.stderr), done.stderr


def test_verify_exit_code_reports_problems(image, repo):
    run_engine("backup", "--repo", repo, "--job", "j", "--source", image)
    next((repo / "packs").rglob("*/*")).unlink()
    done = run_engine("verify", "--repo", repo)
    assert done.returncode == 1 and "missing" in done.stdout
    assert _one_sentence(done.stderr) and "problems" in done.stderr


def test_help_works_and_engine_imports_neither_flask_nor_celery():
    assert run_engine("--help").returncode == 0
    assert "restore" in run_engine("--help").stdout
    code = (
        "import sys, workers.engine, workers.engine.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'celery', 'app')]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_progress_bar_only_on_a_terminal(image, repo):
    quiet = run_engine("backup", "--repo", repo, "--job", "j", "--source", image)
    assert quiet.returncode == 0 and quiet.stderr == ""

    pid, fd = pty.fork()
    if pid == 0:  # the child: a 40x120 terminal on stdin, stdout and stderr
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.chdir(ROOT)
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "workers.engine", "backup", "--repo",
                                  str(repo), "--job", "j", "--source", str(image)])  # fmt: skip
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = output.decode()
    assert "backup: 100%|" in text and "/s]" in text  # bytes, percent and speed
