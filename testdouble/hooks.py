"""Test mode's work on every request: its namespace, an injected fault, and a journal entry."""

import hashlib
import logging
import os
import time
from pathlib import Path

from flask import current_app, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from auth import is_api_path, is_test_path
from config import ConfigError
from errors import ApiError, error_response, failure_response
from logs import LOGGER, request_id
from models import DEFAULT_NAMESPACE, AgentIdsTaken
from routes.jsonio import PARSED_BODY, parse_json
from secret_fields import masked_secrets
from sentences import validation_message
from store import hold_writes, utc_timestamp
from testdouble import state
from testdouble.schemas import (
    NAMESPACE_HEADER,
    FixturesSchema,
    is_name,
    namespace_errors,
    taken_id_errors,
)

REDACTED = "[redacted]"
# The largest body the journal keeps; a larger one is recorded as its size and type only.
LARGEST_JOURNALED_BODY = 64 * 1024
# Which process answered: lets a test show that one worker sees what another one stored.
WORKER_HEADER = "X-Agents-Worker"
# Where WSGI puts the namespace header, which request.headers would look up there.
NAMESPACE_ENVIRON_KEY = "HTTP_" + NAMESPACE_HEADER.upper().replace("-", "_")
FIXTURES = FixturesSchema()
log = logging.getLogger(f"{LOGGER}.testdouble")


def install(app):
    """Give every request a namespace, apply faults and keep the journal."""
    # One hook each way, each reading `request` once: every request of test mode runs them.
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_never_left_open)


def _start():
    # `request` and `g` are proxies, each look-up through them a context variable's: read once.
    sent, kept = request._get_current_object(), g._get_current_object()
    kept.received_at = utc_timestamp()
    path = sent.path
    api = kept.api_request = is_api_path(path)
    if not (api or is_test_path(path)):
        return None
    namespace = sent.environ.get(NAMESPACE_ENVIRON_KEY, DEFAULT_NAMESPACE)
    if not is_name(namespace):
        raise ValidationError(namespace_errors())
    kept.namespace = namespace
    if not api:
        return None
    answer = _inject_fault(sent.method, path, namespace, kept)
    if answer is None:
        # The request's write, if it makes one, commits with its journal entry in _finish.
        kept.held_writes = hold_writes()
    return answer


def _inject_fault(method, path, namespace, kept):
    fault = state.take_fault(method, path, namespace)
    if fault is None:
        return None
    if fault["after_commit"]:
        kept.lost_response = fault
        return None
    return _fault_response(fault)


def _fault_response(fault):
    time.sleep(fault["delay_ms"] / 1000)
    headers = {} if fault["retry_after"] is None else {"Retry-After": str(fault["retry_after"])}
    return error_response(fault["status"], fault["code"], fault["error"], headers)


def _finish(response):
    kept = g._get_current_object()
    # A request refused before _start (a 401, a 429) has neither a fault nor a namespace.
    if kept.get("api_request"):
        response = _end(response, kept)
    response.headers[WORKER_HEADER] = str(os.getpid())
    return response


def _end(response, kept):
    """Commit the request's write with its journal entry, then answer any fault that waited
    for the commit, journaled after its delay as every other answer is."""
    namespace = kept.get("namespace")
    held = kept.pop("held_writes", None)
    fault = kept.pop("lost_response", None)
    if held is not None:
        status = response.status_code
        # In the write's transaction an entry that cannot be stored fails the commit too (on
        # PostgreSQL a failed statement leaves nothing to commit): then nothing is stored, and
        # the answer says so, rather than 201 for a write that was rolled back.
        entry = None if fault else lambda: state.record_request(_journal_entry(status), namespace)
        try:
            if held.commit(entry) and fault is None:
                return response
        except Exception as error:  # the write is not stored: answered as its failure
            response, fault = failure_response(error), None
    if fault is not None:
        response = _fault_response(fault)
    # A request refused before its namespace was resolved (401 without a valid key) is kept
    # in no journal: who has no key must not write into a suite's journal, nor grow it.
    if namespace is not None:
        _journal(response.status_code, namespace)
    return response


def _never_left_open(error=None):
    """Commit what a request wrote if it ended without _finish; a finished one holds nothing."""
    held = g.pop("held_writes", None)
    if held is not None:
        held.commit()


def _journal(status, namespace):
    """Record the request; while the database is unavailable the answer stands without its
    entry, since no journal can be written then, rather than turning into a 500."""
    try:
        state.record_request(_journal_entry(status), namespace)
    except Exception as error:
        cause = current_app.extensions["store"].engine.unavailability(error)
        if cause is None:
            raise
        log.warning(
            "The journal could not record %s %s: %s",
            request.method,
            request.path,
            cause,
            extra={"request_id": request_id()},
        )


def _journal_entry(status):
    sent = request._get_current_object()  # once, rather than through the proxy for each part
    return {
        "method": sent.method,
        "path": sent.path,
        # No query string, nothing to parse: most API requests have none.
        "query": sent.args.to_dict(flat=False) if sent.query_string else {},
        "headers": {
            name: REDACTED if name.lower() == "authorization" else value
            for name, value in sent.headers
        },
        "body": _recorded_body(sent),
        "status": status,
        "received_at": g.get("received_at") or utc_timestamp(),
    }


def _recorded_body(sent):
    """The body as parsed JSON with its secrets redacted; else only its size and type.

    A body that does not parse is never kept as text: no pattern can find every way a secret
    may be written in it (an escaped key, a form, single quotes, another encoding).
    """
    try:
        raw = sent.get_data(cache=True)
    except HTTPException:  # larger than the service accepts, so never read
        return None
    if not raw:
        return None
    kind = sent.mimetype or "no declared type"
    if len(raw) > LARGEST_JOURNALED_BODY:
        return f"[not kept: {len(raw)} bytes of {kind}, over {LARGEST_JOURNALED_BODY}]"
    try:
        body = sent.environ[PARSED_BODY] if PARSED_BODY in sent.environ else parse_json(raw)
    except ApiError:
        return f"[not kept: {len(raw)} bytes of {kind}, not JSON]"
    # Read from the parsed value, so an escaped name or another encoding hides nothing.
    return masked_secrets(body, REDACTED)


def read_fixtures_file(path):
    """The agents of an AGENTS_FIXTURES file, checked, and the digest of its content."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"AGENTS_FIXTURES: {path} cannot be read ({error.strerror}).") from None
    try:
        return FIXTURES.load(parse_json(raw))["agents"], hashlib.sha256(raw).hexdigest()
    except ApiError:
        raise ConfigError(f"AGENTS_FIXTURES: {path} is not a JSON object.") from None
    except ValidationError as error:
        problems = validation_message(error.messages, getattr(error, "schema", None))
        raise ConfigError(
            f"AGENTS_FIXTURES: {path} is not a valid fixtures file. {problems}"
        ) from None


def fixtures_loader(path):
    """What loads the file's agents into the default namespace once the tables exist.

    Every process loads it, but only the first to get there for this content stores it.
    """
    agents, digest = read_fixtures_file(path)

    def load():
        try:
            state.load_agents_once(agents, digest)
        except AgentIdsTaken as error:
            problems = validation_message(taken_id_errors(error.indexes))
            raise ConfigError(f"AGENTS_FIXTURES: {path} cannot be loaded. {problems}") from None

    return load
