"""Database engine settings that differ between SQLite and PostgreSQL."""

from sqlalchemy import event
from sqlalchemy.engine import Engine


def configure_engine_events(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Web, beat and workers share one SQLite file: WAL lets readers run beside the
        # single writer, and busy_timeout makes a writer wait instead of failing at once.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
