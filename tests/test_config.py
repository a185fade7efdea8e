"""Every setting is read in config.py (the engine's in workers/engine/settings.py), documented
in README's table with its default, and a bad value is refused with the setting's name."""

import os
import re
import subprocess
import sys

import pytest

import config
from tests.end_to_end.processes import ROOT

# What the processes read from the environment, found in the code itself.
_READ = re.compile(r"""(?:["']|\$\{)(ZDM_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)\b""")


def variables_read_in(*files: str) -> set[str]:
    return {name for file in files for name in _READ.findall((ROOT / file).read_text())}


def readme_settings() -> dict[str, str]:
    """variable -> default, from README's table (a row may name several variables)."""
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                table[name] = cells[1]
    return table


def python_files_outside_config() -> list[str]:
    found = []
    for top in ("app", "workers", "wsgi.py", "celeryconfig.py"):
        path = ROOT / top
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        found += [str(f.relative_to(ROOT)) for f in files]
    return [f for f in found if f != "workers/engine/settings.py"]


def test_only_config_and_the_engine_settings_read_the_environment():
    readers = [
        file
        for file in python_files_outside_config()
        if re.search(r"os\.environ|os\.getenv", (ROOT / file).read_text())
    ]
    assert readers == []


def test_the_readme_lists_every_setting_with_a_default():
    read = variables_read_in("config.py", "workers/engine/settings.py", "Procfile")
    table = readme_settings()

    assert read - table.keys() == set()
    assert {name: table[name] for name in read if not table[name]} == {}
    assert {"ZDM_ENGINE_LOCK_TIMEOUT", "ZDM_AGENT_HEARTBEAT_SECONDS"} <= read


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("ZDM_RUN_LEASE_SECONDS", "a minute", config.run_lease_seconds),
        ("ZDM_RUN_LEASE_SECONDS", "0", config.run_lease_seconds),
        ("ZDM_SWEEP_SECONDS", "-5", config.sweep_seconds),
        ("ZDM_VISIBILITY_TIMEOUT_SECONDS", "1.5", config.visibility_timeout_seconds),
        ("ZDM_AGENT_HEARTBEAT_SECONDS", "nan", config.agent_config),
        ("ZDM_FLOWER_PORT", "http", config.flower_config),
        ("ZDM_LOG_FORMAT", "xml", config.log_format),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(monkeypatch, name, value, read):
    monkeypatch.setenv(name, value)

    with pytest.raises(config.SettingError, match=f"setting {name} must be .*{value!r}"):
        read()


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("ZDM_MAX_BODY_BYTES", "1MB", "import config"),
        ("ZDM_SWEEP_SECONDS", "often", "import workers; workers.app"),
        ("ZDM_VISIBILITY_TIMEOUT_SECONDS", "a day", "import celeryconfig"),
        ("ZDM_ENGINE_LOCK_TIMEOUT", "forever", "import workers.engine"),
    ],
)
def test_a_process_with_a_bad_setting_stops_with_its_name(name, value, code):
    started = run_python(code, **{name: value})

    assert started.returncode != 0
    assert f"setting {name} must be" in started.stderr.splitlines()[-1]
