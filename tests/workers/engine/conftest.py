"""Fixtures for the backup engine's tests: real image files and repositories in tmp dirs."""

from pathlib import Path

import pytest

from tests.workers.engine.helpers import MIB, write_image


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A 6 MiB image with a 1 MiB zero tail."""
    return write_image(tmp_path / "disk.img", 6 * MIB, seed=3, zero_tail=MIB)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def master_key(monkeypatch) -> str:
    from workers.engine import generate_master_key

    key = generate_master_key()
    monkeypatch.setenv("ZDM_MASTER_KEY", key)
    return key
