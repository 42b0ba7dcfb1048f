"""The OpenAPI 3.1 document, generated from the Marshmallow schemas the service validates with."""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

import schemas
from strict_fields import Bool, Integer, Number

TITLE = "Agents API"
VERSION = "1.0.0"

ERROR_DESCRIPTIONS = {
    304: "Not modified: the agent still has the ETag sent in If-None-Match.",
    400: "validation_error or invalid_json.",
    401: "unauthorized: a Bearer API key is missing or wrong.",
    404: "not_found.",
    405: "method_not_allowed.",
    409: "idempotency_conflict.",
    412: "precondition_failed: If-Match does not match the agent's ETag.",
    413: "payload_too_large.",
    415: "unsupported_media_type.",
    500: "internal_error.",
}
BODY_ERRORS = (400, 401, 413, 415, 500)


def build_spec(url_prefix=""):
    """The whole OpenAPI document as a dict."""
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[marshmallow_plugin],
        servers=[{"url": url_prefix or "/"}],
        info={"description": "Voice agents: greeting, call limits, speech and language models."},
    )
    _map_custom_fields(marshmallow_plugin)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in _component_schemas().items():
        spec.components.schema(name, schema=schema)
    for path, operations in _paths().items():
        spec.path(path=path, parameters=operations.pop("parameters", None), operations=operations)
    document = spec.to_dict()
    document["security"] = [{}, {"bearer": []}]
    return document


def _map_custom_fields(plugin):
    plugin.map_to_openapi_type(Bool, "boolean", None)
    plugin.map_to_openapi_type(Integer, "integer", None)
    plugin.map_to_openapi_type(Number, "number", None)

    def tool_shapes(self, field, **kwargs):
        if isinstance(field, schemas.Tool):
            return {"oneOf": [_ref("NestedTool"), _ref("FlatTool")]}
        return {}

    plugin.converter.add_attribute_function(tool_shapes)


def _component_schemas():
    return {
        "Agent": schemas.AgentSchema,
        "AgentPatch": schemas.AgentSchema(partial=True),
        "NestedTool": schemas.NestedToolSchema,
        "FlatTool": schemas.FlatToolSchema,
        "AgentEnvelope": schemas.AgentEnvelopeSchema,
        "AgentList": schemas.AgentListSchema,
        "Success": schemas.SuccessSchema,
        "Status": schemas.StatusSchema,
        "Error": schemas.ErrorSchema,
    }


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name):
    return {"application/json": {"schema": _ref(name)}}


def _ok(description, name, headers=None):
    response = {"description": description, "content": _json(name)}
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses):
    return {
        str(status): {"description": ERROR_DESCRIPTIONS[status], "content": _json("Error")}
        for status in statuses
    }


def _header(name, description, schema=None):
    return {"in": "header", "name": name, "required": False, "description": description,
            "schema": schema or {"type": "string"}}


AGENT_ID = {
    "in": "path",
    "name": "agent_id",
    "required": True,
    "description": "The agent's id, a lowercase UUID.",
    "schema": {"type": "string", "format": "uuid"},
}
ETAG_HEADER = {"ETag": {"description": "The agent's version.", "schema": {"type": "string"}}}


def _paths():
    return {
        "/agents": {
            "get": {
                "summary": "List agents, newest first.",
                "parameters": [{"in": "query", "schema": schemas.ListQuerySchema}],
                "responses": {"200": _ok("The agents.", "AgentList"), **_errors(400, 401, 500)},
            },
            "post": {
                "summary": "Create an agent.",
                "parameters": [_header(
                    "Idempotency-Key",
                    "Makes a retried create safe: a repeat within 24 hours returns the first answer.",
                    {"type": "string", "pattern": schemas.IDEMPOTENCY_KEY_PATTERN},
                )],
                "requestBody": {"required": True, "content": _json("Agent")},
                "responses": {
                    "201": _ok("The new agent.", "AgentEnvelope", {
                        **ETAG_HEADER,
                        "Location": {"description": "The agent's URL.", "schema": {"type": "string"}},
                    }),
                    **_errors(409, *BODY_ERRORS),
                },
            },
        },
        "/agents/{agent_id}": {
            "parameters": [AGENT_ID],
            "get": {
                "summary": "Get an agent.",
                "parameters": [_header("If-None-Match", "Answer 304 while the ETag still holds.")],
                "responses": {
                    "200": _ok("The agent.", "AgentEnvelope", ETAG_HEADER),
                    "304": {"description": ERROR_DESCRIPTIONS[304], "headers": ETAG_HEADER},
                    **_errors(401, 404, 500),
                },
            },
            "patch": {
                "summary": "Update an agent with a JSON merge patch (RFC 7396).",
                "parameters": [_header("If-Match", "Refuse the change if the agent changed since.")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/merge-patch+json": {"schema": _ref("AgentPatch")},
                        "application/json": {"schema": _ref("AgentPatch")},
                    },
                },
                "responses": {
                    "200": _ok("The updated agent.", "AgentEnvelope", ETAG_HEADER),
                    **_errors(404, 412, *BODY_ERRORS),
                },
            },
            "delete": {
                "summary": "Delete an agent.",
                "parameters": [_header("If-Match", "Refuse the delete if the agent changed since.")],
                "responses": {
                    "200": _ok("The agent is gone.", "Success"),
                    **_errors(401, 404, 412, 500),
                },
            },
        },
    }

