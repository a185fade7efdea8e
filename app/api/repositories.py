"""Repositories: where recovery points are stored."""

from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import secured
from app.extensions import db
from app.http import ok
from app.models import Repository
from app.schemas.common import PageArgsSchema, envelope, list_of
from app.schemas.inventory import RepositoryCreateSchema, RepositorySchema
from app.services import inventory, lookup
from app.services.pagination import paginate

blp = Blueprint(
    "repositories", __name__, url_prefix="/api/v1/repositories", description="Backup repositories"
)
RepositoryEnvelope = envelope(RepositorySchema, "RepositoryEnvelope")


@blp.route("")
class Repositories(MethodView):
    @secured(blp, "admin")
    @blp.arguments(RepositoryCreateSchema)
    @blp.response(201, RepositoryEnvelope)
    def post(self, data):
        """Register a repository (type `local`: an absolute path on the agent's host)"""
        return ok(inventory.repository_view(inventory.create_repository(data)), "created", 201)

    @secured(blp, "viewer")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(
        200, envelope(list_of(RepositorySchema, "RepositoryList"), "RepositoryListEnvelope")
    )
    def get(self, args):
        """List repositories"""
        query = db.select(Repository).order_by(Repository.id)
        items, pagination = paginate(query, args["page"], args["limit"])
        return ok(
            {"items": [inventory.repository_view(r) for r in items], "pagination": pagination}
        )


@blp.route("/<ref>")
class RepositoryById(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, RepositoryEnvelope)
    def get(self, ref):
        """One repository, by id"""
        return ok(inventory.repository_view(lookup.find_repository(ref)))

    @secured(blp, "admin")
    @blp.response(200, RepositoryEnvelope)
    def delete(self, ref):
        """Delete a repository that no backup job uses"""
        repository = lookup.find_repository(ref)
        view = inventory.repository_view(repository)
        inventory.delete_repository(repository)
        return ok(view, "deleted")
