"""How every process logs (`ZDM_LOG_FORMAT`, README's settings table), and the context a line
carries.

- `text` (the default): the usual lines; a line logged within `log_context(...)` ends with
  its context, e.g. `... started on host-1 [job=3 jobName=nightly run=17]`.
- `json`: one JSON object a line for log shippers: `time` (UTC, ISO 8601), `level`, `logger`,
  `process` (its name), `message`, the context's fields (`job`, `run`, ...), and `exception`
  (the traceback) when there is one.

The context is a `contextvars` variable: `with log_context(job=..., run=...):` names the job
and run on every line logged inside it, by any module, without pasting them into messages
(the agent's runner binds it for each run; a thread it starts copies it).

Each process installs it where its logging is set up: Celery processes (beat, control worker,
agents) in `workers/celery_app.py` (Celery's `after_setup_logger` signals), the web process
through `app/gunicorn_logger.py` (`gunicorn --logger-class app.gunicorn_logger.GunicornLogger`,
the Procfile), which also formats the application's own loggers.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator

import config

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "zdm_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields) -> Iterator[None]:
    """Within the block, every line logged in this context also names `fields` (None: left
    out)."""
    given = {k: v for k, v in fields.items() if v is not None}
    token = _context.set({**(_context.get() or {}), **given})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict:
    return _context.get() or {}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are
    escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
            **(getattr(record, "zdm_context", None) or {}),
        }
        for name in ("task_name", "task_id"):  # Celery's task loggers set them
            value = getattr(record, name, None)
            if value and value != "???":
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ContextTextFormatter(logging.Formatter):
    """Wraps a text formatter: a line logged within a context ends with it."""

    def __init__(self, base: logging.Formatter):
        super().__init__()
        self.base = base

    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "zdm_context", None)
        if not context:
            return self.base.format(record)
        saved = record.msg, record.args
        suffix = " ".join(f"{k}={v}" for k, v in context.items())
        record.msg, record.args = f"{record.getMessage()} [{suffix}]", None
        try:
            return self.base.format(record)
        finally:
            record.msg, record.args = saved


def _install_record_factory() -> None:
    """Every record carries the context of the code that logged it (once per process)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "zdm_context", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.zdm_context = _context.get()  # None outside any context
        return record

    factory.zdm_context = True
    logging.setLogRecordFactory(factory)


def json_logs() -> bool:
    return config.log_format() == "json"


def format_handlers(*loggers: logging.Logger) -> None:
    """Give the handlers of `loggers` the chosen format (JSON, or their own text with the
    context)."""
    _install_record_factory()
    as_json = json_logs()
    for logger in loggers:
        for handler in logger.handlers:
            current = handler.formatter or logging.Formatter()
            if as_json:
                if not isinstance(current, JsonFormatter):
                    handler.setFormatter(JsonFormatter())
            elif not isinstance(current, ContextTextFormatter):
                handler.setFormatter(ContextTextFormatter(current))


def json_from_the_start() -> None:
    """With JSON logs, what a process says before its logging is set up (Python's warnings,
    say, such as Celery's about running as root) is JSON too: warnings are logged, and the
    root logger has a JSON handler on stderr until the process sets up its own."""
    if not json_logs():
        return
    _install_record_factory()
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)


def json_line(message: str, level: str = "INFO", logger: str = "zdm") -> str:
    """A JSON line written without the logging machinery (from a signal handler, say)."""
    return json.dumps({
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z",
        "level": level,
        "logger": logger,
        "process": "MainProcess",
        "message": message.strip(),
    }, ensure_ascii=False)  # fmt: skip
