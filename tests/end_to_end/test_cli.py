"""`flask --app wsgi zdm init | create-user | create-token`, run as commands."""

import hashlib

from sqlalchemy import create_engine, text

from tests.end_to_end.processes import flask_cli, service_env


def test_init_create_user_and_token(fresh_database_url, tmp_path, redis_url):
    env = service_env(fresh_database_url, tmp_path, redis_url, ZDM_PASSWORD="s3cret-pass")

    assert flask_cli(env, "zdm", "init").returncode == 0
    assert flask_cli(env, "zdm", "init").returncode == 0  # again: already at the newest schema
    created = flask_cli(env, "zdm", "create-user", "admin@example.com", "--role", "admin")
    assert created.returncode == 0, created.stderr
    token = flask_cli(env, "zdm", "create-token", "admin@example.com")

    assert token.returncode == 0, token.stderr
    assert token.stdout.count("\n") == 1 and token.stdout.startswith("zdm_")
    engine = create_engine(fresh_database_url)
    with engine.connect() as conn:
        role = conn.execute(
            text("SELECT role FROM users WHERE email = 'admin@example.com'")
        ).scalar()
        hashes = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    engine.dispose()
    assert role == "admin"
    assert hashes == [hashlib.sha256(token.stdout.strip().encode()).hexdigest()]


def test_password_prompt_when_no_env(fresh_database_url, tmp_path, redis_url):
    env = service_env(fresh_database_url, tmp_path, redis_url)
    flask_cli(env, "zdm", "init")

    created = flask_cli(
        env,
        "zdm",
        "create-user",
        "ops@example.com",
        "--role",
        "operator",
        input_text="pass-word-1\npass-word-1\n",
    )

    assert created.returncode == 0, created.stderr


def test_cli_errors_are_one_line_not_tracebacks(fresh_database_url, tmp_path, redis_url):
    env = service_env(fresh_database_url, tmp_path, redis_url, ZDM_PASSWORD="s3cret-pass")
    flask_cli(env, "zdm", "init")
    flask_cli(env, "zdm", "create-user", "admin@example.com", "--role", "admin")

    again = flask_cli(env, "zdm", "create-user", "admin@example.com")
    missing = flask_cli(env, "zdm", "create-token", "ghost@example.com")
    short = flask_cli(
        service_env(fresh_database_url, tmp_path, redis_url, ZDM_PASSWORD="short"),
        "zdm",
        "create-user",
        "x@example.com",
    )

    for result in (again, missing, short):
        assert result.returncode != 0
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert "already exists" in again.stderr and "ghost@example.com" in missing.stderr
