"""What a valid request to the /_test routes of test mode is: every rule and its message.

Fixture agents are agents: every rule of AgentSchema applies to them, and only `id`,
`created_at` and `updated_at` may be given besides.
"""

import re

from marshmallow import ValidationError, fields, post_load, validates

from schemas import AgentSchema, StoredAgentsSchema
from strict_fields import (
    TIMESTAMP_PATTERN,
    Bool,
    Integer,
    QuerySchema,
    StrictSchema,
    Text,
    between,
    length,
    one_of,
    utc_timestamp,
)

NAMESPACE_HEADER = "X-Agents-Namespace"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NAME_RULE = "must be 1 to 64 letters, digits, underscores, dots or hyphens."
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ERROR_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
# Below gunicorn's 30-second worker timeout, so a delayed answer is never a killed worker.
MAX_DELAY_MS = 25_000


def is_name(value):
    """True for a namespace or snapshot name."""
    return isinstance(value, str) and NAME.match(value) is not None


def namespace_errors():
    """The validation messages of a bad X-Agents-Namespace header."""
    return {NAMESPACE_HEADER: [NAME_RULE]}


def _name(value):
    if not is_name(value):
        raise ValidationError(NAME_RULE)


def _path_pattern(value):
    rest = value.replace("{id}", "")
    if not value.startswith("/") or any(mark in rest for mark in "{}?#"):
        raise ValidationError(
            "must be a path such as /assistants or /agents/{id}, without a query string."
        )
    # A placeholder within a segment would need a search with backtracking to match; as a whole
    # segment it is compared in one step.
    if any("{id}" in segment and segment != "{id}" for segment in value.split("/")):
        raise ValidationError("must use {id} only as a whole path segment, as in /agents/{id}.")


def _error_code(value):
    if not ERROR_CODE.match(value):
        raise ValidationError("must be 1 to 64 lowercase letters, digits or underscores.")


def _times(value):
    if value != -1 and value < 1:
        raise ValidationError("must be at least 1, or -1 for until the fault is deleted.")


class ResetSchema(StrictSchema):
    """The optional body of POST /_test/reset."""

    seed = Integer(
        validate=between(-(2**63), 2**63 - 1),
        metadata={
            "description": "Makes every id generated from now on a function of the seed and a "
            "counter.",
        },
    )


class ClockSchema(StrictSchema):
    """The body of PUT /_test/clock."""

    now = Text(required=True, validate=utc_timestamp, metadata={"pattern": TIMESTAMP_PATTERN})


class FaultSchema(StrictSchema):
    """A fault: the next `times` matching API requests answer `status` instead."""

    method = Text(required=True, validate=one_of(METHODS))
    path = Text(
        required=True, validate=[length(1, 2048), _path_pattern], metadata={"pattern": "^/[^?#]*$"}
    )
    status = Integer(required=True, validate=between(400, 599))
    error = Text(validate=length(1, 1000))
    code = Text(
        load_default="injected_fault",
        validate=_error_code,
        metadata={"pattern": ERROR_CODE.pattern},
    )
    delay_ms = Integer(load_default=0, validate=between(0, MAX_DELAY_MS))
    times = Integer(
        load_default=1,
        validate=_times,
        metadata={
            "description": "How many requests it answers, -1 for until deleted; in a listing, "
            "the uses left.",
        },
    )
    retry_after = Integer(allow_none=True, load_default=None, validate=between(0, 86_400))
    after_commit = Bool(
        load_default=False,
        metadata={
            "description": "Carry the request out and commit it, then answer with the fault: "
            "a lost response.",
        },
    )

    def __init__(self, api_roots=("/assistants", "/agents"), **kwargs):
        super().__init__(**kwargs)
        self.api_roots = api_roots

    @validates("path")
    def _check_api_path(self, value, **kwargs):
        path = value.rstrip("/")
        if not any(path == root or path.startswith(root + "/") for root in self.api_roots):
            roots = " or ".join(self.api_roots)
            raise ValidationError(
                f"must be a path of the API, {roots} or below, as the client sends it "
                f"(such as {self.api_roots[0]}/{{id}})."
            )

    @post_load
    def _default_error(self, data, **kwargs):
        data.setdefault(
            "error", f"Injected fault: {data['status']} for {data['method']} {data['path']}."
        )
        return data


class JournalQuerySchema(QuerySchema):
    """The filters of GET /_test/requests."""

    method = Text(validate=one_of(METHODS))
    path = Text(validate=[length(1, 2048), _path_pattern])


class JournalEntrySchema(StrictSchema):
    """One request as the journal keeps it."""

    method = fields.String(required=True)
    path = fields.String(required=True)
    query = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={
            "description": "Authorization's value is redacted.",
        },
    )
    body = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "Parsed JSON with secrets redacted; null when empty or over the "
            "size limit; for a body that is not JSON or over 64 KiB, a string giving its size and "
            "type only.",
        },
    )
    status = fields.Integer(required=True)
    received_at = fields.String(required=True, metadata={"format": "date-time"})


class SnapshotSchema(StrictSchema):
    """The body of POST /_test/snapshots."""

    name = Text(required=True, validate=_name, metadata={"pattern": NAME.pattern})


class FixturesSchema(StoredAgentsSchema):
    """The body of POST /_test/fixtures, and the content of an AGENTS_FIXTURES file."""


def taken_id_errors(indexes):
    """The messages for fixture agents whose ids stored agents already have."""
    message = "is already the id of a stored agent; reset the namespace or choose another id."
    return {"agents": {index: {"id": [message]} for index in indexes}}


class FaultEnvelopeSchema(StrictSchema):
    fault = fields.Nested(FaultSchema, required=True)


class FaultListSchema(StrictSchema):
    faults = fields.List(fields.Nested(FaultSchema), required=True)


class JournalSchema(StrictSchema):
    requests = fields.List(fields.Nested(JournalEntrySchema), required=True)


class SnapshotSavedSchema(StrictSchema):
    name = fields.String(required=True)
    agents = fields.Integer(required=True, metadata={"description": "How many agents it holds."})


class SnapshotEnvelopeSchema(StrictSchema):
    snapshot = fields.Nested(SnapshotSavedSchema, required=True)


class AgentsLoadedSchema(StrictSchema):
    agents = fields.List(fields.Nested(AgentSchema), required=True)
