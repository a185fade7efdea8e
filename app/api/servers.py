"""Servers and their partitions."""

from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.links import links
from app.auth import secured
from app.extensions import db
from app.http import ok
from app.models import Server
from app.schemas.common import ErrorEnvelopeSchema, PageArgsSchema, envelope, list_of
from app.schemas.inventory import PartitionListSchema, ServerCreateSchema, ServerSchema
from app.services import inventory, lookup
from app.services.pagination import paginate

blp = Blueprint("servers", __name__, url_prefix="/api/v1/servers", description="Protected servers")
ServerEnvelope = envelope(ServerSchema, "ServerEnvelope")


@blp.route("")
class Servers(MethodView):
    @secured(blp, "admin")
    @blp.arguments(ServerCreateSchema)
    @blp.response(201, ServerEnvelope)
    @blp.doc(
        **links(
            201,
            {"ref": "/data/id"},
            ("GET", "/api/v1/servers/{ref}"),
            ("GET", "/api/v1/servers/{ref}/partitions"),
            ("DELETE", "/api/v1/servers/{ref}"),
        )
    )
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such center")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="A server of that name exists")
    def post(self, data):
        """Register a server of a center, with its partitions"""
        return ok(inventory.server_view(inventory.create_server(data)), "created", 201)

    @secured(blp, "viewer")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope(list_of(ServerSchema, "ServerList"), "ServerListEnvelope"))
    def get(self, args):
        """List servers"""
        query = db.select(Server).order_by(Server.id)
        items, pagination = paginate(query, args["page"], args["limit"])
        return ok({"items": [inventory.server_view(s) for s in items], "pagination": pagination})


@blp.route("/<ref>")
class ServerByRef(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, ServerEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such server")
    def get(self, ref):
        """One server, by id or name"""
        return ok(inventory.server_view(lookup.find_server(ref)))

    @secured(blp, "admin")
    @blp.response(200, ServerEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such server")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="Backup jobs or recovery points refer to the server",
    )
    def delete(self, ref):
        """Delete a server that has no backup jobs"""
        server = lookup.find_server(ref)
        view = inventory.server_view(server)
        inventory.delete_server(server)
        return ok(view, "deleted")


@blp.route("/<ref>/partitions")
class ServerPartitions(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, envelope(PartitionListSchema, "PartitionListEnvelope"))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such server")
    def get(self, ref):
        """The partitions of a server"""
        server = lookup.find_server(ref)
        return ok(
            {
                "server": {"id": server.id, "name": server.name},
                "partitions": [inventory.partition_view(p) for p in server.partitions],
            }
        )
