"""Test mode's work on every request: its namespace, an injected fault, and a journal entry.

Installed only when AGENTS_TEST_MODE is on, so the service pays nothing for it otherwise.
"""

import hashlib
import os
import re
import time
from pathlib import Path

from flask import g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

import models
from auth import is_api_path, is_test_path
from config import ConfigError
from errors import ApiError, error_response, validation_message
from routes.jsonio import parse_json
from testing_schemas import (
    NAMESPACE_HEADER,
    FixturesSchema,
    is_name,
    namespace_errors,
    taken_id_errors,
)

REDACTED = "[redacted]"
# A secret in a body that is not valid JSON: the quoted value, or all that follows if unclosed.
SECRET_IN_TEXT = re.compile(r'("webhook_secret"\s*:\s*)"(?:[^"\\]|\\.?)*"?')
# Which process answered: lets a test show that one worker sees what another one stored.
WORKER_HEADER = "X-Agents-Worker"
FIXTURES = FixturesSchema()


def install(app):
    """Give every request a namespace, apply faults and keep the journal; load AGENTS_FIXTURES."""
    app.before_request(_resolve_namespace)
    app.before_request(_inject_fault)
    app.after_request(_finish)
    if app.config["FIXTURES"]:
        with models.db.connection_context():
            load_fixtures_file(app.config["FIXTURES"])


def _resolve_namespace():
    g.received_at = models.utc_timestamp()
    if not (is_api_path(request.path) or is_test_path(request.path)):
        return
    namespace = _requested_namespace()
    if namespace is None:
        raise ValidationError(namespace_errors())
    g.namespace = namespace


def _requested_namespace():
    namespace = request.headers.get(NAMESPACE_HEADER, models.DEFAULT_NAMESPACE)
    return namespace if is_name(namespace) else None


def _inject_fault():
    if not is_api_path(request.path):
        return None
    fault = models.take_fault(request.method, request.path, g.namespace)
    if fault is None:
        return None
    if fault["after_commit"]:
        g.lost_response = fault
        return None
    return _fault_response(fault)


def _fault_response(fault):
    time.sleep(fault["delay_ms"] / 1000)
    headers = {} if fault["retry_after"] is None else {"Retry-After": str(fault["retry_after"])}
    return error_response(fault["status"], fault["code"], fault["error"], headers)


def _finish(response):
    if is_api_path(request.path):
        fault = g.pop("lost_response", None)
        if fault is not None:
            response = _fault_response(fault)
        # A request refused before its namespace was resolved (401) still has one to go to.
        namespace = g.get("namespace") or _requested_namespace()
        if namespace is not None:
            models.record_request(_journal_entry(response.status_code), namespace)
    response.headers[WORKER_HEADER] = str(os.getpid())
    return response


def _journal_entry(status):
    return {
        "method": request.method,
        "path": request.path,
        "query": request.args.to_dict(flat=False),
        "headers": {
            name: REDACTED if name.lower() == "authorization" else value
            for name, value in request.headers.items()
        },
        "body": _recorded_body(),
        "status": status,
        "received_at": g.get("received_at") or models.utc_timestamp(),
    }


def _recorded_body():
    try:
        raw = request.get_data(cache=True)
    except HTTPException:  # larger than the service accepts, so never read
        return None
    if not raw:
        return None
    try:
        return redact_secrets(parse_json(raw))
    except ApiError:
        return SECRET_IN_TEXT.sub(rf'\1"{REDACTED}"', raw.decode("utf-8", "replace"))


def redact_secrets(value):
    """The JSON value with every non-null `webhook_secret`, at any depth, replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key == "webhook_secret" and item is not None else redact_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value


def load_fixtures_file(path):
    """Load an AGENTS_FIXTURES file into the default namespace, once per database and content."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"AGENTS_FIXTURES: {path} cannot be read ({error.strerror}).") from None
    try:
        agents = FIXTURES.load(parse_json(raw))["agents"]
        models.load_agents_once(agents, hashlib.sha256(raw).hexdigest())
    except ApiError:
        raise ConfigError(f"AGENTS_FIXTURES: {path} is not a JSON object.") from None
    except ValidationError as error:
        problems = validation_message(error.messages, getattr(error, "schema", None))
        raise ConfigError(f"AGENTS_FIXTURES: {path} is not a valid fixtures file. {problems}") from None
    except models.AgentIdsTaken as error:
        problems = validation_message(taken_id_errors(error.indexes))
        raise ConfigError(f"AGENTS_FIXTURES: {path} cannot be loaded. {problems}") from None
