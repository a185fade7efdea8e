"""Repositories: where recovery points are stored."""

from flask import g
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.links import links
from app.auth import secured
from app.extensions import db
from app.http import ApiError, ok
from app.models import Repository, Verification
from app.schemas.common import ErrorEnvelopeSchema, PageArgsSchema, envelope, list_of
from app.schemas.inventory import (
    RepositoryCreateSchema,
    RepositorySchema,
    RepositoryUpdateSchema,
    VerificationSchema,
    VerifyRequestSchema,
)
from app.services import inventory, lookup, verification
from app.services.pagination import paginate

blp = Blueprint(
    "repositories", __name__, url_prefix="/api/v1/repositories", description="Backup repositories"
)
RepositoryEnvelope = envelope(RepositorySchema, "RepositoryEnvelope")
VerificationEnvelope = envelope(VerificationSchema, "VerificationEnvelope")


@blp.route("")
class Repositories(MethodView):
    @secured(blp, "admin")
    @blp.arguments(RepositoryCreateSchema)
    @blp.response(201, RepositoryEnvelope)
    @blp.doc(
        **links(
            201,
            {"ref": "/data/id"},
            ("GET", "/api/v1/repositories/{ref}"),
            ("PUT", "/api/v1/repositories/{ref}"),
            ("POST", "/api/v1/repositories/{ref}/verify"),
            ("GET", "/api/v1/repositories/{ref}/verifications"),
            ("DELETE", "/api/v1/repositories/{ref}"),
        )
    )
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such center")
    @blp.alt_response(
        409, schema=ErrorEnvelopeSchema, description="A repository of that path exists"
    )
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
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such repository")
    def get(self, ref):
        """One repository, by id"""
        return ok(inventory.repository_view(lookup.find_repository(ref)))

    @secured(blp, "admin")
    @blp.arguments(RepositoryUpdateSchema)
    @blp.response(200, RepositoryEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such repository")
    def put(self, changes, ref):
        """Change the repository's verify schedule (`verifySchedule: null` stops it)"""
        repository = lookup.find_repository(ref)
        verification.set_verify_schedule(
            repository,
            changes.get("verifySchedule", repository.verify_schedule),
            changes.get("verifyReadData", repository.verify_read_data),
        )
        db.session.commit()
        return ok(inventory.repository_view(repository), "repository_updated")

    @secured(blp, "admin")
    @blp.response(200, RepositoryEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such repository")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="Backup jobs or recovery points use the repository",
    )
    def delete(self, ref):
        """Delete a repository that no backup job uses"""
        repository = lookup.find_repository(ref)
        view = inventory.repository_view(repository)
        inventory.delete_repository(repository)
        return ok(view, "deleted")


@blp.route("/<ref>/verify")
class VerifyRepository(MethodView):
    @secured(blp, "operator")
    @blp.arguments(VerifyRequestSchema)
    @blp.response(202, VerificationEnvelope)
    @blp.doc(
        **links(
            202,
            {"ref": "$request.path.ref", "verification_id": "/data/id"},
            ("GET", "/api/v1/repositories/{ref}/verifications/{verification_id}"),
        )
    )
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such repository")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="No agent uses the repository")
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="Broker unavailable")
    def post(self, data, ref):
        """Verify the repository now, on an agent that uses it"""
        repository = lookup.find_repository(ref)
        started = verification.request_verification(
            repository, data["readData"], "manual", requested_by=g.user
        )
        return ok(verification.verification_view(started), "verification_queued", 202)


@blp.route("/<ref>/verifications")
class RepositoryVerifications(MethodView):
    @secured(blp, "viewer")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(
        200, envelope(list_of(VerificationSchema, "VerificationList"), "VerificationListEnvelope")
    )
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such repository")
    def get(self, args, ref):
        """The repository's verifications, newest first"""
        repository = lookup.find_repository(ref)
        query = (
            db.select(Verification)
            .where(Verification.repository_id == repository.id)
            .order_by(Verification.id.desc())
        )
        items, pagination = paginate(query, args["page"], args["limit"])
        return ok(
            {
                "items": [verification.verification_view(v) for v in items],
                "pagination": pagination,
            }
        )


@blp.route("/<ref>/verifications/<int(max=2147483647):verification_id>")
class RepositoryVerification(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, VerificationEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such verification")
    def get(self, ref, verification_id):
        """One verification: state, what it checked, what it found"""
        repository = lookup.find_repository(ref)
        found = db.session.get(Verification, verification_id)
        if found is None or found.repository_id != repository.id:
            raise ApiError(404, "verification_not_found", ref=verification_id)
        return ok(verification.verification_view(found))
