"""A restore writes only through the directory it was given: never through a symbolic link,
not even one swapped into the path while the restore runs (the agent's policy checked the
path just before; see app/services/restore_policy.py)."""

import os

import pytest

from tests.workers.engine.helpers import MIB, sha256, write_image
from workers.engine import EngineError, TargetError, backup, restore


@pytest.fixture
def point(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 3 * MIB, seed=5)
    return backup(repo, "job", source, "full").point_id, sha256(source)


@pytest.fixture
def directory_point(tmp_path, repo):
    source = tmp_path / "tree"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "cron").write_text("* * * * * root true\n")
    write_image(source / "data.img", 2 * MIB, seed=6)
    return backup(repo, "dir", source, "full").point_id


@pytest.fixture
def outside(tmp_path):
    """Stands for /etc: a directory the restore must never write into."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return directory


def test_a_symbolic_link_in_the_targets_directory_is_refused(tmp_path, repo, point, outside):
    (tmp_path / "restores").mkdir()
    (tmp_path / "restores" / "link").symlink_to(outside)

    with pytest.raises(TargetError, match="reached through a symbolic link"):
        restore(repo, point[0], tmp_path / "restores" / "link" / "passwd")

    assert sorted(os.listdir(outside)) == ["passwd"]
    assert (outside / "passwd").read_text() == "root:x:0:0::/root:/bin/sh\n"


def swap_for_a_link(directory, outside):
    """A progress callback that, once the restore is writing, moves `directory` away and puts
    a symbolic link to `outside` in its place."""
    swapped = []

    def progress(done, total, *_speed_read_written):
        if not swapped:
            os.rename(directory, f"{directory}.moved")
            os.symlink(outside, directory)
            swapped.append(True)

    return progress


def test_a_link_swapped_in_during_a_file_restore_is_not_followed(tmp_path, repo, point, outside):
    restores = tmp_path / "restores"
    restores.mkdir()

    restore(repo, point[0], restores / "passwd", progress=swap_for_a_link(restores, outside))

    # the file went into the directory the restore opened (now moved), not through the link
    assert sha256(tmp_path / "restores.moved" / "passwd") == point[1]
    assert sorted(os.listdir(outside)) == ["passwd"]
    assert (outside / "passwd").read_text() == "root:x:0:0::/root:/bin/sh\n"


def test_a_link_swapped_in_during_a_directory_restore_fails_it(
    tmp_path, repo, directory_point, outside
):
    restores = tmp_path / "restores"
    restores.mkdir()

    with pytest.raises(EngineError):  # its files are not found where it was writing them
        restore(
            repo, directory_point, restores / "tree", progress=swap_for_a_link(restores, outside)
        )

    assert sorted(os.listdir(outside)) == ["passwd"]
    assert [n for n in os.listdir(tmp_path / "restores.moved") if "zdm-restore" in n] == []
