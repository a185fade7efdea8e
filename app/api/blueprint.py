"""The Blueprint every resource uses."""

import flask_smorest
from webargs.flaskparser import FlaskParser


class Blueprint(flask_smorest.Blueprint):
    # unknown=None lets each schema decide; ours refuse unknown fields everywhere, so a
    # misspelt filter (`?sever=web-01`) is a 422 rather than a silently unfiltered list.
    ARGUMENTS_PARSER = FlaskParser(unknown=None)
