"""Liveness and readiness probes for supervisors and load balancers."""

from flask import Blueprint

import models
from errors import error_response
from routes.jsonio import json_response

bp = Blueprint("health", __name__)

OK = '{"status":"ok"}'


@bp.get("/healthz")
def healthz():
    """The process is up; touches nothing else."""
    return json_response(OK)


@bp.get("/readyz")
def readyz():
    """The database can be opened, read and written, and its disk has room."""
    if models.database_is_ready():
        return json_response(OK)
    return error_response(
        503, "not_ready", "The database cannot be opened or written, or its disk is full."
    )
