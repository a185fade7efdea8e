"""One blueprint per resource, all under /api/v1."""

from pathlib import Path

from flask import Blueprint


def register_blueprints(api) -> None:
    from app.api import (
        backups,
        centers,
        health,
        index,
        metrics,
        recovery_points,
        repositories,
        restores,
        runs,
        servers,
        tokens,
        users,
    )

    for module in (
        index,
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
        metrics,
    ):
        api.register_blueprint(module.blp)
    api.register_blueprint(tokens.login_blp)  # logging in, throttled (app.login_throttle)
    api._app.register_blueprint(_swagger_ui_assets())
    index.register_landing_routes(api._app, str(_swagger_ui_dist()))


def _swagger_ui_dist() -> Path:
    import flask_swagger_ui

    return Path(flask_swagger_ui.__file__).parent / "dist"


def _swagger_ui_assets() -> Blueprint:
    """Swagger UI's files, served locally so /api/v1/docs works without internet access."""
    dist = _swagger_ui_dist()
    return Blueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=str(dist),
        static_url_path="/api/v1/docs/static",
    )
