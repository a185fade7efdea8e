"""The restore policy's rules as plain functions, on real files in a temporary directory
(the API and a real agent apply them in tests/app/api/test_restores.py and
tests/end_to_end/test_restore_policy.py)."""

import os

import pytest

from app.services.restore_policy import (
    Destination,
    Place,
    RestoreRefused,
    ServedPartition,
    block_device_in_use,
    check_on_agent,
    check_request,
    database_files,
    mounted_sources,
    normalised_target,
    unsafe_directory,
)


@pytest.fixture
def root(tmp_path):
    directory = tmp_path / "restores"
    directory.mkdir(mode=0o755)
    return directory


def place(root, **facts) -> Place:
    return Place(roots=(str(root),), **facts)


def refusal(call) -> tuple[int, str]:
    with pytest.raises(RestoreRefused) as caught:
        call()
    return caught.value.status, caught.value.sentence()


@pytest.mark.parametrize(
    ("target", "normalised"),
    [("/a//b/./c/", "/a/b/c"), ("//a", "/a"), ("/", "/"), ("/한글/파일.img", "/한글/파일.img")],
)
def test_targets_are_normalised(target, normalised):
    assert normalised_target(target) == normalised


@pytest.mark.parametrize(
    ("target", "key"),
    [
        ("a/b", "path_not_absolute"),
        ("/a/../b", "path_has_dotdot"),
        ("/a/\x00", "path_control_characters"),
        ("/a\tb", "path_control_characters"),
        ("/" + "a" * 1024, "path_too_long"),
        ("/" + "a" * 256, "path_too_long"),
        ("/" + "é" * 128, "path_too_long"),  # 256 bytes in UTF-8
    ],
)
def test_badly_shaped_targets_are_422(target, key):
    with pytest.raises(RestoreRefused) as caught:
        normalised_target(target)
    assert (caught.value.status, caught.value.key) == (422, key)


def test_without_a_known_requester_only_new_paths_pass(root):
    facts = place(root, partitions=(ServedPartition("/dev/sda1", "/srv/sda1.img"),))

    assert check_request(f"{root}/x.img", False, None, facts) == Destination(f"{root}/x.img")
    assert refusal(lambda: check_request("/dev/sda1", True, None, facts)) == (
        403,
        "Only an admin may restore onto partition /dev/sda1 in place.",
    )
    assert check_request("/dev/sda1", True, "admin", facts) == Destination(
        "/srv/sda1.img", "/dev/sda1"
    )


def test_a_viewer_request_is_refused_on_the_agent_too(root):
    assert refusal(lambda: check_request(f"{root}/x", False, "viewer", place(root))) == (
        403,
        "Only an operator or admin may restore; the requester's role is viewer.",
    )


def test_a_root_reached_through_a_symbolic_link_works_and_the_real_path_is_written(tmp_path):
    real = tmp_path / "data" / "restores"
    real.mkdir(parents=True)
    (tmp_path / "restores").symlink_to(real)

    destination = check_on_agent(
        f"{tmp_path}/restores/sda1.img", False, "operator", place(tmp_path / "restores")
    )

    assert destination == Destination(f"{real}/sda1.img")


def test_an_existing_special_file_under_the_root_is_never_replaced(root):
    os.mkfifo(root / "pipe")

    assert refusal(lambda: check_on_agent(f"{root}/pipe", True, "admin", place(root))) == (
        422,
        f"Target {root}/pipe is not a regular file or directory (a device, for instance); under "
        "a restore root a restore replaces only regular files and directories.",
    )


def test_an_existing_file_is_replaced_only_with_overwrite(root):
    (root / "old.img").write_bytes(b"old")

    assert (
        refusal(lambda: check_on_agent(f"{root}/old.img", False, "operator", place(root)))[0] == 409
    )
    assert check_on_agent(f"{root}/old.img", True, "operator", place(root)) == Destination(
        f"{root}/old.img"
    )


def test_the_targets_directory_must_exist_on_the_agent(root):
    assert refusal(lambda: check_on_agent(f"{root}/no/x.img", False, "admin", place(root))) == (
        422,
        f"The directory of target {root}/no/x.img does not exist on the agent.",
    )


def test_a_symbolic_link_to_another_restores_target_is_refused(root):
    (root / "tree").mkdir()
    (root / "alias").symlink_to(root / "tree")
    facts = place(root, active_targets=(f"{root}/tree",))

    assert refusal(lambda: check_on_agent(f"{root}/alias/x", False, "admin", facts)) == (
        409,
        f"Target {root}/alias/x (which leads to {root}/tree/x) overlaps {root}/tree, the target "
        "of another restore in progress.",
    )


def test_a_link_into_a_repository_is_refused_by_the_repository_rule(root, tmp_path):
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "config").write_text("{}")
    (root / "cfg").symlink_to(repository / "config")
    facts = place(root, repositories=(str(repository),))

    assert refusal(lambda: check_on_agent(f"{root}/cfg", True, "admin", facts)) == (
        422,
        f"Target {root}/cfg (which leads to {repository}/config) overlaps repository "
        f"{repository}; a restore never writes into a repository.",
    )


def test_directories_others_can_change(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "x").mkdir(mode=0o755)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "mine").mkdir(mode=0o755)
    own_group = tmp_path / "own-group"
    own_group.mkdir()
    os.chown(own_group, -1, os.getegid())
    own_group.chmod(0o775)  # a user private group: only we are in it

    assert unsafe_directory(str(private)) is None
    assert unsafe_directory(str(shared)) == str(shared)
    assert unsafe_directory(str(shared / "x")) == str(shared)
    assert unsafe_directory(str(sticky)) is None  # like /tmp: our own entries cannot be moved
    assert unsafe_directory(str(sticky / "mine")) is None
    assert unsafe_directory(str(own_group)) is None


def test_the_mount_table_is_read_with_its_escapes(tmp_path):
    table = tmp_path / "mounts"
    table.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "/dev/disk/by-label/My\\040Disk /mnt/my\\040disk ext4 rw 0 0\n"
        "proc /proc proc rw 0 0\n"
    )

    assert mounted_sources(str(table)) == ["/dev/vda", "/dev/disk/by-label/My Disk", "proc"]
    assert mounted_sources(str(tmp_path / "missing")) == []


def test_a_file_is_never_a_device_in_use(tmp_path):
    image = tmp_path / "sda1.img"
    image.write_bytes(b"\0" * 4096)
    table = tmp_path / "mounts"
    table.write_text(f"{image} /mnt ext4 rw 0 0\n")

    assert block_device_in_use(str(image), str(table)) is False


@pytest.mark.parametrize(
    ("url", "files"),
    [
        ("sqlite:////var/zdm/zdm.sqlite3", ("/var/zdm/zdm.sqlite3", "/var/zdm/zdm.sqlite3-wal",
                                             "/var/zdm/zdm.sqlite3-shm", "/var/zdm/zdm.sqlite3-journal")),
        ("sqlite://", ()),
        ("sqlite:///:memory:", ()),
        ("postgresql://zdm@127.0.0.1/zdm", ()),
    ],
)  # fmt: skip
def test_the_database_files(url, files):
    assert database_files(url) == files
