"""Liveness and readiness probes for supervisors and load balancers."""

from flask import Blueprint, current_app

from errors import error_response
from openapi import operation
from routes.jsonio import json_response
from schemas import StatusSchema

bp = Blueprint("health", __name__)
bp.tag = "health"

OK = '{"status":"ok"}'


@bp.get("/healthz")
@operation(ok=(200, "The process is up.", StatusSchema, None))
def healthz():
    """The process is up; touches nothing else."""
    return json_response(OK)


@bp.get("/readyz")
@operation(ok=(200, "Ready to serve.", StatusSchema, None), errors=(503,))
def readyz():
    """The database can be opened, read and written, and its disk has room."""
    if current_app.extensions["store"].is_ready():
        return json_response(OK)
    return error_response(
        503, "not_ready", "The database cannot be opened or written, or its disk is full."
    )
