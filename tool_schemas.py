"""A language model's function tools, in either of the platform's two shapes.

Nested: `{"type": "function", "function": {"name", "description", "parameters"},
"server": {"url", "secret"}, "async"}`; flat: `{"name", "description", "parameters", "url",
"async", "async_response"}`. A tool is returned in the shape it was sent; a server's `secret` is
write-only, as the agent's webhook secret is, and responses say only `server.secret_set`.
"""

import re

from marshmallow import ValidationError, fields, post_load

from remembered import RemembersValid
from strict_fields import (
    UNKNOWN_FIELD,
    Bool,
    JsonObject,
    Object,
    StrictSchema,
    Text,
    http_url,
    json_schema,
    length,
    one_of,
)

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _tool_parameters(value):
    json_schema(value)
    if value.get("type") != "object":
        raise ValidationError('must be a JSON Schema whose type is "object".')


def _tool_name(value):
    if not TOOL_NAME.match(value):
        raise ValidationError("must be 1 to 64 letters, digits, underscores or hyphens.")


def _default_parameters():
    return {"type": "object", "properties": {}}


class FunctionSchema(StrictSchema):
    name = Text(required=True, validate=_tool_name)
    description = Text(validate=length(maximum=1024))
    parameters = JsonObject(load_default=_default_parameters, validate=_tool_parameters)


class ServerSchema(StrictSchema):
    """Where the tool's calls go, and the secret that signs them."""

    url = Text(required=True, validate=[length(maximum=2048), http_url])
    secret = Text(load_only=True, allow_none=True, validate=length(8, 256))
    secret_set = fields.Boolean(dump_only=True)

    @post_load
    def _drop_empty_secret(self, data, **kwargs):
        if data.get("secret") is None:
            data.pop("secret", None)
        return data

    def handle_error(self, error, data, **kwargs):
        """Name `secret_set` as read-only rather than as unknown."""
        super().handle_error(error, data, **kwargs)
        if error.messages.get("secret_set") == [UNKNOWN_FIELD]:
            error.messages["secret_set"] = ["is read-only."]


class NestedToolSchema(StrictSchema):
    """`{"type": "function", "function": {...}, "server": {"url", "secret"}, "async": bool}`."""

    type = Text(required=True, validate=one_of(("function",)))
    function = Object(FunctionSchema, required=True)
    server = Object(ServerSchema)
    async_ = Bool(data_key="async", attribute="async")

    @staticmethod
    def name_path(tool):
        return (tool.get("function") or {}).get("name"), "function.name"


class FlatToolSchema(StrictSchema):
    """`{"name", "description", "parameters", "url", "async", "async_response"}`."""

    name = Text(required=True, validate=_tool_name)
    description = Text(required=True, validate=length(maximum=1024))
    parameters = JsonObject(load_default=_default_parameters, validate=_tool_parameters)
    url = Text(validate=[length(maximum=2048), http_url])
    async_ = Bool(data_key="async", attribute="async")
    async_response = Text(validate=length(maximum=2000))

    @staticmethod
    def name_path(tool):
        return tool.get("name"), "name"


NESTED_TOOL = NestedToolSchema()
FLAT_TOOL = FlatToolSchema()


def tool_schema_for(value):
    """Tools come in two shapes; a `type` or `function` member marks the nested one."""
    return NESTED_TOOL if "type" in value or "function" in value else FLAT_TOOL


class EitherShapeTool(fields.Field):
    """A function tool in either shape, returned in the shape it was sent."""

    default_error_messages = {"invalid": "must be an object.", "null": "must not be null."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return tool_schema_for(value).load(value)


class Tool(RemembersValid, EitherShapeTool):
    """A function tool whose valid values are remembered by their JSON text (remembered.py)."""


def unique_tool_name_errors(tools):
    """Messages for tools whose name an earlier tool of the agent already has."""
    first_use = {}
    errors = {}
    for index, tool in enumerate(tools):
        name, path = tool_schema_for(tool).name_path(tool)
        if name is None:  # a tool that failed its own checks has no name to compare
            continue
        if name in first_use:
            errors[f"tools.{index}.{path}"] = [
                f"must be unique within the agent; {name} is already the name of "
                f"llm_config.tools.{first_use[name]}."
            ]
        first_use.setdefault(name, index)
    return errors
