"""The one error body, and the handlers that give it to every failure from any layer."""

import json
import logging

from flask import Response, request
from marshmallow import ValidationError, fields
from werkzeug.exceptions import HTTPException

from logs import LOGGER, request_id
from models import (
    AgentChanged,
    AgentNotFound,
    DatabaseUnavailable,
    IdempotencyKeyReused,
    SnapshotNotFound,
    WriteNotFlushed,
)
from schemas import AGENT

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
    """An HTTP error with the contract's code and a message written for the client."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.code = status
        self.error_code = code
        self.headers = headers or {}


def error_response(status, code, message, headers=None, field_messages=None):
    """The contract's error body; validation errors also list `details` and `fields`."""
    body = {"error": message, "code": code}
    if field_messages is not None:
        body["details"] = _details(field_messages)
        body["fields"] = field_messages
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")
    response.headers.extend(headers or {})
    return response


def validation_error_response(messages, schema=None):
    """400 validation_error listing every problem, each a sentence led by its field path.

    The sentences follow the field order of `schema`, the one that failed (an agent's if None).
    """
    field_messages = error_sentences(messages, schema)
    message = " ".join(_details(field_messages))
    return error_response(400, "validation_error", message, field_messages=field_messages)


def validation_message(messages, schema=None):
    """Every validation message as one text of sentences, as in an error body's `error`."""
    return " ".join(_details(error_sentences(messages, schema)))


def _details(field_messages):
    return [sentence for sentences in field_messages.values() for sentence in sentences]


def _http_error(error):
    if isinstance(error, ApiError):
        return error_response(error.code, error.error_code, error.description, error.headers)
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


def _unexpected_error(error):
    log.exception(
        "Unhandled error while serving %s %s", request.method, request.path,
        extra={"request_id": request_id()},
    )
    return error_response(500, "internal_error", UNEXPECTED)


def _database_unavailable(error):
    # SQLite's own words ("database or disk is full", "attempt to write a readonly database")
    # tell the operator what to fix; the client only learns that it may retry.
    log.warning(
        "Database unavailable while serving %s %s: %s", request.method, request.path, error,
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
    app.register_error_handler(
        SnapshotNotFound,
        lambda error: error_response(404, "not_found", f"No snapshot is named {error.args[0]}."),
    )
    app.register_error_handler(DatabaseUnavailable, _database_unavailable)
    app.register_error_handler(Exception, _unexpected_error)


def error_sentences(messages, schema=None):
    """Flatten Marshmallow's nested messages into {dotted.path: [sentences]}, in field order."""
    schema = schema or AGENT
    flat = []
    _flatten(messages, (), flat)
    flat.sort(key=lambda item: _order_key(schema, item[0]))
    result = {}
    for segments, message in flat:
        path = ".".join(str(segment) if segment != "" else '""' for segment in segments)
        sentence = f"{path} {message}" if path else message
        result.setdefault(path, []).append(sentence if sentence.endswith(".") else sentence + ".")
    return result


def _flatten(messages, prefix, out):
    if isinstance(messages, dict):
        for key, value in messages.items():
            segments = prefix if key == "_schema" else (*prefix, *_split_key(key))
            _flatten(value, segments, out)
    elif isinstance(messages, list):
        for message in messages:
            _flatten(message, prefix, out)
    else:
        out.append((prefix, messages))


def _split_key(key):
    if isinstance(key, int):
        return (key,)
    return tuple(
        int(part) if part.isascii() and part.isdigit() else part for part in str(key).split(".")
    )


def _order_key(schema, segments):
    key = []
    for segment in segments:
        if isinstance(segment, int):
            key.append((segment, ""))
            continue
        names = list(schema.fields) if schema is not None else []
        position = names.index(segment) if segment in names else len(names)
        key.append((position, segment))
        schema = _nested_schema(schema.fields.get(segment) if schema is not None else None)
    return key


def _nested_schema(field):
    if isinstance(field, fields.List):
        field = field.inner
    if isinstance(field, fields.Nested):
        return field.schema
    return None
