"""Which server this agent serves, in which center, with which partitions.

Read from `config.agent_config()` (README's settings table):
- `ZDM_AGENT_SERVER`: the server's name; the agent consumes `zdm.server.<name>`.
- `ZDM_AGENT_CENTER`: the server's center (created when missing), default `default`.
- `ZDM_AGENT_PARTITIONS`: `name=path,...`, e.g. `/dev/sda1=/srv/img/sda1.img,/data=/srv/data`;
  a path that is a directory is a `directory` partition, anything else `block`. Default: the
  machine's real block devices (`/sys/class/block`) and mounted filesystems.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import config

_REAL_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "ntfs", "zfs"}


@dataclass(frozen=True)
class ServedPartition:
    name: str
    path: str
    kind: str  # block | directory
    size: int | None


@dataclass(frozen=True)
class AgentSettings:
    center: str
    server: str
    partitions: tuple[ServedPartition, ...]

    def source_of(self, partition_name: str) -> ServedPartition | None:
        return next((p for p in self.partitions if p.name == partition_name), None)


def agent_settings() -> AgentSettings | None:
    """This process's agent settings, or None when it is not an agent."""
    given = config.agent_config()
    if not given.server:
        return None
    partitions = parse_partitions(given.partitions) if given.partitions else discover_partitions()
    return AgentSettings(given.center, given.server, partitions)


def parse_partitions(spec: str) -> tuple[ServedPartition, ...]:
    served = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise config.SettingError(f"setting ZDM_AGENT_PARTITIONS: '{item}' is not name=path")
        served.append(_describe(name.strip(), os.path.abspath(path.strip())))
    return tuple(served)


def _describe(name: str, path: str) -> ServedPartition:
    try:
        info = os.stat(path)
    except OSError:
        return ServedPartition(name, path, "block", None)
    if stat.S_ISDIR(info.st_mode):
        return ServedPartition(name, path, "directory", None)
    size = info.st_size
    if stat.S_ISBLK(info.st_mode):
        with open(path, "rb") as device:
            size = device.seek(0, os.SEEK_END)
    return ServedPartition(name, path, "block", size)


def discover_partitions() -> tuple[ServedPartition, ...]:
    """The machine's block devices and mounted real filesystems."""
    found = []
    for entry in sorted(Path("/sys/class/block").glob("*")):
        device = Path("/dev") / entry.name
        if device.exists() and not entry.name.startswith(("loop", "ram", "zram")):
            found.append(_describe(str(device), str(device)))
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        mounts = []
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3 and fields[2] in _REAL_FILESYSTEMS:
            found.append(ServedPartition(fields[1], fields[1], "directory", None))
    return tuple(found)
