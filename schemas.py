"""What a valid agent is: every field, default, rule and message of the contract.

Loading a request body returns plain data with every default filled in; the error messages
are sentence endings that errors.py turns into whole sentences led by the field path.
"""

import re

from marshmallow import ValidationError, fields, post_load, validates_schema
from marshmallow.error_store import merge_errors

from merge_patch import merge_patch
from provider_schemas import (
    MESSAGE_ROLES,
    LlmConfigSchema,
    RememberedObject,
    SttConfigSchema,
    TtsConfigSchema,
    is_realtime,
)
from strict_fields import (
    LOWERCASE_UUID_PATTERN,
    TIMESTAMP_PATTERN,
    UNKNOWN_FIELD,
    Array,
    Bool,
    Integer,
    JsonObject,
    Object,
    QueryBoolean,
    QueryInteger,
    QuerySchema,
    StrictSchema,
    Text,
    between,
    canonical_uuid,
    email_address,
    http_url,
    item_count,
    json_schema,
    length,
    no_duplicates,
    not_blank,
    one_of,
    utc_timestamp,
)

WEBHOOK_EVENTS = ("assistant-request", "tool-calls", "status-update", "end-of-call-report")
ANALYSIS_PLACEHOLDERS = ("{{schema}}", "{{transcript}}", "{{ended_reason}}")
READ_ONLY_FIELDS = ("id", "webhook_secret_set", "created_at", "updated_at")
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
# No range is published for it; an hour of silence is far beyond any call worth keeping open.
SILENCE_TIMEOUT_SECONDS = (1, 3600)


def _optional_text(maximum):
    return Text(allow_none=True, load_default=None, validate=length(maximum=maximum))


def _known_placeholders(value):
    unknown = [
        placeholder
        for placeholder in re.findall(r"\{\{[^{}]*\}\}", value)
        if placeholder not in ANALYSIS_PLACEHOLDERS
    ]
    if unknown:
        raise ValidationError(
            f"may use only the placeholders {', '.join(ANALYSIS_PLACEHOLDERS)}; "
            f"{unknown[0]} is not one of them."
        )


class AnalysisMessageSchema(StrictSchema):
    role = Text(required=True, validate=one_of(MESSAGE_ROLES))
    content = Text(required=True, validate=[length(1, 100_000), _known_placeholders])


class StructuredDataPlanSchema(StrictSchema):
    """What to extract from a call: a JSON Schema of its own, or a saved template's."""

    enabled = Bool(load_default=True)
    schema = JsonObject(allow_none=True, load_default=None, validate=json_schema)
    messages = Array(Object(AnalysisMessageSchema), load_default=list, validate=item_count(100))
    template_id = Text(allow_none=True, load_default=None, validate=length(1, 200))

    @validates_schema(skip_on_field_errors=True)
    def _check_one_source(self, data, **kwargs):
        has_schema = data.get("schema") is not None
        has_template = data.get("template_id") is not None
        if has_schema and has_template:
            raise ValidationError(
                "must not be given beside schema; send one of schema and template_id.",
                "template_id",
            )
        if not (has_schema or has_template):
            raise ValidationError("is required unless template_id is given.", "schema")


class AnalysisPlanSchema(StrictSchema):
    structured_data_plan = Object(StructuredDataPlanSchema, allow_none=True, load_default=None)
    min_messages_threshold = Integer(load_default=2, validate=between(0))


class AgentSchema(StrictSchema):
    """An agent: what clients send (load) and what every response shows (dump)."""

    id = fields.UUID(dump_only=True)
    name = Text(required=True, validate=[length(maximum=200), not_blank])
    business_name = _optional_text(200)
    notification_email = Text(allow_none=True, load_default=None, validate=email_address)
    first_message = _optional_text(2000)
    is_active = Bool(load_default=True)
    voicemail_detection = Bool(load_default=False)
    voicemail_message = _optional_text(2000)
    max_duration_seconds = Integer(load_default=600, validate=between(1, 86_400))
    autonomous_silence_handling = Bool(load_default=False)
    silence_timeout_seconds = Integer(
        allow_none=True, load_default=None, validate=between(*SILENCE_TIMEOUT_SECONDS)
    )
    gdpr_mode = Bool(load_default=False)
    webhook_url = Text(
        allow_none=True, load_default=None, validate=[length(maximum=2048), http_url]
    )
    webhook_secret = Text(load_only=True, allow_none=True, validate=length(8, 256))
    webhook_secret_set = fields.Boolean(dump_only=True)
    webhook_events = Array(
        Text(validate=one_of(WEBHOOK_EVENTS)), load_default=list, validate=no_duplicates
    )
    stt_config = RememberedObject(SttConfigSchema, allow_none=True, load_default=None)
    llm_config = RememberedObject(LlmConfigSchema, allow_none=True, load_default=None)
    tts_config = RememberedObject(TtsConfigSchema, allow_none=True, load_default=None)
    analysis_plan = RememberedObject(AnalysisPlanSchema, allow_none=True, load_default=None)
    created_at = fields.String(dump_only=True, metadata={"format": "date-time"})
    updated_at = fields.String(dump_only=True, metadata={"format": "date-time"})

    @validates_schema(skip_on_field_errors=False)
    def _check_realtime_has_no_speech_config(self, data, **kwargs):
        llm_config = data.get("llm_config")
        if not is_realtime(llm_config):
            return
        errors = {
            name: [
                f"must be null when llm_config.provider is {llm_config['provider']}, which is "
                "speech-to-speech and brings its own speech handling."
            ]
            for name in ("stt_config", "tts_config")
            if data.get(name) is not None
        }
        if errors:
            raise ValidationError(errors)

    @post_load
    def _drop_empty_secret(self, data, **kwargs):
        if data.get("webhook_secret") is None:
            data.pop("webhook_secret", None)
        return data

    def handle_error(self, error, data, **kwargs):
        """Name read-only fields as such rather than as unknown."""
        super().handle_error(error, data, **kwargs)
        for name in READ_ONLY_FIELDS:
            if error.messages.get(name) == [UNKNOWN_FIELD]:
                error.messages[name] = ["is read-only."]


def load_patched(current, patch):
    """Apply a merge patch to an agent's fields and validate the result as a whole."""
    errors = _refused_nulls(patch, AGENT)
    try:
        fields_ = AGENT.load(merge_patch(current, _without_refused_nulls(patch, AGENT)))
    except ValidationError as error:
        errors = merge_errors(errors, error.messages)
    if errors:
        raise ValidationError(errors)
    return fields_


def _refused_nulls(patch, schema):
    """The errors of nulls a patch may not send: for an unknown, read-only or required member.

    A null removes a member, so the merged whole would never show them; they are named as a
    POST names them ("must not be null." for a required one), not as the gap they would leave.
    """
    errors = {}
    known = _known_fields(schema)
    for key, value in patch.items():
        field = known.get(key)
        if value is None and (field is None or field.dump_only):
            errors[key] = ["is read-only." if field is not None else UNKNOWN_FIELD]
        elif value is None and field.required:
            errors[key] = [field.error_messages["null"]]
        elif isinstance(value, dict) and isinstance(field, fields.Nested):
            nested = _refused_nulls(value, field.schema)
            if nested:
                errors[key] = nested
    return errors


def _without_refused_nulls(patch, schema):
    """The patch without the nulls `_refused_nulls` reports, which must not remove anything."""
    known = _known_fields(schema)
    kept = {}
    for key, value in patch.items():
        field = known.get(key)
        if value is None and (field is None or field.dump_only or field.required):
            continue
        if isinstance(value, dict) and isinstance(field, fields.Nested):
            value = _without_refused_nulls(value, field.schema)
        kept[key] = value
    return kept


def _known_fields(schema):
    return {field.data_key or name: field for name, field in schema.fields.items()}


class StoredAgentSchema(AgentSchema):
    """An agent as loaded by fixtures: the agent's rules, plus its id and timestamps if given."""

    id = Text(validate=canonical_uuid, metadata={"pattern": LOWERCASE_UUID_PATTERN})
    created_at = Text(validate=utc_timestamp, metadata={"pattern": TIMESTAMP_PATTERN})
    updated_at = Text(validate=utc_timestamp, metadata={"pattern": TIMESTAMP_PATTERN})

    @validates_schema(skip_on_field_errors=True)
    def _check_timestamps_in_order(self, data, **kwargs):
        if "updated_at" not in data:
            return
        if "created_at" not in data:
            raise ValidationError("needs created_at beside it.", "updated_at")
        if data["updated_at"] < data["created_at"]:
            raise ValidationError("must not be before created_at.", "updated_at")


class ExportedAgentSchema(StoredAgentSchema):
    """An agent in an export file: what responses show, plus the secret when it was exported."""

    id = Text(required=True, validate=canonical_uuid)
    webhook_secret_set = Bool(required=True)
    created_at = Text(required=True, validate=utc_timestamp)
    updated_at = Text(required=True, validate=utc_timestamp)


class StoredAgentsSchema(StrictSchema):
    """A list of stored agents, as fixtures and export files carry them: no id twice."""

    agents = Array(Object(StoredAgentSchema), required=True)

    @validates_schema(skip_on_field_errors=True)
    def _check_ids_unique(self, data, **kwargs):
        first_use = {}
        errors = {}
        for index, agent in enumerate(data["agents"]):
            agent_id = agent.get("id")
            if agent_id in first_use:
                errors[index] = {
                    "id": [f"must be unique; agents.{first_use[agent_id]} has it too."]
                }
            elif agent_id is not None:
                first_use[agent_id] = index
        if errors:
            raise ValidationError({"agents": errors})


EXPORT_FORMAT = "agents-api-export"


class ExportFileSchema(StoredAgentsSchema):
    """A file written by `agents-api export`."""

    format = Text(required=True, validate=one_of((EXPORT_FORMAT,)))
    version = Integer(required=True, validate=between(1, 1))
    exported_at = Text(validate=utc_timestamp)
    schema_version = Integer(validate=between(1))
    agents = Array(Object(ExportedAgentSchema), required=True)


EXPORT_FILE = ExportFileSchema()


def load_export(document, allow_missing_secrets=False):
    """The agents of an export file, each checked by the same rules as the API, ready to store.

    An agent (or tool server) exported with a secret but without the secret itself is refused
    unless `allow_missing_secrets`; it is then stored without one. Files written before tool
    servers had secrets carry no `secret_set`, and import as servers without one.
    """
    document, server_flags = _without_server_flags(document)
    loaded = EXPORT_FILE.load(document)
    errors = {}
    agents = []
    for index, agent in enumerate(loaded["agents"]):
        errors.update(
            _secret_errors(
                f"agents.{index}.webhook_",
                agent.pop("webhook_secret_set"),
                "webhook_secret" in agent,
                allow_missing_secrets,
            )
        )
        agents.append(agent)
    for (index, tool_index), secret_set in server_flags.items():
        server = agents[index]["llm_config"]["tools"][tool_index]["server"]
        path = f"agents.{index}.llm_config.tools.{tool_index}.server."
        if not isinstance(secret_set, bool):
            errors[f"{path}secret_set"] = ["must be true or false."]
        else:
            errors.update(
                _secret_errors(path, secret_set, "secret" in server, allow_missing_secrets)
            )
    if errors:
        raise ValidationError(errors)
    return agents


def _without_server_flags(document):
    """The export document without its tool servers' `secret_set`, and those flags by (agent,
    tool) index. The document given is left as it was: only what holds a flag is copied (a
    deep copy of every agent cost an import a fifth of its time)."""
    flags = {}
    agents = document.get("agents") if isinstance(document, dict) else None
    if not isinstance(agents, list):
        return document, flags
    copied = list(agents)
    for index, agent in enumerate(agents):
        llm_config = agent.get("llm_config") if isinstance(agent, dict) else None
        tools = llm_config.get("tools") if isinstance(llm_config, dict) else None
        if not isinstance(tools, list):
            continue
        copied_tools, changed = list(tools), False
        for tool_index, tool in enumerate(tools):
            server = tool.get("server") if isinstance(tool, dict) else None
            if isinstance(server, dict) and "secret_set" in server:
                server = dict(server)
                flags[index, tool_index] = server.pop("secret_set")
                copied_tools[tool_index], changed = {**tool, "server": server}, True
        if changed:
            copied[index] = {**agent, "llm_config": {**llm_config, "tools": copied_tools}}
    return {**document, "agents": copied}, flags


def _secret_errors(prefix, secret_set, has_secret, allow_missing_secrets):
    if secret_set and not has_secret and not allow_missing_secrets:
        return {
            f"{prefix}secret": [
                f"is missing though {prefix.rsplit('.', 1)[-1]}secret_set is true; export with "
                "--include-secrets, or import with --allow-missing-secrets to store it without one."
            ]
        }
    if has_secret and not secret_set:
        return {
            f"{prefix}secret_set": [
                f"must be true when {prefix.rsplit('.', 1)[-1]}secret is given."
            ]
        }
    return {}


class ListQuerySchema(QuerySchema):
    """The query string of GET /agents."""

    limit = QueryInteger(validate=between(1, 1000))
    cursor = Text(validate=length(1, 200))
    is_active = QueryBoolean()
    q = Text(validate=length(1, 200))


AGENT = AgentSchema()


class AgentEnvelopeSchema(StrictSchema):
    agent = fields.Nested(AgentSchema, required=True)


class AgentListSchema(StrictSchema):
    agents = fields.List(fields.Nested(AgentSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class AssistantEnvelopeSchema(StrictSchema):
    assistant = fields.Nested(AgentSchema, required=True)


class AssistantListSchema(StrictSchema):
    assistants = fields.List(fields.Nested(AgentSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class SuccessSchema(StrictSchema):
    success = fields.Boolean(required=True)


class StatusSchema(StrictSchema):
    status = fields.String(required=True)


class ErrorSchema(StrictSchema):
    """The one error body of every failure."""

    error = fields.String(required=True)
    code = fields.String(required=True)
    type = fields.String(
        required=True,
        metadata={"description": "The same as code, where the platform's SDK reads it."},
    )
    param = fields.String(
        metadata={"description": "The path of the first field that failed; validation errors only."}
    )
    retry_after = fields.Integer(
        metadata={"description": "Seconds until the rate limit lets a request through; 429 only."}
    )
    details = fields.List(fields.String())
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String())
    )
