"""The repository directory itself: opening or creating it, its config and keys, its paths.

What lives inside belongs to other modules: pack files to `packs`, point files to `points`,
the running operations under `tmp/` to `operations`, the `lock` and `turnstile` files to
`locks`. See docs/repository-format.md, "Layout".
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from workers.engine import fs
from workers.engine.errors import NotARepository
from workers.engine.keys import RepositoryKeys, unwrap_keys, wrap_keys
from workers.engine.packs import PACK_ID_SIZE

FORMAT = 1
DEFAULT_BLOCK_SIZE = 512 * 1024


class RepositoryDir:
    """A repository directory: `config`, `keys`, `packs/`, `points/`, `tmp/`, `lock`, `turnstile`.

    Named apart from the service's `Repository` model (a database row that names a directory).
    """

    def __init__(self, root: Path, config: dict):
        self.root = root
        self.config = config
        self.repository_id: str = config["repository_id"]
        self.block_size: int = config["block_size"]
        self.packs_dir = root / "packs"
        self.points_dir = root / "points"
        self.tmp_dir = root / "tmp"

    @classmethod
    def open(cls, path: str | os.PathLike) -> RepositoryDir:
        root = Path(path).absolute()
        try:
            config = json.loads((root / "config").read_bytes())
        except FileNotFoundError:
            raise NotARepository(f"{root} is not a ZDM repository (no config file).") from None
        except (OSError, ValueError) as error:
            raise NotARepository(
                f"The config of repository {root} is unreadable ({error})."
            ) from None
        if config.get("format") != FORMAT or config.get("kind") != "zdm-repository":
            raise NotARepository(f"{root} is not a ZDM repository of format {FORMAT}.")
        return cls(root, config)

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike, block_size: int = DEFAULT_BLOCK_SIZE
    ) -> RepositoryDir:
        """Open the repository at `path`, creating it (and the directory) when absent."""
        root = Path(path).absolute()
        if (root / "config").exists():
            return cls.open(root)
        if root.is_dir():
            # Only an empty directory, or one another process is turning into a repository
            # right now, may become one: never scatter repository files into someone's data.
            foreign = [
                name
                for name in os.listdir(root)
                if name not in ("packs", "points", "tmp") and not name.startswith(".config.")
            ]
            if foreign:
                raise NotARepository(
                    f"{root} is not a ZDM repository and not empty; use an empty directory."
                )
        try:
            root.mkdir(parents=True, exist_ok=True)
            for name in ("points", "tmp"):
                (root / name).mkdir(exist_ok=True)
            for prefix in range(256):
                (root / "packs" / f"{prefix:02x}").mkdir(parents=True, exist_ok=True)
            config = {
                "kind": "zdm-repository",
                "format": FORMAT,
                "repository_id": secrets.token_hex(16),
                "block_size": block_size,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            # Two processes creating the same repository: the first link wins, both use it.
            fs.write_file_atomically(root / "config", json.dumps(config, indent=1).encode(), True)
        except OSError as error:
            raise NotARepository(
                f"Cannot create a repository at {root} ({error.strerror})."
            ) from None
        return cls.open(root)

    # --- names -----------------------------------------------------------------------------
    def pack_path(self, pack_id: bytes) -> Path:
        name = pack_id.hex()
        return self.packs_dir / name[:2] / name

    def point_path(self, point_id: str) -> Path:
        return self.points_dir / point_id

    def point_ids(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.points_dir) if not e.name.startswith("."))
        except FileNotFoundError:
            raise NotARepository(f"{self.root} has no points directory.") from None

    def pack_ids(self):
        """Every pack id present under packs/ (a generator)."""
        for prefix in os.scandir(self.packs_dir):
            if not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                if len(entry.name) == 2 * PACK_ID_SIZE and not entry.name.startswith("."):
                    with contextlib.suppress(ValueError):
                        yield bytes.fromhex(entry.name)

    # --- keys ------------------------------------------------------------------------------
    def load_keys(self, master: bytes | None, create: bool = False) -> RepositoryKeys:
        """The repository keys, unwrapped with `master`; with `create`, made on first use."""
        path = self.root / "keys"
        if create and not path.exists():
            if master is None:
                unwrap_keys(None, {}, self.repository_id)  # raises KeyMissing
            record = wrap_keys(master, RepositoryKeys.generate(), self.repository_id)
            fs.write_file_atomically(path, json.dumps(record, indent=1).encode(), True)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotARepository(f"Repository {self.root} has no keys file.") from None
        return unwrap_keys(master, record, self.repository_id)
