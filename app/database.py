"""Database engine settings that differ between SQLite and PostgreSQL."""

import contextlib
import select
import time

from sqlalchemy import DateTime, Float, event, exc, literal
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


def engine_options(database_url: str, options: dict) -> dict:
    """On PostgreSQL, a pooled connection is checked by looking at its socket when it is
    taken from the pool (`_drop_dead_connections`) instead of SQLAlchemy's pre-ping, which
    costs a round trip to the server on every request."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return {**options, "pool_pre_ping": False}
    return options


def configure_engine_events(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        event.listen(engine, "checkout", _drop_dead_connections)
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


def autocommit(view):
    """Marks a view whose statements may each commit on their own: it reads, then writes
    with one statement, or opens a transaction itself (`db.session.commit()` first) where
    several writes must stand or fall together. GET and HEAD views are all like that."""
    view.autocommit = True
    return view


def autocommit_requests(app) -> None:
    """Requests that only read (GET, HEAD) or whose view is marked `autocommit` run their
    statements in autocommit. That spares the BEGIN and the ROLLBACK/COMMIT round trips
    psycopg adds around a transaction: a third of the database time of a job list. Each
    statement still reads one consistent snapshot, as in a READ COMMITTED transaction.
    Applied only to a session with nothing pending, and undone when the request ends, so a
    session that outlives the request (tests, the CLI) goes on with ordinary transactions."""
    from flask import g, request

    from app.extensions import db

    @app.before_request
    def _start_in_autocommit():
        session = db.session()  # this request's session, not its scoped proxy
        idle = not (session.in_transaction() or session.new or session.dirty or session.deleted)
        if not idle or not (request.method in ("GET", "HEAD") or _marked(app, request)):
            return
        try:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        except (exc.OperationalError, exc.InterfaceError):
            session.rollback()  # the database is down: the view meets it and answers 503
            return
        g.zdm_autocommit = True

    @app.teardown_request
    def _end_autocommit(_error=None):
        if g.pop("zdm_autocommit", False):
            db.session.rollback()  # nothing to undo: gives the connection back, reset


def _marked(app, request) -> bool:
    view = app.view_functions.get(request.endpoint)
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return getattr(handler, "autocommit", False)


def _drop_dead_connections(dbapi_connection, _record, _proxy) -> None:
    """An idle connection has nothing to read: if its socket is readable, the server closed
    it (a restart, an idle timeout, pg_terminate_backend) or sent why it is closing it. The
    pool then throws it away and opens another, so the request does not fail."""
    if dbapi_connection.closed:
        raise exc.DisconnectionError("connection closed")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise exc.DisconnectionError("the server closed the connection")


class db_now(FunctionElement):  # noqa: N801 (used like a SQL function)
    """The database's clock, as a SQL expression: `db_now()` is now, `db_now(-60)` a minute ago,
    as the naive UTC datetime the database stores. Leases are stamped and judged with it, so
    the clocks of agents and of the control worker never matter."""

    type = DateTime()
    inherit_cache = True

    def __init__(self, offset_seconds: float = 0):
        super().__init__(literal(float(offset_seconds), Float()))  # a parameter, not cached text


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler, **kw) -> str:
    # statement_timestamp(), not now(): now() is when the transaction began, which in a
    # session kept open across a sweep's sleep would be an old time.
    offset = compiler.process(element.clauses, **kw)
    return f"(timezone('utc', statement_timestamp()) + make_interval(secs => {offset}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler, **kw) -> str:
    # In the format SQLAlchemy writes naive datetimes in ('2026-01-31 10:30:45.123000'), so
    # the stored text compares correctly with values written from Python.
    offset = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', ({offset}) || ' seconds') || '000')"


# ---- the database going away -----------------------------------------------------------------

_UNREACHABLE = (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError)


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or the connection broke (as
    opposed to a statement it refused): a stopped server, a cut network, a restart, and on
    SQLite a lock that outlived the busy timeout."""
    return isinstance(error, _UNREACHABLE) or bool(
        isinstance(error, exc.DBAPIError) and error.connection_invalidated
    )


def patiently(step, what: str, patience: float, log) -> object:
    """`step()` in a transaction of its own, tried again while the database is unreachable:
    after each failure the session is rolled back and the next try waits 1, 2, 4 … up to
    10 seconds, until `patience` seconds have passed; then the last error is raised. `step`
    must be safe to run again from the start (it reads what it needs again)."""
    from app.extensions import db

    deadline = time.monotonic() + patience
    wait = 1.0
    while True:
        try:
            return step()
        except Exception as error:
            if not unreachable(error):
                raise
            with contextlib.suppress(Exception):
                db.session.rollback()
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("%s: the database stayed unreachable; giving up: %s", what, error)
                raise
            log.warning("%s: the database is unreachable (%s); trying again in %.0f s",
                        what, str(error).splitlines()[0], min(wait, left))  # fmt: skip
            time.sleep(min(wait, left))
            wait = min(wait * 2, 10.0)
