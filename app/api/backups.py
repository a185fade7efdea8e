"""/api/v1/backups: register, list, show, change and delete backup jobs."""

from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import secured
from app.http import ok
from app.schemas.backups import (
    BackupCreateSchema,
    BackupDeleteArgsSchema,
    BackupJobSchema,
    BackupListArgsSchema,
    BackupUpdateResultSchema,
    BackupUpdateSchema,
    RegistrationFailureSchema,
    RegistrationSchema,
)
from app.schemas.common import ErrorEnvelopeSchema, envelope, list_of
from app.services import jobs, lookup
from app.services.pagination import paginate
from app.services.registration import ensure_registered, register_backup_jobs

blp = Blueprint("backups", __name__, url_prefix="/api/v1/backups", description="Backup jobs")
RegistrationEnvelope = envelope(RegistrationSchema, "RegistrationEnvelope")
BackupJobEnvelope = envelope(BackupJobSchema, "BackupJobEnvelope")


@blp.route("")
class Backups(MethodView):
    @secured(blp, "operator")
    @blp.arguments(BackupCreateSchema)
    @blp.response(201, RegistrationEnvelope, description="Every partition registered")
    @blp.alt_response(207, schema=RegistrationEnvelope, description="Some partitions failed")
    @blp.alt_response(409, schema=RegistrationFailureSchema, description="No partition registered")
    @blp.alt_response(
        404, schema=ErrorEnvelopeSchema, description="Unknown center, server, repository or user"
    )
    def post(self, request):
        """Register a backup job for each partition (the seed's POST /backups)"""
        registration = register_backup_jobs(request)
        ensure_registered(registration)
        data = {"results": registration.results, "summary": registration.summary}
        if registration.status == 201:
            return ok(data, "backups_registered", 201)
        return ok(data, "backups_partially_registered", 207, success=False)

    @secured(blp, "viewer")
    @blp.arguments(BackupListArgsSchema, location="query")
    @blp.response(200, envelope(list_of(BackupJobSchema, "BackupJobList"), "BackupJobListEnvelope"))
    def get(self, args):
        """List backup jobs, with filters and pagination"""
        items, pagination = paginate(jobs.filtered_jobs(args), args["page"], args["limit"])
        return ok({"items": [jobs.job_view(j) for j in items], "pagination": pagination})


@blp.route("/<ref>")
class BackupByRef(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, BackupJobEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    def get(self, ref):
        """One backup job, by id or by name (when the name is unique)"""
        return ok(jobs.job_view(lookup.find_job(ref)))

    @secured(blp, "operator")
    @blp.arguments(BackupUpdateSchema)
    @blp.response(200, envelope(BackupUpdateResultSchema, "BackupUpdateEnvelope"))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    def put(self, changes, ref):
        """Change a job's schedule or options; returns what changed"""
        job = lookup.find_job(ref)
        updated = jobs.update_job(job, changes)
        return ok({"updatedFields": updated, "backup": jobs.job_view(job)}, "backup_updated")

    @secured(blp, "operator")
    @blp.arguments(BackupDeleteArgsSchema, location="query")
    @blp.response(200, BackupJobEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    def delete(self, args, ref):
        """Delete a job (`?purge=true` also deletes its recovery points)"""
        job = lookup.find_job(ref)
        view = jobs.job_view(job)
        jobs.delete_job(job, purge=args["purge"])
        return ok(view, "backup_deleted")
