"""Memory stays bounded: RSS does not grow with the size of the image."""

import os
import subprocess
import sys

from tests.engine.helpers import MIB, ROOT


def _peak_rss_mib(*args) -> float:
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.engine", *map(str, args)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read()
    return usage.ru_maxrss / 1024


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
