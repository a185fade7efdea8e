"""Benchmark of the backup engine against borg and restic (not a test; run it by hand).

    python bench/engine.py [--size-mib 512] [--rounds 3] [--out bench/out]

Builds a disk image from real files (a tar of /usr/lib and /usr/share, cut to 7/8 of the size,
then a zero-filled tail), keeps it in the page cache, and times in one run:
full backup (lz4), incremental after 64 scattered 64 KiB writes, restore, and a gzip full
against single-threaded stdlib zlib level 6 on the same data. Each round starts from a fresh
copy of the image and fresh repositories; the table shows the median round. borg and restic
come from Debian's packages: installed with apt-get when missing and running as root,
otherwise skipped with a line saying so.
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


def one_round(out: Path, pristine: Path, size: int, tools: dict) -> dict[str, dict]:
    """Every timed run once, on a fresh copy of the image and fresh repositories."""
    out.mkdir(parents=True)
    image = out / "image.img"
    shutil.copyfile(pristine, image)
    engine = [sys.executable, "-m", "workers.engine"]
    engine_env = {"PYTHONPATH": str(ROOT)}
    borg_env = {**BORG_ENV, "BORG_BASE_DIR": str(out / "borg-home")}
    restic_env = {"RESTIC_PASSWORD": RESTIC_PASSWORD, "RESTIC_CACHE_DIR": str(out / "restic-cache")}
    borg_create = ["borg", "create", "--compression", "lz4", "--chunker-params", "fixed,4194304"]
    results: dict[str, dict] = {}

    def timed(name: str, args: list, env: dict, cwd: Path, **extra) -> str:
        page_cache(image)
        seconds, rss, stdout = run_measured([str(a) for a in args], env, cwd)
        results[name] = {"seconds": seconds, "rss_kib": rss, **extra}
        log(f"  {name:<26} {seconds:6.2f} s  {size / MIB / seconds:7.1f} MiB/s")
        return stdout

    def ours_backup(repo: Path, mode: str, compression: str) -> str:
        args = ["backup", "--repo", repo, "--job", "bench", "--source", image, "--mode", mode]
        return engine + args + ["--compression", compression]

    # full backups
    repo = out / "ours-lz4"
    timed("ours full lz4", ours_backup(repo, "full", "lz4"), engine_env, ROOT)
    results["ours full lz4"]["stored"] = tree_size(repo)
    if tools["borg"]:
        borg_repo = out / "borg"
        run_measured(["borg", "init", "-e", "none", str(borg_repo)], borg_env)
        timed("borg full lz4", borg_create + [f"{borg_repo}::full", image], borg_env, out)
        results["borg full lz4"]["stored"] = tree_size(borg_repo)
    if tools["restic"]:
        restic_repo = out / "restic"
        run_measured(["restic", "init", "-q", "-r", str(restic_repo)], restic_env)
        timed("restic full", ["restic", "-q", "-r", restic_repo, "backup", image], restic_env, out)
        results["restic full"]["stored"] = tree_size(restic_repo)

    # incremental after 64 scattered 64 KiB writes
    scatter_writes(image)
    changed_sha = page_cache(image)
    before = tree_size(repo)
    stdout = timed(
        "ours incremental lz4", ours_backup(repo, "incremental", "lz4"), engine_env, ROOT
    )
    point = stdout.strip().splitlines()[-1]
    results["ours incremental lz4"]["added"] = tree_size(repo) - before
    if tools["borg"]:
        before = tree_size(borg_repo)
        timed("borg incremental lz4", borg_create + [f"{borg_repo}::incr", image], borg_env, out)
        results["borg incremental lz4"]["added"] = tree_size(borg_repo) - before
    if tools["restic"]:
        before = tree_size(restic_repo)
        timed("restic incremental", ["restic", "-q", "-r", restic_repo, "backup", image],
              restic_env, out)  # fmt: skip
        results["restic incremental"]["added"] = tree_size(restic_repo) - before

    # restores of the incremental point
    target = out / "restored-ours.img"
    timed("ours restore", engine + ["restore", "--repo", repo, "--point", point, "--target",
          target], engine_env, ROOT)  # fmt: skip
    results["ours restore"]["identical"] = page_cache(target) == changed_sha
    target.unlink()
    if tools["borg"]:
        borg_target = out / "borg-restore"
        borg_target.mkdir()
        timed("borg restore", ["borg", "extract", f"{borg_repo}::incr"], borg_env, borg_target)
        restored = borg_target / str(image).lstrip("/")
        results["borg restore"]["identical"] = page_cache(restored) == changed_sha
        shutil.rmtree(borg_target)
    if tools["restic"]:
        restic_target = out / "restic-restore"
        timed("restic restore", ["restic", "-q", "-r", restic_repo, "restore", "latest",
              "--target", restic_target], restic_env, out)  # fmt: skip
        restored = restic_target / str(image).lstrip("/")
        results["restic restore"]["identical"] = page_cache(restored) == changed_sha
        shutil.rmtree(restic_target)

    # gzip full
    gzip_repo = out / "ours-gzip"
    timed("ours full gzip", ours_backup(gzip_repo, "full", "gzip"), engine_env, ROOT)
    results["ours full gzip"]["stored"] = tree_size(gzip_repo)
    shutil.rmtree(out)  # keep the disk (and its discard work) quiet for the next round
    subprocess.run(["sync"], check=True)
    return results


def median_results(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    merged = {}
    for name in rounds[0]:
        rows = sorted((r[name] for r in rounds), key=lambda row: row["seconds"])
        row = dict(rows[len(rows) // 2])
        row["all_seconds"] = [r[name]["seconds"] for r in rounds]
        row["rss_kib"] = max(r[name]["rss_kib"] for r in rounds)
        if "identical" in row:
            row["identical"] = all(r[name]["identical"] for r in rounds)
        merged[name] = row
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="Report the median of this many.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    options = parser.parse_args()
    out = options.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    size = options.size_mib * MIB
    pristine = out / "pristine.img"
    build_image(pristine, size)
    tools = {"borg": ensure_tool("borg", "borgbackup"), "restic": ensure_tool("restic", "restic")}
    versions = {"python": sys.version.split()[0]}
    for tool, command in (("borg", ["borg", "--version"]), ("restic", ["restic", "version"])):
        if tools[tool]:
            versions[tool] = subprocess.run(command, capture_output=True, text=True).stdout.strip()

    rounds = []
    for number in range(options.rounds):
        log(f"round {number + 1} of {options.rounds}")
        rounds.append(one_round(out / f"round-{number + 1}", pristine, size, tools))
    results = median_results(rounds)
    page_cache(pristine)
    seconds = zlib_baseline(pristine)
    results["stdlib zlib level 6, 1 thread"] = {"seconds": seconds, "rss_kib": 0}
    log(f"  stdlib zlib level 6          {seconds:6.2f} s")
    for row in results.values():
        row["mib_per_s"] = size / MIB / row["seconds"]

    def ratio(ours: str, theirs: str) -> float | None:
        if ours in results and theirs in results:
            return results[theirs]["seconds"] / results[ours]["seconds"]
        return None

    targets = [
        ("full lz4 vs borg", ratio("ours full lz4", "borg full lz4"), 1.5),
        ("incremental vs borg", ratio("ours incremental lz4", "borg incremental lz4"), 2.0),
        ("restore vs borg", ratio("ours restore", "borg restore"), 2.0),
        ("gzip full vs zlib-6", ratio("ours full gzip", "stdlib zlib level 6, 1 thread"), 5.0),
    ]
    print(
        f"image: {size // MIB} MiB, tar of /usr/lib + /usr/share, {size // 8 // MIB} MiB zero tail"
    )
    print(f"versions: {versions}; cpus: {os.cpu_count()}; median of {options.rounds} rounds")
    print()
    print("| run | seconds (median) | all rounds | MiB/s | peak RSS | notes |")
    print("|---|---:|---|---:|---:|---|")
    for name, row in results.items():
        notes = []
        if "stored" in row:
            notes.append(f"repository {row['stored'] / MIB:.1f} MiB")
        if "added" in row:
            notes.append(f"added {row['added'] / MIB:.2f} MiB")
        if "identical" in row:
            notes.append("byte-identical" if row["identical"] else "NOT IDENTICAL")
        rss = f"{row['rss_kib'] // 1024} MiB" if row["rss_kib"] else "-"
        every = " / ".join(f"{s:.2f}" for s in row.get("all_seconds", [row["seconds"]]))
        print(
            f"| {name} | {row['seconds']:.2f} | {every} | {row['mib_per_s']:.0f} | {rss} "
            f"| {', '.join(notes)} |"
        )
    print()
    print("| target | measured | goal | verdict |")
    print("|---|---:|---:|---|")
    for name, value, goal in targets:
        if value is None:
            print(f"| {name} | skipped (tool not available) | {goal}x | - |")
        else:
            verdict = "met" if value >= goal else "NOT MET"
            print(f"| {name} | {value:.2f}x | {goal}x | {verdict} |")
    if "ours incremental lz4" in results and "restic incremental" in results:
        ours = results["ours incremental lz4"]["added"]
        theirs = results["restic incremental"]["added"]
        verdict = "met" if ours <= theirs else "NOT MET"
        print(
            f"| incremental bytes added vs restic | {ours / MIB:.2f} MiB | "
            f"<= {theirs / MIB:.2f} MiB | {verdict} |"
        )
    report = {"results": results, "versions": versions, "rounds": rounds}
    (out / "results.json").write_text(json.dumps(report, indent=1))
    failed = [name for name, row in results.items() if row.get("identical") is False]
    if failed:
        print(f"restores not byte-identical: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
