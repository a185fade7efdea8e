"""/api/v1/backups: register, list, show, change and delete backup jobs."""

from flask import g
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.links import links
from app.auth import secured
from app.database import autocommit
from app.http import ok, ok_response, refusal_with_data
from app.schemas.backups import (
    SEED_REQUEST_EXAMPLE,
    BackupCreateSchema,
    BackupDeleteArgsSchema,
    BackupJobSchema,
    BackupListArgsSchema,
    BackupUpdateResultSchema,
    BackupUpdateSchema,
    RegistrationFailureSchema,
    RegistrationSchema,
)
from app.schemas.common import CursorPageArgsSchema, ErrorEnvelopeSchema, envelope, list_of
from app.schemas.runs import (
    HistoryArgsSchema,
    JobActionSchema,
    MonitoringSchema,
    RecoveryPointSchema,
    RunSchema,
)
from app.services import history, jobs, lookup, run_commands, run_lifecycle, run_views
from app.services.registration import register_backup_jobs

blp = Blueprint("backups", __name__, url_prefix="/api/v1/backups", description="Backup jobs")
RegistrationEnvelope = envelope(RegistrationSchema, "RegistrationEnvelope")
BackupJobEnvelope = envelope(BackupJobSchema, "BackupJobEnvelope")
AMBIGUOUS = "The name is that of several jobs (use the id)"


@blp.route("")
class Backups(MethodView):
    @secured(blp, "operator")
    # one instance: building it per request costs
    @blp.arguments(BackupCreateSchema(), example=SEED_REQUEST_EXAMPLE)
    @blp.response(201, RegistrationEnvelope, description="Every partition registered")
    @blp.alt_response(207, schema=RegistrationEnvelope, description="Some partitions failed")
    @blp.alt_response(409, schema=RegistrationFailureSchema, description="No partition registered")
    @blp.alt_response(
        404, schema=ErrorEnvelopeSchema, description="Unknown center, server, repository or user"
    )
    @blp.doc(
        **links(
            201,
            {"ref": "/data/results/0/id"},
            ("GET", "/api/v1/backups/{ref}"),
            ("PUT", "/api/v1/backups/{ref}"),
            ("DELETE", "/api/v1/backups/{ref}"),
            ("POST", "/api/v1/backups/{ref}/start"),
            ("POST", "/api/v1/backups/{ref}/stop"),
            ("POST", "/api/v1/backups/{ref}/run"),
            ("GET", "/api/v1/backups/{ref}/runs"),
            ("GET", "/api/v1/backups/{ref}/recovery-points"),
            ("GET", "/api/v1/backups/monitoring/job/{ref}"),
        )
    )
    @autocommit  # one partition is one INSERT; several open a transaction
    def post(self, request):
        """Register a backup job for each partition (the seed's POST /backups)"""
        registration = register_backup_jobs(request, created_by=g.user)
        data = {"results": registration.results, "summary": registration.summary}
        if registration.status == 201:
            return ok_response(data, "backups_registered", 201)
        if registration.status == 207:
            return ok_response(data, "backups_partially_registered", 207, success=False)
        return refusal_with_data(data, "backups_none_registered", 409)

    @secured(blp, "viewer")
    @blp.arguments(BackupListArgsSchema(), location="query")
    @blp.response(200, envelope(list_of(BackupJobSchema, "BackupJobList"), "BackupJobListEnvelope"))
    def get(self, args):
        """List backup jobs, with filters and pagination"""
        items, pagination = jobs.list_jobs(args)
        return ok_response({"items": items, "pagination": pagination})


# GET /backups/histories is the history list: a job of that name is reached by its id.
JOB_REF = {
    "in": "path",
    "name": "ref",
    "description": "The job's id, or its name when one live job has it (`histories` is "
    "the history list: a job of that name is reached by its id)",
    "schema": {"type": "string", "minLength": 1, "not": {"enum": ["histories"]}},
}


@blp.route("/<ref>", parameters=[JOB_REF])
class BackupByRef(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, BackupJobEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def get(self, ref):
        """One backup job, by id or by name (when the name is unique)"""
        return ok(jobs.job_view(lookup.find_job(ref)))

    @secured(blp, "operator")
    @blp.arguments(BackupUpdateSchema)
    @blp.response(200, envelope(BackupUpdateResultSchema, "BackupUpdateEnvelope"))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def put(self, changes, ref):
        """Change a job's schedule or options; returns what changed"""
        job = lookup.find_job(ref)
        updated = jobs.update_job(job, changes)
        return ok({"updatedFields": updated, "backup": jobs.job_view(job)}, "backup_updated")

    @secured(blp, "operator")
    @blp.arguments(BackupDeleteArgsSchema, location="query")
    @blp.response(200, BackupJobEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def delete(self, args, ref):
        """Delete a job (`?purge=true` also deletes its recovery points).

        The job leaves /backups and its name is free again; its runs stay in the histories
        and, unless purged, its recovery points stay listed (`/recovery-points?job=<id>`)
        and restorable."""
        job = lookup.find_job(ref)
        view = jobs.job_view(job)
        jobs.delete_job(job, purge=args["purge"])
        return ok(view, "backup_deleted")


# ---- schedule control, runs and recovery points (SPEC "The rest of /api/v1/backups") ----

RunEnvelope = envelope(RunSchema, "RunEnvelope")


JobActionEnvelope = envelope(JobActionSchema, "JobActionEnvelope")


def job_action(job, *, canceled_runs=(), run=None) -> dict:
    """What /start, /stop and /run answer: the job as it is now, and what they did."""
    return {
        "backup": jobs.job_view(job),
        "canceledRuns": list(canceled_runs),
        "runId": run.id if run is not None else None,
        "run": run_views.run_view(run) if run is not None else None,
    }


@blp.route("/<ref>/start")
class StartBackup(MethodView):
    @secured(blp, "operator")
    @blp.response(200, JobActionEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="No future fire time; or the name is that of several jobs",
    )
    def post(self, ref):
        """Activate the job's schedule"""
        job = lookup.find_job(ref)
        run_commands.start_job(job)
        return ok(job_action(job), "job_started")


@blp.route("/<ref>/stop")
class StopBackup(MethodView):
    @secured(blp, "operator")
    @blp.response(200, JobActionEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def post(self, ref):
        """Deactivate the schedule and cancel a queued or running run.

        A queued run is canceled at once; a running one stops at the engine's next safe
        point (its state turns `canceled` then). Either is listed in `canceledRuns`, and
        the job shows `waiting` from this answer on."""
        job = lookup.find_job(ref)
        canceled = run_commands.stop_job(job)
        return ok(job_action(job, canceled_runs=canceled), "job_stopped")


@blp.route("/<ref>/run")
class RunBackupNow(MethodView):
    @secured(blp, "operator")
    @blp.response(202, JobActionEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="A run is already going; or the name is that of several jobs",
    )
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="Broker unavailable")
    @blp.doc(**links(202, {"run_id": "/data/runId"}, ("GET", "/api/v1/runs/{run_id}")))
    def post(self, ref):
        """Run the job now (trigger `manual`); `runId` and `run` are the queued run"""
        job = lookup.find_job(ref)
        run = run_commands.run_now(job, requested_by=g.user)
        return ok(job_action(job, run=run), "run_queued", 202)


@blp.route("/<ref>/runs")
class BackupRuns(MethodView):
    @secured(blp, "viewer")
    @blp.arguments(CursorPageArgsSchema, location="query")
    @blp.response(200, envelope(list_of(RunSchema, "RunList"), "RunListEnvelope"))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def get(self, args, ref):
        """The job's runs, newest first"""
        items, pagination = history.list_runs(args, job_id=lookup.find_job(ref).id)
        return ok({"items": items, "pagination": pagination})


@blp.route("/<ref>/recovery-points")
class BackupRecoveryPoints(MethodView):
    @secured(blp, "viewer")
    @blp.arguments(CursorPageArgsSchema, location="query")
    @blp.response(
        200,
        envelope(list_of(RecoveryPointSchema, "RecoveryPointList"), "RecoveryPointListEnvelope"),
    )
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def get(self, args, ref):
        """The job's recovery points, newest first"""
        items, pagination = history.list_points(args, job_id=lookup.find_job(ref).id)
        return ok({"items": items, "pagination": pagination})


@blp.route("/histories")
class BackupHistories(MethodView):
    @secured(blp, "viewer")
    @blp.arguments(HistoryArgsSchema, location="query")
    @blp.response(200, envelope(list_of(RunSchema, "HistoryList"), "HistoryListEnvelope"))
    def get(self, args):
        """Runs of all jobs, newest first, with filters"""
        items, pagination = history.list_runs(args)
        return ok({"items": items, "pagination": pagination})


@blp.route("/monitoring/job/<ref>")
class BackupMonitoring(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, envelope(MonitoringSchema, "MonitoringEnvelope"))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such job")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=AMBIGUOUS)
    def get(self, ref):
        """Live progress of the job's current run; once it has finished, the last run with
        its outcome (`run` is null only for a job that never had a run)"""
        job = lookup.find_job(ref)
        current = run_lifecycle.unfinished_run(job.id)
        shown = current or history.latest_run(job.id)
        return ok(
            {
                "job": {"id": job.id, "name": job.name},
                "status": job.status,
                "inProgress": current is not None,
                "run": run_views.run_view(shown) if shown else None,
            }
        )
