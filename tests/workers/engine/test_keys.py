"""aes256 needs the master key: missing, malformed or wrong keys are clear errors."""

import base64

import pytest

from tests.workers.engine.helpers import run_engine, sha256
from workers.engine import KeyInvalid, KeyMissing, backup, generate_master_key, restore, verify
from workers.engine.keys import parse_master_key


def test_encrypted_backup_without_a_key_fails_clearly(image, repo, monkeypatch):
    monkeypatch.delenv("ZDM_MASTER_KEY", raising=False)
    with pytest.raises(KeyMissing, match="ZDM_MASTER_KEY"):
        backup(repo, "job", image, "full", encryption="aes256")


def test_restore_needs_the_key_that_made_the_point(image, repo, tmp_path, monkeypatch):
    key = generate_master_key()
    point = backup(repo, "job", image, "full", encryption="aes256", master_key=key).point_id

    monkeypatch.delenv("ZDM_MASTER_KEY", raising=False)
    with pytest.raises(KeyMissing):
        restore(repo, point, tmp_path / "out.img")
    with pytest.raises(KeyInvalid, match="does not open"):
        restore(repo, point, tmp_path / "out.img", master_key=generate_master_key())
    with pytest.raises(KeyInvalid):
        backup(repo, "job", image, "full", encryption="aes256", master_key=generate_master_key())
    with pytest.raises(KeyMissing):
        verify(repo)

    restore(repo, point, tmp_path / "out.img", master_key=key)
    assert sha256(tmp_path / "out.img") == sha256(image)


def test_master_key_accepts_hex_and_base64_and_rejects_the_rest():
    raw = bytes(range(32))
    assert parse_master_key(raw.hex()) == raw
    assert parse_master_key(base64.b64encode(raw).decode()) == raw
    assert parse_master_key(base64.urlsafe_b64encode(raw).decode()) == raw
    for bad in ("", "abc", "00" * 31, "zz" * 32, base64.b64encode(b"x" * 16).decode()):
        with pytest.raises(KeyInvalid):
            parse_master_key(bad)


def test_plain_jobs_share_a_repository_with_encrypted_ones(image, repo, tmp_path, master_key):
    plain = backup(repo, "plain", image, "full", compression="lz4").point_id
    secret = backup(repo, "secret", image, "full", compression="lz4", encryption="aes256").point_id
    for point in (plain, secret):
        restore(repo, point, tmp_path / f"{point}.img")
        assert sha256(tmp_path / f"{point}.img") == sha256(image)
    assert verify(repo, read_data=True).ok


def test_cli_reports_a_wrong_key_in_one_sentence(image, repo, tmp_path):
    key = generate_master_key()
    done = run_engine("backup", "--repo", repo, "--job", "j", "--source", image,
                      "--encryption", "aes256", env={"ZDM_MASTER_KEY": key})  # fmt: skip
    assert done.returncode == 0, done.stderr
    point = done.stdout.strip().splitlines()[-1]

    other_key = {"ZDM_MASTER_KEY": generate_master_key()}
    wrong = run_engine(
        "restore", "--repo", repo, "--point", point, "--target", tmp_path / "o.img", env=other_key
    )
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1 and "master key" in wrong.stderr
    malformed = run_engine("restore", "--repo", repo, "--point", point, "--target",
                           tmp_path / "o.img", env={"ZDM_MASTER_KEY": "not-a-key"})  # fmt: skip
    assert malformed.returncode == 1 and "64 hex" in malformed.stderr
    assert "Traceback" not in wrong.stderr + malformed.stderr
