"""The OpenAPI 3.1 document, generated from the Marshmallow schemas the service validates with."""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

import schemas
import testing_schemas
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
TEST_MODE_NOTE = "Test mode only (AGENTS_TEST_MODE=1); acts on the request's namespace."


def build_spec(url_prefix="", test_mode=False):
    """The whole OpenAPI document as a dict; with `test_mode`, the /_test routes too."""
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
    components = _component_schemas()
    paths = _paths()
    if test_mode:
        components.update(_test_component_schemas())
        paths = _with_namespace_header(paths)
        paths.update(_test_paths())
    for name, schema in components.items():
        spec.components.schema(name, schema=schema)
    servers = {path: operations.pop("servers") for path, operations in paths.items()
               if "servers" in operations}
    for path, operations in paths.items():
        spec.path(path=path, parameters=operations.pop("parameters", None), operations=operations)
    document = spec.to_dict()
    for path, path_servers in servers.items():
        document["paths"][path]["servers"] = path_servers
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



def _test_component_schemas():
    return {
        "Reset": testing_schemas.ResetSchema,
        "Fixtures": testing_schemas.FixturesSchema,
        "Fault": testing_schemas.FaultSchema,
        "FaultEnvelope": testing_schemas.FaultEnvelopeSchema,
        "FaultList": testing_schemas.FaultListSchema,
        "Journal": testing_schemas.JournalSchema,
        "Snapshot": testing_schemas.SnapshotSchema,
        "SnapshotEnvelope": testing_schemas.SnapshotEnvelopeSchema,
        "Clock": testing_schemas.ClockSchema,
        "AgentsLoaded": testing_schemas.AgentsLoadedSchema,
    }


NAMESPACE = _header(
    testing_schemas.NAMESPACE_HEADER,
    "Scopes the request to a namespace (default: default).",
    {"type": "string", "pattern": testing_schemas.NAME.pattern},
)


def _with_namespace_header(paths):
    """Every operation takes the namespace header, and answers 400 when it is malformed."""
    scoped = {}
    for path, operations in paths.items():
        scoped[path] = {"parameters": [*operations.get("parameters", ()), NAMESPACE]}
        for method, operation in operations.items():
            if method in ("parameters", "servers"):
                scoped[path][method] = operation
                continue
            responses = {**_errors(400), **operation["responses"]}
            scoped[path][method] = {**operation, "responses": dict(sorted(responses.items()))}
    return scoped


def _test_operation(summary, ok_status, ok, body=None, errors=(400, 401, 500)):
    operation = {
        "summary": summary,
        "description": TEST_MODE_NOTE,
        "tags": ["test mode"],
        "responses": {str(ok_status): ok, **_errors(*errors)},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


def _test_paths():
    success = _ok("Done.", "Success")
    paths = {
        "/_test/reset": {"post": {
            **_test_operation("Forget the namespace's state; a seed makes ids repeatable.", 200, success),
            "requestBody": {"required": False, "content": _json("Reset")},
        }},
        "/_test/fixtures": {"post": _test_operation(
            "Load agents as given, all or none.", 201, _ok("The loaded agents.", "AgentsLoaded"),
            "Fixtures", (400, 401, 413, 415, 500),
        )},
        "/_test/requests": {
            "get": {
                **_test_operation("The journal of API requests, oldest first.", 200,
                                  _ok("The journal.", "Journal")),
                "parameters": [{"in": "query", "schema": testing_schemas.JournalQuerySchema}],
            },
            "delete": _test_operation("Empty the journal.", 200, success, errors=(401, 500)),
        },
        "/_test/faults": {
            "post": _test_operation("Make the next matching API requests fail.", 201,
                                    _ok("The fault.", "FaultEnvelope"), "Fault", (400, 401, 413, 415, 500)),
            "get": _test_operation("The faults still waiting.", 200, _ok("The faults.", "FaultList"),
                                   errors=(401, 500)),
            "delete": _test_operation("Delete every fault.", 200, success, errors=(401, 500)),
        },
        "/_test/snapshots": {"post": _test_operation(
            "Save the namespace's state under a name.", 201, _ok("Saved.", "SnapshotEnvelope"),
            "Snapshot", (400, 401, 413, 415, 500),
        )},
        "/_test/snapshots/{name}/restore": {
            "parameters": [{"in": "path", "name": "name", "required": True,
                            "schema": {"type": "string"}}],
            "post": _test_operation("Put a saved state back exactly.", 200, success, errors=(401, 404, 500)),
        },
        "/_test/clock": {
            "put": _test_operation("Freeze the clock of created_at and updated_at.", 200,
                                   _ok("The frozen time.", "Clock"), "Clock", (400, 401, 413, 415, 500)),
            "delete": _test_operation("Let the clock run again.", 200, success, errors=(401, 500)),
        },
    }
    # Never under AGENTS_URL_PREFIX, whatever the document's own server says.
    return {
        path: {**operations, "servers": [{"url": "/"}]}
        for path, operations in _with_namespace_header(paths).items()
    }
