"""The command line: `python -m workers.engine backup|restore|list|verify|prune|generate-key`.

Every failure exits non-zero with one sentence on stderr (no traceback); usage errors exit 2.
A progress bar is drawn only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys

import click

from workers.engine import api
from workers.engine.errors import EngineError
from workers.engine.keys import generate_master_key

PROG = "python -m workers.engine"


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


@contextlib.contextmanager
def _progress_bar(description: str):
    """A progress callback drawing a tqdm bar on a terminal, or None when stderr is not one."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    columns = shutil.get_terminal_size((100, 20)).columns  # a fresh pty may report 0 columns
    bar = tqdm(
        desc=description, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
        ncols=min(columns, 120),
    )  # fmt: skip

    def update(done: int, total: int, *_speed_read_written) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """ZDM backup engine: back up block devices and image files into a repository directory.

    Encrypted repositories need the master key in ZDM_MASTER_KEY (64 hex characters or base64
    of 32 bytes; make one with `generate-key`).
    """


@cli.command()
@click.option(
    "--repo", required=True, type=click.Path(), help="Repository directory (created if absent)."
)
@click.option("--job", required=True, help="Job name the point belongs to.")
@click.option("--source", required=True, type=click.Path(), help="Device or image file to back up.")
@click.option("--mode", type=click.Choice(api.MODES), default="full", show_default=True)
@click.option(
    "--compression", type=click.Choice(["gzip", "lz4", "none"]), default="none", show_default=True
)
@click.option(
    "--encryption", type=click.Choice(["aes256", "none"]), default="none", show_default=True
)
@click.option(
    "--rate-limit-mbps",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Megabits per second written to the repository; 0 = unlimited.",
)
@click.option("--exclude-dir", "exclude_dirs", multiple=True, help="Directory sources only.")
@click.option(
    "--distrust",
    multiple=True,
    metavar="OBJECT_ID",
    help="Object id (hex) found damaged by verify: store its block again instead of reusing it.",
)
def backup(
    repo, job, source, mode, compression, encryption, rate_limit_mbps, exclude_dirs, distrust
):
    """Create a recovery point; prints its digest, then its id as the last line."""
    with _progress_bar("backup") as bar:
        result = api.backup(
            repo, job, source, mode, compression=compression, encryption=encryption,
            rate_limit_mbps=rate_limit_mbps, exclude_dirs=exclude_dirs, progress=bar,
            distrust=distrust,
        )  # fmt: skip
    rate = result.bytes_read / max(result.duration_seconds, 1e-9)
    healed = f", {result.healed_blocks} distrusted blocks stored again" if distrust else ""
    click.echo(
        f"{result.mode} backup of {_human(result.source_size)} in {result.duration_seconds:.1f} s "
        f"({_human(rate)}/s): {_human(result.stored_size)} new data, "
        f"{result.zero_blocks} zero blocks, {result.reused_blocks} blocks already stored{healed}"
    )
    click.echo(f"digest {result.digest}")
    click.echo(result.point_id)


@cli.command()
@click.option("--repo", required=True, type=click.Path())
@click.option("--point", "point_id", required=True, help="Recovery point id (see `list`).")
@click.option(
    "--target", required=True, type=click.Path(), help="File (created/replaced) or device."
)
@click.option("--sync", is_flag=True, help="Flush a file target to disk before exiting.")
@click.option(
    "--digest",
    "expected_digest",
    metavar="HEX",
    help="The digest printed when the point was made: refuse a point file that differs.",
)
@click.option("--require-encrypted", is_flag=True, help="Refuse the point unless it is encrypted.")
def restore(repo, point_id, target, sync, expected_digest, require_encrypted):
    """Write a recovery point's data to a file or device."""
    with _progress_bar("restore") as bar:
        result = api.restore(
            repo, point_id, target, progress=bar, sync=sync, expected_digest=expected_digest,
            require_encrypted=require_encrypted,
        )  # fmt: skip
    click.echo(
        f"restored point {result.point_id} to {result.target} "
        f"({_human(result.bytes_restored)} in {result.duration_seconds:.1f} s)"
    )


@cli.command(name="list")
@click.option("--repo", required=True, type=click.Path())
@click.option("--job", default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
def list_command(repo, job, as_json):
    """List recovery points, oldest first."""
    points = api.list_points(repo, job)
    if as_json:
        click.echo(json.dumps([point.to_dict() for point in points], indent=2))
        return
    if not points:
        click.echo("no recovery points")
        return
    click.echo(
        f"{'ID':<24} {'JOB':<20} {'MODE':<11} {'CREATED':<24} {'SOURCE':>10} {'STORED':>10} OPTIONS"
    )
    for p in points:
        options = ",".join(filter(None, [p.compression, "aes256" if p.encrypted else None])) or "-"
        click.echo(
            f"{p.id:<24} {p.job:<20} {p.mode:<11} {p.created_at:<24} "
            f"{_human(p.source_size):>10} {_human(p.stored_size):>10} {options}"
        )


def _digests(_context, _parameter, values) -> dict[str, str]:
    expected = {}
    for value in values:
        point_id, sep, digest = value.partition("=")
        if not sep or not point_id or len(digest) != 64:
            raise click.BadParameter(f"{value!r} is not POINT=DIGEST (64 hex characters)")
        expected[point_id] = digest
    return expected


@cli.command()
@click.option("--repo", required=True, type=click.Path())
@click.option("--point", "point_id", default=None, help="Only this point (default: all).")
@click.option(
    "--read-data",
    type=click.FloatRange(0, 100),
    is_flag=False,
    flag_value=100.0,
    default=0.0,
    metavar="[PERCENT]",
    help="Read and decode every object (or PERCENT of them, at random), not just check it.",
)
@click.option(
    "--digest",
    "expected",
    multiple=True,
    metavar="POINT=HEX",
    callback=_digests,
    help="The digest recorded when POINT was made: report a point file that differs.",
)
def verify(repo, point_id, read_data, expected):
    """Check that points and the objects they need are present and intact."""
    report = api.verify(repo, point_id, read_data=read_data, expected=expected)
    for problem in report.problems:
        click.echo(problem)
    share = "" if not read_data else f" ({report.objects_read} read in full)"
    click.echo(
        f"checked {report.points_checked} points and {report.objects_checked} objects"
        f"{share}: {len(report.problems)} problems, "
        f"{report.unreferenced_packs} unreferenced packs (prune removes them)"
    )
    if not report.ok:
        raise EngineError(f"Verify found {len(report.problems)} problems in the repository.")


@cli.command()
@click.option("--repo", required=True, type=click.Path())
@click.option("--job", required=True)
@click.option("--keep", required=True, type=click.IntRange(min=0), help="Newest points to keep.")
def prune(repo, job, keep):
    """Keep the newest N points of a job and delete data nothing needs any more."""
    report = api.prune(repo, job, keep)
    for point_id in report.removed_points:
        click.echo(f"removed point {point_id}")
    for point_id in report.kept_in_use:
        click.echo(f"kept point {point_id}: it is being restored")
    for problem in report.problems:
        click.echo(problem)
    click.echo(
        f"kept {len(report.kept)} points; removed {len(report.removed_points)} points and "
        f"{report.removed_packs} packs ({_human(report.freed_bytes)})"
    )
    if report.problems:
        raise EngineError(
            "Prune removed the points listed but left garbage it could not judge (see above)."
        )


@cli.command(name="generate-key")
def generate_key():
    """Print a new random master key for ZDM_MASTER_KEY."""
    click.echo(generate_master_key())


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as error:
        message = error.format_message().rstrip(".")
        click.echo(f"{message} (see `{PROG} --help`).", err=True)
        return 2
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except EngineError as error:
        click.echo(str(error), err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted; nothing partial was left visible.", err=True)
        return 130
    except Exception as error:  # the promise: one sentence, never a traceback
        click.echo(f"Unexpected error: {type(error).__name__}: {error}.", err=True)
        return 1
