"""A pooled database connection that died while idle (the database restarted, an idle
timeout, an administrator ended it) is replaced when it is taken from the pool: the next
request answers normally instead of 503. On PostgreSQL this is noticed from the socket,
without a round trip per request (app/database.py)."""

import time

from sqlalchemy import create_engine, text

from app.extensions import db


def _kill_idle_connections() -> int:
    """End every connection of the pool, as a database restart would."""
    db.session.remove()  # as at the end of a request: its connection goes back to the pool
    if db.engine.dialect.name == "postgresql":
        others = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        admin_engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as admin:
            ended = admin.execute(text(f"SELECT pg_terminate_backend(pid) {others}")).all()
            deadline = time.monotonic() + 10
            while admin.scalar(text(f"SELECT count(*) {others}")) and time.monotonic() < deadline:
                time.sleep(0.02)  # until the server has closed them
        admin_engine.dispose()
        return len(ended)
    # SQLite has no server to drop a connection: close the file handle under the pool.
    with db.engine.connect() as pooled:
        pooled.connection.dbapi_connection.close()
    return 1


def test_a_request_after_the_database_dropped_its_connections_answers(client, auth):
    assert client.get("/api/v1/backups", headers=auth).status_code == 200
    assert _kill_idle_connections() >= 1

    response = client.get("/api/v1/backups", headers=auth)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["data"]["items"] == []


def test_a_registration_after_the_database_dropped_its_connections_succeeds(
    client, auth, seed_inventory
):
    from tests.app.api.helpers import SEED_BASIC

    _kill_idle_connections()

    response = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    assert response.status_code == 201, response.get_data(as_text=True)
