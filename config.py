"""Settings, read from the environment in one place.

Every setting the service honours is read here; README.md's table documents each one with its
default. A bad value stops the process that reads it with a `SettingError` naming the setting.

- `Config`: the Flask app of the web process and of every Celery process, read once at import.
- The functions below it: settings only Celery processes (or the CLI) use, read when called,
  so that a web process never fails over, say, a bad Flower port.

The backup engine reads its own two variables in `workers/engine/settings.py`: it imports
nothing of the service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


class SettingError(RuntimeError, ValueError):
    """A setting's value cannot be used; the message names the setting. (A RuntimeError, as
    config errors always were, and a ValueError, as the agent's partition errors were.)"""


def _text(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"setting {name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingError(f"setting {name} must be at least {minimum}, got {raw!r}")
    return value


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds (fractions allowed)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"setting {name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise SettingError(f"setting {name} must be a positive number of seconds, got {raw!r}")
    return value


def _absolute_paths(name: str, default: str) -> list[str]:
    """A colon-separated list of absolute paths, normalised."""
    paths = [p.strip() for p in os.environ.get(name, default).split(":") if p.strip()]
    for path in paths:
        if not path.startswith("/"):
            raise SettingError(f"setting {name} must list absolute paths, got {path!r}")
    return ["/" + os.path.normpath(path).lstrip("/") for path in paths]


VAR_DIR = Path(_text("ZDM_VAR_DIR", str(BASE_DIR / "var")))


def restore_roots() -> list[str]:
    """ZDM_RESTORE_ROOTS: where a restore may create files and directories. The web process
    reads it once (Config); an agent reads it at each restore, like its other settings."""
    return _absolute_paths("ZDM_RESTORE_ROOTS", "/var/lib/zdm/restores")


def redis_url() -> str:
    return _text("REDIS_URL", "redis://127.0.0.1:6379/0")


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Heroku-style URLs name the scheme "postgres://", which SQLAlchemy does not accept.
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        return url
    return f"sqlite:///{VAR_DIR / 'zdm.sqlite3'}"


class Config:
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = redis_url()

    # Request bodies larger than this are refused with 413.
    MAX_CONTENT_LENGTH = _int("ZDM_MAX_BODY_BYTES", 1024 * 1024, minimum=1)

    ZDM_TIMEZONE = _text("ZDM_TIMEZONE", "UTC")
    ZDM_TOKEN_TTL_HOURS = _int("ZDM_TOKEN_TTL_HOURS", 24, minimum=1)
    ZDM_MISFIRE_GRACE_SECONDS = _int("ZDM_MISFIRE_GRACE_SECONDS", 3600, minimum=0)
    # Colon-separated absolute paths; when set, repository paths must lie under one of them.
    ZDM_REPOSITORY_ROOTS = [
        p for p in os.environ.get("ZDM_REPOSITORY_ROOTS", "").split(":") if p.strip()
    ]
    # Where a restore may create files and directories (colon-separated): checked by the API
    # and again by each agent, so set it alike on web and agents. Empty: in place only.
    ZDM_RESTORE_ROOTS = restore_roots()
    # A server whose agent has not been heard from for this long shows `online: false`.
    ZDM_AGENT_OFFLINE_SECONDS = _int("ZDM_AGENT_OFFLINE_SECONDS", 60, minimum=1)
    # Lists (jobs, runs, recovery points): a count this large is reused by a web worker for
    # this many seconds instead of being counted again on every request; smaller ones are
    # always counted (docs/decisions.md, "Lists and registration at scale").
    ZDM_LIST_EXACT_COUNT = _int("ZDM_LIST_EXACT_COUNT", 10_000, minimum=0)
    ZDM_LIST_COUNT_SECONDS = _int("ZDM_LIST_COUNT_SECONDS", 10, minimum=0)
    # GET /api/v1/metrics: a long-lived bearer token for Prometheus (user tokens, which
    # also work, expire); per-job series for at most this many jobs (docs/decisions.md).
    ZDM_METRICS_TOKEN = _text("ZDM_METRICS_TOKEN", "")
    ZDM_METRICS_JOB_SERIES = _int("ZDM_METRICS_JOB_SERIES", 1000, minimum=0)
    ZDM_SMTP_URL = _text("ZDM_SMTP_URL", "")
    ZDM_MAIL_FROM = _text("ZDM_MAIL_FROM", "zdm@localhost")

    # flask-smorest / OpenAPI
    API_TITLE = "ZDM Backup API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/v1/docs/static/"
    JSON_SORT_KEYS = False


# ---- every process -------------------------------------------------------------------------

LOG_FORMATS = ("text", "json")


def log_format() -> str:
    """ZDM_LOG_FORMAT: `text` (default) or `json` (one JSON object a line, for log shippers);
    read by every process where it sets up logging (`app/log_format.py`)."""
    value = _text("ZDM_LOG_FORMAT", "text").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise SettingError(f"setting ZDM_LOG_FORMAT must be text or json, got {value!r}")
    return value


# ---- Celery processes ---------------------------------------------------------------------


def visibility_timeout_seconds() -> int:
    """ZDM_VISIBILITY_TIMEOUT_SECONDS: how long Redis waits for an unacknowledged task before
    handing it to another worker; longer than any run (celeryconfig.py)."""
    return _int("ZDM_VISIBILITY_TIMEOUT_SECONDS", 24 * 3600, minimum=1)


def sweep_seconds() -> float:
    """ZDM_SWEEP_SECONDS: how often the control worker sweeps lost and unstarted runs."""
    return _seconds("ZDM_SWEEP_SECONDS", 30)


def record_patience_seconds() -> float:
    """ZDM_RECORD_PATIENCE_SECONDS: how long an agent keeps trying to record a finished backup
    (its recovery point and outcome) while the database is unreachable, holding the run."""
    return _seconds("ZDM_RECORD_PATIENCE_SECONDS", 900)


def run_lease_seconds() -> float:
    """ZDM_RUN_LEASE_SECONDS: a run or restore whose agent has not renewed its lease for this
    long is lost (app/services/run_lifecycle.py)."""
    return _seconds("ZDM_RUN_LEASE_SECONDS", 60)


@dataclass(frozen=True)
class AgentConfig:
    server: str  # ZDM_AGENT_SERVER: empty when this process is no agent
    center: str  # ZDM_AGENT_CENTER
    partitions: str  # ZDM_AGENT_PARTITIONS as written (`name=path,...`); empty: discover
    heartbeat_seconds: float  # ZDM_AGENT_HEARTBEAT_SECONDS: how often `lastSeen` is stamped


def agent_config() -> AgentConfig:
    """An agent's settings, read at each call (an agent reads them when it starts and at each
    run, so tests and operators can change them without reimporting anything)."""
    return AgentConfig(
        server=_text("ZDM_AGENT_SERVER", "").strip(),
        center=_text("ZDM_AGENT_CENTER", "default").strip(),
        partitions=_text("ZDM_AGENT_PARTITIONS", "").strip(),
        heartbeat_seconds=_seconds("ZDM_AGENT_HEARTBEAT_SECONDS", 15),
    )


@dataclass(frozen=True)
class FlowerConfig:
    user: str  # ZDM_FLOWER_USER
    password: str  # ZDM_FLOWER_PASSWORD; empty: generated once into VAR_DIR/flower-password
    address: str  # ZDM_FLOWER_ADDRESS
    port: int  # ZDM_FLOWER_PORT


def flower_config() -> FlowerConfig:
    return FlowerConfig(
        user=_text("ZDM_FLOWER_USER", "admin"),
        password=_text("ZDM_FLOWER_PASSWORD", ""),
        address=_text("ZDM_FLOWER_ADDRESS", "127.0.0.1"),
        port=_int("ZDM_FLOWER_PORT", 5555, minimum=1),
    )


# ---- the command line ---------------------------------------------------------------------


def cli_password() -> str:
    """ZDM_PASSWORD: the password `flask zdm create-user` uses instead of prompting."""
    return _text("ZDM_PASSWORD", "")
