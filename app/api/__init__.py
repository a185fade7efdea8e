"""One blueprint per resource, all under /api/v1."""

from pathlib import Path

from flask import Blueprint


def register_blueprints(api) -> None:
    from app.api import (
        backups,
        centers,
        health,
        recovery_points,
        repositories,
        restores,
        runs,
        servers,
        tokens,
        users,
    )

    for module in (
        health,
        tokens,
        users,
        centers,
        servers,
        repositories,
        backups,
        runs,
        recovery_points,
        restores,
    ):
        api.register_blueprint(module.blp)
    api.register_blueprint(tokens.login_blp)  # logging in, throttled (app.login_throttle)
    api._app.register_blueprint(_swagger_ui_assets())


def _swagger_ui_assets() -> Blueprint:
    """Swagger UI's files, served locally so /api/v1/docs works without internet access."""
    import flask_swagger_ui

    dist = Path(flask_swagger_ui.__file__).parent / "dist"
    return Blueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=str(dist),
        static_url_path="/api/v1/docs/static",
    )
