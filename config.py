"""Settings, read from the environment in one place.

Every setting the service honours is listed here; README.md documents them.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("ZDM_VAR_DIR", BASE_DIR / "var"))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"setting {name} must be an integer, got {raw!r}") from exc


def _absolute_paths(name: str, default: str) -> list[str]:
    """A colon-separated list of absolute paths, normalised."""
    paths = [p.strip() for p in os.environ.get(name, default).split(":") if p.strip()]
    for path in paths:
        if not path.startswith("/"):
            raise RuntimeError(f"setting {name} must list absolute paths, got {path!r}")
    return ["/" + os.path.normpath(path).lstrip("/") for path in paths]


def restore_roots() -> list[str]:
    """ZDM_RESTORE_ROOTS: where a restore may create files and directories. The web process
    reads it once (Config); an agent reads it at each restore, like its other settings."""
    return _absolute_paths("ZDM_RESTORE_ROOTS", "/var/lib/zdm/restores")


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
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    # Request bodies larger than this are refused with 413.
    MAX_CONTENT_LENGTH = _int("ZDM_MAX_BODY_BYTES", 1024 * 1024)

    ZDM_TIMEZONE = os.environ.get("ZDM_TIMEZONE", "UTC")
    ZDM_TOKEN_TTL_HOURS = _int("ZDM_TOKEN_TTL_HOURS", 24)
    ZDM_MISFIRE_GRACE_SECONDS = _int("ZDM_MISFIRE_GRACE_SECONDS", 3600)
    # Colon-separated absolute paths; when set, repository paths must lie under one of them.
    ZDM_REPOSITORY_ROOTS = [
        p for p in os.environ.get("ZDM_REPOSITORY_ROOTS", "").split(":") if p.strip()
    ]
    # Where a restore may create files and directories (colon-separated): checked by the API
    # and again by each agent, so set it alike on web and agents. Empty: in place only.
    ZDM_RESTORE_ROOTS = restore_roots()
    # A server whose agent has not been heard from for this long shows `online: false`.
    ZDM_AGENT_OFFLINE_SECONDS = _int("ZDM_AGENT_OFFLINE_SECONDS", 60)
    # Lists (jobs, runs, recovery points): a count this large is reused by a web worker for
    # this many seconds instead of being counted again on every request; smaller ones are
    # always counted (docs/decisions.md, "Lists and registration at scale").
    ZDM_LIST_EXACT_COUNT = _int("ZDM_LIST_EXACT_COUNT", 10_000)
    ZDM_LIST_COUNT_SECONDS = _int("ZDM_LIST_COUNT_SECONDS", 10)
    # GET /api/v1/metrics: a long-lived bearer token for Prometheus (user tokens, which
    # also work, expire); per-job series for at most this many jobs (docs/decisions.md).
    ZDM_METRICS_TOKEN = os.environ.get("ZDM_METRICS_TOKEN", "")
    ZDM_METRICS_JOB_SERIES = _int("ZDM_METRICS_JOB_SERIES", 1000)
    ZDM_SMTP_URL = os.environ.get("ZDM_SMTP_URL", "")
    ZDM_MAIL_FROM = os.environ.get("ZDM_MAIL_FROM", "zdm@localhost")

    # flask-smorest / OpenAPI
    API_TITLE = "ZDM Backup API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/v1/docs/static/"
    JSON_SORT_KEYS = False
