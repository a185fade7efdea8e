"""`flask --app wsgi zdm ...`: bootstrapping and scripting commands."""

import click
from flask.cli import AppGroup
from flask_migrate import upgrade

import config
from app.auth import issue_token
from app.errors import ApiError
from app.extensions import db
from app.models import ROLES, User
from app.services.users import create_user

zdm = AppGroup("zdm", help="ZDM administration: database, users, tokens.")


@zdm.command("init")
def init_command():
    """Create the database, or migrate it to the newest schema."""
    upgrade()
    click.echo("database is at the newest schema", err=True)


@zdm.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
def create_user_command(email: str, role: str):
    """Create a user; the password comes from ZDM_PASSWORD or a prompt."""
    password = config.cli_password() or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    try:
        user = create_user(email, password, role)
    except ApiError:
        raise click.ClickException(f"user {email} already exists") from None
    click.echo(f"created {role} {user.email} (id {user.id})", err=True)


@zdm.command("create-token")
@click.argument("email")
def create_token_command(email: str):
    """Print one new bearer token for EMAIL, and nothing else, on stdout."""
    user = db.session.scalar(db.select(User).where(User.email == email.lower()))
    if user is None:
        raise click.ClickException(f"no user {email}")
    token, _record = issue_token(user)
    click.echo(token)
