"""Benchmark of the backup engine against borg and restic (not a test; run it by hand).

    python bench/engine.py [--size-mib 512] [--out bench/out] [--markdown]

Builds a disk image from real files (a tar of /usr/lib and /usr/share, cut to 7/8 of the size,
then a zero-filled tail), keeps it in the page cache, and times in one run:
full backup (lz4), incremental after 64 scattered 64 KiB writes, restore, and a gzip full
against single-threaded stdlib zlib level 6 on the same data. borg and restic come from
Debian's packages: installed with apt-get when missing and running as root, otherwise skipped
with a line saying so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BORG_ENV = {
    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
    "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
    "BORG_PASSPHRASE": "",
}
RESTIC_PASSWORD = "bench-password"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_tool(command: str, package: str) -> bool:
    if shutil.which(command):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log(f"SKIP {command}: not installed and cannot install {package} (not root or no apt-get).")
        return False
    log(f"installing {package} with apt-get ...")
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            log(f"SKIP {command}: `{' '.join(args)}` failed: {done.stderr.strip()[-300:]}")
            return False
    return bool(shutil.which(command))


def build_image(path: Path, size: int) -> None:
    data_size = size * 7 // 8
    log(f"building {size // MIB} MiB image at {path} (tar of /usr/lib /usr/share + zero tail)")
    with open(path, "wb") as out:
        tar = subprocess.Popen(
            ["tar", "cf", "-", "--ignore-failed-read", "/usr/lib", "/usr/share"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        remaining = data_size
        while remaining:
            chunk = tar.stdout.read(min(MIB, remaining))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
        tar.kill()
        tar.wait()
        out.truncate(size)  # pads with zeros (the zero-filled tail)


def scatter_writes(path: Path, count: int = 64, size: int = 64 * 1024, seed: int = 7) -> None:
    rng = random.Random(seed)
    total = path.stat().st_size
    with open(path, "r+b") as image:
        for _ in range(count):
            offset = rng.randrange(0, (total - size) // 4096) * 4096
            image.seek(offset)
            image.write(rng.randbytes(size))


def page_cache(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as image:
        while chunk := image.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def run_measured(args, env=None, cwd=None) -> tuple[float, int, str]:
    """Like run(), but with the peak RSS of the child (via wait4)."""
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
        cwd=cwd,
    )  # fmt: skip
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {err.decode()[-500:]}")
    return seconds, usage.ru_maxrss, out.decode()


def zlib_baseline(path: Path) -> float:
    """Seconds for single-threaded stdlib zlib level 6 (gzip wrapper) over the whole image."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    start = time.perf_counter()
    with open(path, "rb") as image:
        while chunk := image.read(MIB):
            compressor.compress(chunk)
    compressor.flush()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--markdown", action="store_true", help="Also print a Markdown table.")
    options = parser.parse_args()
    out = options.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    size = options.size_mib * MIB
    image = out / "image.img"
    build_image(image, size)
    have_borg = ensure_tool("borg", "borgbackup")
    have_restic = ensure_tool("restic", "restic")
    engine = [sys.executable, "-m", "workers.engine"]
    engine_env = {"PYTHONPATH": str(ROOT)}
    borg_env = {**BORG_ENV, "BORG_BASE_DIR": str(out / "borg-home")}
    restic_env = {"RESTIC_PASSWORD": RESTIC_PASSWORD, "RESTIC_CACHE_DIR": str(out / "restic-cache")}
    results: dict[str, dict] = {}
    versions = {"python": sys.version.split()[0]}

    def record(name: str, seconds: float, rss: int = 0, **extra) -> None:
        results[name] = {"seconds": seconds, "mib_per_s": size / MIB / seconds, "rss_kib": rss}
        results[name].update(extra)
        log(
            f"{name:<28} {seconds:7.2f} s  {size / MIB / seconds:8.1f} MiB/s  rss {rss // 1024} MiB"
        )

    # --- full backups -------------------------------------------------------------------
    original_sha = page_cache(image)
    repo = out / "ours-lz4"
    seconds, rss, text = run_measured(
        engine + ["backup", "--repo", repo, "--job", "bench", "--source", image, "--mode", "full",
                  "--compression", "lz4"], engine_env, ROOT,
    )  # fmt: skip
    record("ours full lz4", seconds, rss, stored=tree_size(repo))
    if have_borg:
        versions["borg"] = subprocess.run(
            ["borg", "--version"], capture_output=True, text=True
        ).stdout.strip()
        borg_repo = out / "borg"
        run_measured(["borg", "init", "-e", "none", str(borg_repo)], borg_env)
        page_cache(image)
        seconds, rss, _ = run_measured(
            ["borg", "create", "--compression", "lz4", "--chunker-params", "fixed,4194304",
             f"{borg_repo}::full", str(image)], borg_env, out,
        )  # fmt: skip
        record("borg full lz4", seconds, rss, stored=tree_size(borg_repo))
    if have_restic:
        versions["restic"] = subprocess.run(
            ["restic", "version"], capture_output=True, text=True
        ).stdout.strip()
        restic_repo = out / "restic"
        run_measured(["restic", "init", "-q", "-r", str(restic_repo)], restic_env)
        page_cache(image)
        seconds, rss, _ = run_measured(
            ["restic", "-q", "-r", str(restic_repo), "backup", str(image)], restic_env, out
        )
        record("restic full", seconds, rss, stored=tree_size(restic_repo))

    # --- incremental after 64 scattered 64 KiB writes -----------------------------------------
    scatter_writes(image)
    changed_sha = page_cache(image)
    before = tree_size(repo)
    seconds, rss, text = run_measured(
        engine + ["backup", "--repo", repo, "--job", "bench", "--source", image, "--mode",
                  "incremental", "--compression", "lz4"], engine_env, ROOT,
    )  # fmt: skip
    point = text.strip().splitlines()[-1]
    record("ours incremental lz4", seconds, rss, added=tree_size(repo) - before)
    if have_borg:
        before_borg = tree_size(borg_repo)
        page_cache(image)
        seconds, rss, _ = run_measured(
            ["borg", "create", "--compression", "lz4", "--chunker-params", "fixed,4194304",
             f"{borg_repo}::incr", str(image)], borg_env, out,
        )  # fmt: skip
        record("borg incremental lz4", seconds, rss, added=tree_size(borg_repo) - before_borg)
    if have_restic:
        before_restic = tree_size(restic_repo)
        page_cache(image)
        seconds, rss, _ = run_measured(
            ["restic", "-q", "-r", str(restic_repo), "backup", str(image)], restic_env, out
        )
        record("restic incremental", seconds, rss, added=tree_size(restic_repo) - before_restic)

    # --- restores ------------------------------------------------------------------------
    target = out / "restored-ours.img"
    seconds, rss, _ = run_measured(
        engine + ["restore", "--repo", repo, "--point", point, "--target", target], engine_env, ROOT
    )
    record("ours restore", seconds, rss, identical=page_cache(target) == changed_sha)
    target.unlink()
    if have_borg:
        borg_target = out / "borg-restore"
        borg_target.mkdir()
        seconds, rss, _ = run_measured(
            ["borg", "extract", f"{borg_repo}::incr"], borg_env, borg_target
        )
        restored = borg_target / str(image).lstrip("/")
        record("borg restore", seconds, rss, identical=page_cache(restored) == changed_sha)
        shutil.rmtree(borg_target)
    if have_restic:
        restic_target = out / "restic-restore"
        seconds, rss, _ = run_measured(
            ["restic", "-q", "-r", str(restic_repo), "restore", "latest", "--target",
             str(restic_target)], restic_env, out,
        )  # fmt: skip
        restored = restic_target / str(image).lstrip("/")
        record("restic restore", seconds, rss, identical=page_cache(restored) == changed_sha)
        shutil.rmtree(restic_target)

    # --- gzip -----------------------------------------------------------------------------
    page_cache(image)
    record("stdlib zlib level 6 (1 thread)", zlib_baseline(image))
    gzip_repo = out / "ours-gzip"
    seconds, rss, _ = run_measured(
        engine + ["backup", "--repo", gzip_repo, "--job", "bench", "--source", image, "--mode",
                  "full", "--compression", "gzip"], engine_env, ROOT,
    )  # fmt: skip
    record("ours full gzip", seconds, rss, stored=tree_size(gzip_repo))

    # --- summary ---------------------------------------------------------------------------
    def ratio(ours: str, theirs: str) -> float | None:
        if ours in results and theirs in results:
            return results[theirs]["seconds"] / results[ours]["seconds"]
        return None

    targets = [
        ("full lz4 vs borg", ratio("ours full lz4", "borg full lz4"), 1.5),
        ("incremental vs borg", ratio("ours incremental lz4", "borg incremental lz4"), 2.0),
        ("restore vs borg", ratio("ours restore", "borg restore"), 2.0),
        ("gzip full vs zlib-6", ratio("ours full gzip", "stdlib zlib level 6 (1 thread)"), 5.0),
    ]
    print(
        f"image: {size // MIB} MiB from /usr/lib + /usr/share with a {size // 8 // MIB} MiB zero tail"
    )
    print(f"versions: {versions}")
    print(f"{'run':<32} {'seconds':>8} {'MiB/s':>8} {'peak RSS':>9}  notes")
    for name, row in results.items():
        notes = []
        if "stored" in row:
            notes.append(f"repository {row['stored'] / MIB:.1f} MiB")
        if "added" in row:
            notes.append(f"added {row['added'] / MIB:.2f} MiB")
        if "identical" in row:
            notes.append("byte-identical" if row["identical"] else "NOT IDENTICAL")
        rss = f"{row['rss_kib'] // 1024} MiB" if row["rss_kib"] else "-"
        print(
            f"{name:<32} {row['seconds']:8.2f} {row['mib_per_s']:8.1f} {rss:>9}  {', '.join(notes)}"
        )
    print()
    for name, value, goal in targets:
        if value is None:
            print(f"{name:<24} skipped (tool not available)")
        else:
            verdict = "met" if value >= goal else "NOT MET"
            print(f"{name:<24} {value:5.2f}x (target {goal}x: {verdict})")
    if "ours incremental lz4" in results and "restic incremental" in results:
        ours, theirs = (
            results["ours incremental lz4"]["added"],
            results["restic incremental"]["added"],
        )
        verdict = "met" if ours <= theirs else "NOT MET"
        print(
            f"{'incremental added bytes':<24} ours {ours / MIB:.2f} MiB vs restic {theirs / MIB:.2f} MiB ({verdict})"
        )
    (out / "results.json").write_text(
        json.dumps({"results": results, "versions": versions}, indent=1)
    )
    failed = [name for name, row in results.items() if row.get("identical") is False]
    if failed:
        print(f"restores not byte-identical: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
