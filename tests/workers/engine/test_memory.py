"""Memory stays bounded: RSS does not grow with the size of the image."""

import os
import subprocess
import sys

from tests.workers.engine.helpers import MIB, ROOT

# Runs the command line and reports its own peak RSS (VmHWM). ru_maxrss of a child would also
# count the pytest process it was forked from, before exec.
_MEASURED = """
import atexit, runpy, sys
def report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK " + line.split()[1] + "\\n")
atexit.register(report)
sys.argv = ["workers.engine", *sys.argv[1:]]
runpy.run_module("workers.engine", run_name="__main__")
"""


def _peak_rss_mib(*args) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *map(str, args)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stderr.split("PEAK ")[1].split()[0]) / 1024


def test_rss_does_not_grow_with_the_image(tmp_path):
    peaks = {}
    for size in (8 * MIB, 96 * MIB):
        source = tmp_path / f"{size}.img"
        with open(source, "wb") as image:
            for _ in range(size // MIB):
                image.write(os.urandom(MIB // 2) + bytes(MIB // 2))
        repo = tmp_path / f"repo-{size}"
        backup_peak = _peak_rss_mib("backup", "--repo", repo, "--job", "j", "--source", source,
                                    "--compression", "lz4")  # fmt: skip
        point = next((repo / "points").iterdir()).name
        restore_peak = _peak_rss_mib("restore", "--repo", repo, "--point", point, "--target",
                                     tmp_path / "out.img")  # fmt: skip
        peaks[size] = max(backup_peak, restore_peak)
    assert peaks[96 * MIB] < 150
    assert peaks[96 * MIB] - peaks[8 * MIB] < 24  # 12x the data, about the same memory
