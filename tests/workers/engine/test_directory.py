"""Directory sources: contents and metadata restored identically, excludeDir honoured, unchanged
files skipped by incrementals, and rotation keeping what later points need."""

import hashlib
import os
import stat

import pytest

from tests.workers.engine.helpers import MIB, all_packs
from workers.engine import (
    BackupCanceled,
    DataCorrupted,
    TargetError,
    backup,
    list_points,
    prune,
    restore,
    verify,
)


def make_tree(root):
    """A small tree with every kind of entry the engine keeps."""
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "var" / "cache" / "big").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "conf.d" / "app.conf").write_text("key = value\n" * 1000)
    (root / "data" / "random.bin").write_bytes(os.urandom(MIB + 12345))
    with open(root / "data" / "sparse.img", "wb") as sparse:
        sparse.write(b"head")
        sparse.truncate(3 * MIB)
    (root / "data" / "empty").touch()
    (root / "var" / "cache" / "big" / "junk").write_bytes(os.urandom(4096))
    (root / "data" / "link-to-hosts").symlink_to("../etc/hosts")
    (root / "data" / "dangling").symlink_to("/nonexistent/target")
    os.mkfifo(root / "data" / "pipe")
    with open(os.path.join(os.fsencode(root / "data"), b"caf\xe9-latin1"), "wb") as odd:
        odd.write(b"not utf-8 name")
    os.chmod(root / "etc" / "hosts", 0o600)
    os.chmod(root / "etc" / "conf.d", 0o750)
    os.utime(root / "etc" / "hosts", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    os.utime(root / "etc", ns=(1_600_000_000_000_000_000, 1_400_000_000_000_000_000))
    return root


def snapshot(root) -> dict:
    """Everything a restore must reproduce: type, mode, owner, mtime, content or link target."""
    result = {}
    root = os.fsencode(root)
    for directory, dirnames, filenames in os.walk(root):
        for name in [b".", *dirnames, *filenames]:
            path = os.path.normpath(os.path.join(directory, name))
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            else:
                content = None
            mtime = None if stat.S_ISLNK(info.st_mode) else info.st_mtime_ns
            result[os.path.relpath(path, root)] = (
                stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                mtime, info.st_size if not stat.S_ISDIR(info.st_mode) else None, content,
            )  # fmt: skip
    return result


@pytest.mark.parametrize(
    ("compression", "encryption"), [(None, None), ("lz4", None), ("gzip", "aes256")]
)
def test_directory_round_trip_keeps_contents_and_metadata(
    tmp_path, repo, master_key, compression, encryption
):
    source = make_tree(tmp_path / "src")
    expected = snapshot(source)
    result = backup(repo, "dir", source, "full", compression=compression, encryption=encryption)
    assert result.mode == "full" and list_points(repo)[0].kind == "directory"

    target = tmp_path / "restored"
    restore(repo, result.point_id, target)
    assert snapshot(target) == expected
    assert (target / "data" / "sparse.img").stat().st_blocks * 512 < MIB  # holes stay holes
    assert verify(repo, read_data=True).ok


def test_exclude_dir_and_the_repository_itself_are_left_out(tmp_path):
    source = make_tree(tmp_path / "src")
    repo = source / "backups" / "repo"  # a repository inside the source
    result = backup(repo, "dir", source, "full", exclude_dirs=[str(source / "var" / "cache")])
    restore(repo, result.point_id, tmp_path / "out")
    assert (tmp_path / "out" / "var").is_dir()
    assert not (tmp_path / "out" / "var" / "cache").exists()
    assert not (tmp_path / "out" / "backups" / "repo").exists()
    assert (tmp_path / "out" / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_incremental_reads_only_changed_files(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    first = backup(repo, "dir", source, "incremental")
    before = snapshot(source)
    with open(source / "etc" / "hosts", "a") as hosts:
        hosts.write("10.0.0.1 db\n")
    (source / "data" / "new.txt").write_text("new file\n")
    os.unlink(source / "etc" / "conf.d" / "app.conf")
    second = backup(repo, "dir", source, "incremental")

    assert first.mode == "full" and second.mode == "incremental"
    changed_bytes = (source / "etc" / "hosts").stat().st_size + len("new file\n")
    assert second.bytes_read == changed_bytes  # the 1 MiB and 3 MiB files were not read
    assert first.bytes_read > MIB
    for point, expected in ((first.point_id, before), (second.point_id, snapshot(source))):
        restore(repo, point, tmp_path / point)
        assert snapshot(tmp_path / point) == expected


def test_rotation_deleting_the_full_keeps_files_later_points_reuse(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    states = {}
    for round_number in range(4):
        (source / "etc" / "round").write_text(str(round_number))
        result = backup(repo, "dir", source, "incremental", compression="lz4")
        states[result.point_id] = snapshot(source)
        prune(repo, "dir", keep=2)

    points = list_points(repo, "dir")
    assert [p.mode for p in points] == ["incremental", "incremental"]
    assert verify(repo, read_data=True).ok
    for point in points:  # random.bin was stored by the deleted full and reused since
        restore(repo, point.id, tmp_path / point.id)
        assert snapshot(tmp_path / point.id) == states[point.id]


def test_missing_file_data_is_found_and_stops_restore(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    result = backup(repo, "dir", source, "full")
    biggest = max(all_packs(repo), key=lambda p: p.stat().st_size)
    biggest.unlink()

    report = verify(repo)
    assert not report.ok and any(biggest.name in problem for problem in report.problems)
    with pytest.raises(DataCorrupted) as error:
        restore(repo, result.point_id, tmp_path / "out")
    assert biggest.name in str(error.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not [p for p in tmp_path.iterdir() if "zdm-restore" in p.name]


def test_directory_restore_refuses_a_non_empty_target(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    result = backup(repo, "dir", source, "full")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("keep me")
    with pytest.raises(TargetError, match="not empty"):
        restore(repo, result.point_id, tmp_path / "busy")
    assert (tmp_path / "busy" / "file").read_text() == "keep me"


def test_canceled_directory_backup_leaves_no_point(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    with pytest.raises(BackupCanceled):
        backup(repo, "dir", source, "full", should_cancel=lambda: True)
    assert list_points(repo) == [] and not any((repo / "tmp").iterdir())


def test_incremental_with_a_damaged_parent_tree_is_a_full(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    first = backup(repo, "dir", source, "full")
    tree_pack = (repo / "points" / first.point_id).read_bytes()[16 + 32 : 16 + 48].hex()
    next((repo / "packs").rglob(tree_pack)).unlink()

    second = backup(repo, "dir", source, "incremental")
    assert second.mode == "full" and second.parent is None
    restore(repo, second.point_id, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(source)


def test_source_given_as_a_symlink_to_a_directory(tmp_path, repo):
    source = make_tree(tmp_path / "src")
    (tmp_path / "alias").symlink_to(source)
    result = backup(repo, "dir", tmp_path / "alias", "full")
    restore(repo, result.point_id, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(source)
