"""The one error body, and the handlers that give it to every failure from any layer."""

import json
import logging

from flask import Response, current_app, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from logs import LOGGER, request_id
from models import AgentChanged, AgentNotFound, IdempotencyKeyReused
from sentences import all_sentences, error_sentences
from storage import DatabaseUnavailable, WriteNotFlushed

log = logging.getLogger(f"{LOGGER}.errors")

CODES_BY_STATUS = {
    400: "invalid_json",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "idempotency_conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}
UNEXPECTED = "The server hit an unexpected error."
UNAVAILABLE = (
    "The database cannot be opened or written right now; nothing was changed. Try again later."
)
NOT_FLUSHED = (
    "The change was made, but the disk did not confirm it, so it may not survive a power cut. "
    "Read it back before you retry."
)


class ApiError(HTTPException):
    """An HTTP error with the contract's code and a message written for the client.

    `extra` holds members of the body beyond the shared ones (a 429's `retry_after`).
    """

    def __init__(self, status, code, message, headers=None, extra=None):
        super().__init__(message)
        self.code = status
        self.error_code = code
        self.headers = headers or {}
        self.extra = extra or {}


def error_response(status, code, message, headers=None, field_messages=None, extra=None):
    """The contract's error body; validation errors also list `param`, `details` and `fields`.

    `type` repeats `code` and `param` names the first failing field: the platform's SDK reads
    those two into its error's `code` and `param`.
    """
    body = {"error": message, "code": code, "type": code}
    if field_messages is not None:
        first = next(iter(field_messages), "")
        if first:
            body["param"] = first
        body["details"] = all_sentences(field_messages)
        body["fields"] = field_messages
    body.update(extra or {})
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")
    response.headers.extend(headers or {})
    return response


def validation_error_response(messages, schema=None):
    """400 validation_error listing every problem, each a sentence led by its field path.

    The sentences follow the field order of `schema`, the one that failed (an agent's if None).
    """
    field_messages = error_sentences(messages, schema)
    message = " ".join(all_sentences(field_messages))
    return error_response(400, "validation_error", message, field_messages=field_messages)


def _http_error(error):
    if isinstance(error, ApiError):
        return error_response(
            error.code, error.error_code, error.description, error.headers, extra=error.extra
        )
    status = error.code or 500
    kept = {
        name: value
        for name, value in error.get_response().headers.items()
        if name in ("Allow", "WWW-Authenticate", "Retry-After")
    }
    return error_response(status, CODES_BY_STATUS.get(status, "error"), _describe(error), kept)


def _describe(error):
    status = error.code
    if status == 404:
        return f"No route matches {request.path}."
    if status == 405:
        allowed = error.get_response().headers.get("Allow", "")
        return f"{request.method} is not allowed on {request.path}; use one of: {allowed}."
    if status == 413:
        return "The request body is larger than this service accepts."
    if status == 400:
        return "The request body is not valid JSON."
    if status == 500:
        return UNEXPECTED
    return error.description.rstrip(".") + "."


def failure_response(error):
    """The answer to an error no handler takes: 503 while the database is unavailable, else 500."""
    cause = current_app.extensions["store"].engine.unavailability(error)
    if cause is not None:
        return _database_unavailable(error, cause)
    log.exception(
        "Unhandled error while serving %s %s",
        request.method,
        request.path,
        extra={"request_id": request_id()},
    )
    return error_response(500, "internal_error", UNEXPECTED)


def _database_unavailable(error, cause=None):
    # The engine's own words ("database or disk is full", "attempt to write a readonly
    # database") tell the operator what to fix; the client only learns that it may retry.
    log.warning(
        "Database unavailable while serving %s %s: %s",
        request.method,
        request.path,
        cause or error,
        extra={"request_id": request_id()},
    )
    message = NOT_FLUSHED if isinstance(error, WriteNotFlushed) else UNAVAILABLE
    return error_response(503, "database_unavailable", message, {"Retry-After": "1"})


def register_error_handlers(app):
    app.register_error_handler(
        ValidationError,
        lambda error: validation_error_response(error.messages, getattr(error, "schema", None)),
    )
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(
        AgentNotFound, lambda error: error_response(404, "not_found", "Agent not found.")
    )
    app.register_error_handler(
        AgentChanged,
        lambda error: error_response(
            412,
            "precondition_failed",
            "The agent has changed since the ETag in If-Match; fetch it again and retry.",
        ),
    )
    app.register_error_handler(
        IdempotencyKeyReused,
        lambda error: error_response(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request body.",
        ),
    )
    app.register_error_handler(DatabaseUnavailable, _database_unavailable)
    app.register_error_handler(Exception, failure_response)
