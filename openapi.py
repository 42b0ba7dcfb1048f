"""The OpenAPI 3.1 document, built from the app's own routes and the schemas they validate with.

A view's docstring is its operation's summary, and `operation(...)` beside its route says what
it takes and answers. The errors that every operation of a kind can meet (500, 503, 401 when
keys are configured, 429 when rate limits are on) are added here, so no view lists them.
Providers are listed as the catalog of the app being documented has them.
"""

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

import catalog
import schemas
import tool_schemas
from strict_fields import Bool, Integer, Number

TITLE = "Agents API"
VERSION = "1.0.0"

ERROR_DESCRIPTIONS = {
    400: "validation_error or invalid_json.",
    401: "unauthorized: a Bearer API key is missing or wrong.",
    404: "not_found.",
    409: "idempotency_conflict.",
    412: "precondition_failed: If-Match does not match the agent's ETag.",
    413: "payload_too_large.",
    415: "unsupported_media_type.",
    429: "rate_limited: too many requests; wait Retry-After seconds.",
    500: "internal_error.",
    503: "database_unavailable: the storage cannot be used right now; retry after Retry-After.",
}
BODY_ERRORS = (400, 413, 415)
COMPONENT = "#/components/schemas/"
PATCH = "Patch"
# <agent_id> and <path:name> in a Flask rule are {agent_id} and {name} in OpenAPI.
FLASK_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed in a window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in this window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "When this window ends, in unix seconds.",
        "schema": {"type": "integer"},
    },
}


def operation(
    ok,
    body=None,
    query=None,
    headers=(),
    errors=(),
    content_types=None,
    path_parameters=None,
    not_modified=None,
    merge_patch=False,
):
    """Describe a view for the OpenAPI document.

    `ok` is (status, description, schema, response headers); `body` the request body's schema
    (sent as `content_types`, application/json by default), taken as a JSON merge patch of it
    with `merge_patch`; `query` a schema of query parameters; `headers` header parameters (see
    `header`); `errors` the statuses the view itself answers besides its success;
    `not_modified` the description of a 304.
    """

    def describe(view):
        view.openapi = {
            "ok": ok,
            "body": body,
            "query": query,
            "headers": list(headers),
            "errors": tuple(errors),
            "content_types": content_types or ("application/json",),
            "path_parameters": path_parameters or {},
            "not_modified": not_modified,
            "merge_patch": merge_patch,
        }
        return view

    return describe


def header(name, description, schema=None):
    """A request header parameter."""
    return {
        "in": "header",
        "name": name,
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def build_spec(app):
    """The whole OpenAPI document of `app` as a dict."""
    with catalog.activated(app.extensions["catalog"]):
        return _build_spec(app)


def _build_spec(app):
    plugin = MarshmallowPlugin(schema_name_resolver=component_name)
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[plugin],
        servers=[{"url": app.config["URL_PREFIX"] or "/"}],
        info={"description": "Voice agents: greeting, call limits, speech and language models."},
    )
    _map_custom_fields(plugin)
    secured = bool(app.config["API_KEYS"])
    if secured:
        spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    _register(spec, schemas.ErrorSchema)
    for tool in (tool_schemas.NestedToolSchema, tool_schemas.FlatToolSchema):
        _register(spec, tool)
    paths = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        view = app.view_functions[rule.endpoint]
        described = getattr(view, "openapi", None)
        if described is None:
            continue
        path, under_prefix = _openapi_path(rule.rule, app.config["URL_PREFIX"])
        blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
        entry = paths.setdefault(
            path,
            {
                "under_prefix": under_prefix,
                "operations": {},
                "parameters": [],
                "protected": getattr(blueprint, "protected", False),
            },
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            entry["operations"][method.lower()] = _operation(
                spec, app, rule, view, described, secured
            )
        entry["parameters"] = _path_parameters(described["path_parameters"])
    # Features switched on as a whole (test mode) add what they put on every operation.
    for hook in app.extensions.get("openapi_hooks", ()):
        hook(paths)
    for path, entry in paths.items():
        spec.path(path=path, parameters=entry["parameters"] or None, operations=entry["operations"])
    document = spec.to_dict()
    _add_merge_patch_components(document)
    for path, entry in paths.items():
        if not entry["under_prefix"]:
            # Never under AGENTS_URL_PREFIX, whatever the document's own server says.
            document["paths"][path]["servers"] = [{"url": "/"}]
    return document


def component_name(schema):
    """A schema's component name: its class name without `Schema`."""
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def _add_merge_patch_components(document):
    """For each `XPatch` an operation names, a component for merge patches (RFC 7396) of X.

    In a patch every member may be left out, and one that is optional may be null, which
    resets it to its default; objects merge member by member, so their members are patches
    too, while arrays are replaced whole.
    """
    components = document["components"]["schemas"]
    wanted = [
        name.removesuffix(PATCH)
        for name in _referenced_components(document.get("paths", {}))
        if name.endswith(PATCH)
    ]
    for name in wanted:
        _patch_component(components, name)


def _referenced_components(value):
    if isinstance(value, dict):
        ref = value.get("$ref", "")
        if ref.startswith(COMPONENT):
            yield ref[len(COMPONENT) :]
        for item in value.values():
            yield from _referenced_components(item)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced_components(item)


def _patch_component(components, name):
    patch_name = name + PATCH
    if patch_name in components:
        return patch_name
    original = components[name]
    patch = {key: value for key, value in original.items() if key != "required"}
    components[patch_name] = patch  # before the members, so a cycle ends here
    required = set(original.get("required", ()))
    patch["properties"] = {
        member: _patch_member(components, schema, nullable=member not in required)
        for member, schema in original.get("properties", {}).items()
    }
    return patch_name


def _accepts_null(schema):
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def _patch_member(components, schema, nullable):
    if schema.get("readOnly"):
        return schema
    options = schema["anyOf"] if "anyOf" in schema else [schema]
    patched = []
    for option in options:
        ref = option.get("$ref", "")
        target = components.get(ref[len(COMPONENT) :]) if ref.startswith(COMPONENT) else None
        if target is not None and target.get("type") == "object":
            option = {"$ref": COMPONENT + _patch_component(components, ref[len(COMPONENT) :])}
        patched.append(option)
    if nullable and not any(_accepts_null(option) for option in patched):
        kind = patched[0].get("type") if len(patched) == 1 else None
        if isinstance(kind, (str, list)):
            member = {**patched[0], "type": [*([kind] if isinstance(kind, str) else kind), "null"]}
            if "enum" in member:
                member["enum"] = [*member["enum"], None]
            return member
        patched.append({"type": "null"})
    if len(patched) == 1:
        return patched[0]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**rest, "anyOf": patched}


def _register(spec, schema):
    name = component_name(schema)
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _map_custom_fields(plugin):
    plugin.map_to_openapi_type(Bool, "boolean", None)
    plugin.map_to_openapi_type(Integer, "integer", None)
    plugin.map_to_openapi_type(Number, "number", None)

    def tool_shapes(self, field, **kwargs):
        if isinstance(field, tool_schemas.Tool):
            return {
                "oneOf": [_ref(tool_schemas.NestedToolSchema), _ref(tool_schemas.FlatToolSchema)]
            }
        return {}

    def catalog_providers(self, field, **kwargs):
        kind = field.metadata.get("catalog")
        return {"enum": list(catalog.current().ids(kind))} if kind else {}

    plugin.converter.add_attribute_function(tool_shapes)
    plugin.converter.add_attribute_function(catalog_providers)


def _ref(schema):
    return {"$ref": f"#/components/schemas/{component_name(schema)}"}


def _openapi_path(rule, prefix):
    """The rule as an OpenAPI path, relative to the prefix when it is under it."""
    path = FLASK_VARIABLE.sub(r"{\1}", rule)
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        return path[len(prefix) :] or "/", True
    return path, False


def _operation(spec, app, rule, view, described, secured):
    status, description, schema, response_headers = described["ok"]
    responses = {str(status): _response(spec, description, schema, response_headers)}
    if described["not_modified"]:
        responses["304"] = {"description": described["not_modified"], "headers": response_headers}
    errors = set(described["errors"]) | {500}
    blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
    if getattr(blueprint, "uses_database", False):
        errors.add(503)
    if secured and getattr(blueprint, "protected", False):
        errors.add(401)
    limited = app.config["RATE_LIMIT"] is not None and getattr(blueprint, "rate_limited", False)
    if limited:
        errors.add(429)
    for code in sorted(errors):
        responses[str(code)] = _error(spec, code)
    if limited:
        for response in responses.values():
            response["headers"] = {**response.get("headers", {}), **RATE_LIMIT_HEADERS}
    result = {
        "summary": (view.__doc__ or "").strip().splitlines()[0],
        "tags": [getattr(blueprint, "tag", rule.endpoint.partition(".")[0])],
        "responses": responses,
    }
    parameters = list(described["headers"])
    if described["query"] is not None:
        parameters.insert(0, {"in": "query", "schema": described["query"]})
    if parameters:
        result["parameters"] = parameters
    if described["body"] is not None:
        body_ref = _register(spec, described["body"])
        if described["merge_patch"]:
            body_ref = {"$ref": body_ref["$ref"] + PATCH}
        result["requestBody"] = {
            "required": True,
            "content": {kind: {"schema": body_ref} for kind in described["content_types"]},
        }
    if secured and getattr(blueprint, "protected", False):
        result["security"] = [{"bearer": []}]
    return result


def _response(spec, description, schema, headers=None):
    response = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": _register(spec, schema)}}
    if headers:
        response["headers"] = headers
    return response


def _error(spec, status):
    headers = RETRY_AFTER if status in (429, 503) else None
    return _response(
        spec, ERROR_DESCRIPTIONS.get(status, "An error."), schemas.ErrorSchema, headers
    )


def _path_parameters(described):
    return [
        {"in": "path", "name": name, "required": True, **details}
        for name, details in described.items()
    ]
