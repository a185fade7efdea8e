"""The web process's logs: gunicorn's logger with `ZDM_LOG_FORMAT` (`app/log_format.py`).

The Procfile starts gunicorn with `--logger-class app.gunicorn_logger.GunicornLogger`; only
the web process imports this module (and gunicorn).
"""

from __future__ import annotations

import logging
import sys

from gunicorn.glogging import Logger

from app.log_format import format_handlers


class GunicornLogger(Logger):
    """gunicorn's logger with `ZDM_LOG_FORMAT`: its error and access logs, and the root logger
    (the application's own loggers) on stderr, in the chosen format."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        root = logging.getLogger()
        if not any(getattr(h, "_zdm", False) for h in root.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(self.error_fmt, self.datefmt))
            handler._zdm = True
            root.addHandler(handler)  # its level stays: what reached stderr before still does
        format_handlers(self.error_log, self.access_log, root)
