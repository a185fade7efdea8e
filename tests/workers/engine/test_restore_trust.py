"""A point is trusted only as the point that was made: its digest is recorded, a replaced or
forged point file is refused, and an encrypted job's point must be encrypted."""

import re

import pytest

from tests.workers.engine.helpers import (
    forge_plain_point,
    rewrite_point,
    run_engine,
    sha256,
    write_image,
)
from workers.engine import DataCorrupted, backup, restore, verify

REPLACED = "does not match the digest recorded when it was made (replaced or tampered)"


@pytest.fixture
def encrypted_point(image, repo, master_key):
    return backup(repo, "job", image, "full", compression="lz4", encryption="aes256")


@pytest.fixture
def attacker_image(tmp_path):
    return write_image(tmp_path / "attacker.img", 2 * 1024 * 1024, seed=66)


def test_the_digest_is_the_point_files_checksum(encrypted_point, repo):
    point_file = repo / "points" / encrypted_point.point_id
    assert encrypted_point.digest == point_file.read_bytes()[-32:].hex()


def test_a_plain_point_put_in_place_of_an_encrypted_one_is_refused(
    encrypted_point, repo, attacker_image, tmp_path
):
    victim = encrypted_point.point_id
    forge_plain_point(repo, victim, attacker_image)
    # The forgery is consistent in itself: the file alone cannot tell.
    assert verify(repo, read_data=True).ok

    report = verify(repo, read_data=True, expected={victim: encrypted_point.digest})
    assert report.unreadable_points == [victim]
    assert report.problems == [f"Recovery point {victim} {REPLACED}."]

    target = tmp_path / "restored.img"
    with pytest.raises(DataCorrupted, match=re.escape(REPLACED)):
        restore(repo, victim, target, expected_digest=encrypted_point.digest)
    with pytest.raises(DataCorrupted, match=f"Recovery point {victim} must be encrypted"):
        restore(repo, victim, target, require_encrypted=True)  # a point with no digest recorded
    assert not target.exists()


def test_the_command_line_refuses_a_forged_point(encrypted_point, repo, attacker_image, tmp_path):
    victim, digest = encrypted_point.point_id, encrypted_point.digest
    forge_plain_point(repo, victim, attacker_image)
    target = tmp_path / "restored.img"

    refused = run_engine("restore", "--repo", repo, "--point", victim, "--target", target,
                         "--digest", digest)  # fmt: skip
    assert refused.returncode == 1 and REPLACED in refused.stderr
    refused = run_engine("restore", "--repo", repo, "--point", victim, "--target", target,
                         "--require-encrypted")  # fmt: skip
    assert refused.returncode == 1 and "must be encrypted" in refused.stderr
    assert not target.exists()

    checked = run_engine("verify", "--repo", repo, "--read-data", "--digest", f"{victim}={digest}")
    assert checked.returncode == 1 and REPLACED in checked.stdout


def test_the_recorded_digest_lets_the_true_point_through(encrypted_point, repo, image, tmp_path):
    victim, digest = encrypted_point.point_id, encrypted_point.digest
    restore(repo, victim, tmp_path / "a.img", expected_digest=digest, require_encrypted=True)
    assert sha256(tmp_path / "a.img") == sha256(image)
    assert verify(repo, read_data=True, expected={victim: digest}).ok

    done = run_engine("restore", "--repo", repo, "--point", victim, "--target", tmp_path / "b.img",
                      "--digest", digest, "--require-encrypted")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sha256(tmp_path / "b.img") == sha256(image)


def test_a_point_file_swapped_for_another_point_of_the_job_is_refused(image, repo, tmp_path):
    first = backup(repo, "job", image, "full")
    second = backup(repo, "job", image, "full")
    (repo / "points" / second.point_id).unlink()
    # a genuine, older point of the same job put under the newer one's name
    rewrite_point(repo / "points" / first.point_id, repo / "points" / second.point_id,
                  id=second.point_id)  # fmt: skip

    with pytest.raises(DataCorrupted, match=re.escape(REPLACED)):
        restore(repo, second.point_id, tmp_path / "x.img", expected_digest=second.digest)
    report = verify(repo, expected={first.point_id: first.digest, second.point_id: second.digest})
    assert report.unreadable_points == [second.point_id]
