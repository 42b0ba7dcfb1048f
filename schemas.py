"""What a valid agent is: every field, default, rule and message of the contract.

Loading a request body returns plain data with every default filled in; the error messages
are sentence endings that errors.py turns into whole sentences led by the field path.
"""

import re

from marshmallow import ValidationError, fields, post_load, validates_schema
from marshmallow.error_store import merge_errors

from merge_patch import merge_patch
from strict_fields import (
    LOWERCASE_UUID_PATTERN,
    TIMESTAMP_PATTERN,
    UNKNOWN_FIELD,
    Array,
    Bool,
    Integer,
    JsonObject,
    Number,
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
    language_tag,
    length,
    no_duplicates,
    not_blank,
    one_of,
    utc_timestamp,
)

WEBHOOK_EVENTS = ("assistant-request", "tool-calls", "status-update", "end-of-call-report")
STT_PROVIDERS = ("deepgram",)
LLM_PROVIDERS = ("openai", "anthropic", "groq", "mistral", "xai", "xai_realtime")
GROK_MODELS = (
    "grok-4-1-fast-non-reasoning",
    "grok-4-1-fast-reasoning",
    "grok-4-fast-non-reasoning",
    "grok-4-fast-reasoning",
    "grok-code-fast-1",
    "grok-4-0709",
    "grok-3-mini",
    "grok-3",
)
TTS_PROVIDERS = ("openai", "elevenlabs", "cartesia", "local")
ELEVENLABS_MODELS = (
    "eleven_flash_v2_5",
    "eleven_v3",
    "eleven_multilingual_v2",
    "eleven_turbo_v2_5",
    "eleven_monolingual_v1",
)
ELEVENLABS_ONLY_FIELDS = ("stability", "similarity_boost", "use_speaker_boost")
MESSAGE_ROLES = ("system", "user", "assistant")
ANALYSIS_PLACEHOLDERS = ("{{schema}}", "{{transcript}}", "{{ended_reason}}")
READ_ONLY_FIELDS = ("id", "webhook_secret_set", "created_at", "updated_at")
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _optional_text(maximum):
    return Text(allow_none=True, load_default=None, validate=length(maximum=maximum))


class MessageSchema(StrictSchema):
    role = Text(required=True, validate=one_of(MESSAGE_ROLES))
    content = Text(required=True, validate=length(1, 100_000))


class SttConfigSchema(StrictSchema):
    provider = Text(required=True, validate=one_of(STT_PROVIDERS))
    model = Text(required=True, validate=length(1, 100))
    language = Text(required=True, validate=language_tag)
    keyterms = Array(Text(validate=length(1, 100)), load_default=list, validate=item_count(100))


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
    url = Text(required=True, validate=[length(maximum=2048), http_url])


class NestedToolSchema(StrictSchema):
    """`{"type": "function", "function": {...}, "server": {"url"}, "async": bool}`."""

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


class Tool(fields.Field):
    """A function tool in either shape, returned in the shape it was sent."""

    default_error_messages = {"invalid": "must be an object.", "null": "must not be null."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return tool_schema_for(value).load(value)


class LlmConfigSchema(StrictSchema):
    provider = Text(required=True, validate=one_of(LLM_PROVIDERS))
    model = Text(required=True, validate=length(1, 100))
    temperature = Number(load_default=0.7, validate=between(0, 2))
    messages = Array(Object(MessageSchema), load_default=list, validate=item_count(100))
    tools = Array(Tool(), load_default=list, validate=item_count(128))

    @validates_schema(skip_on_field_errors=False)
    def _check_model(self, data, **kwargs):
        if data.get("provider") == "xai" and data.get("model") not in (None, *GROK_MODELS):
            raise ValidationError(
                f"must be one of the xai Grok models: {', '.join(GROK_MODELS)}.", "model"
            )

    @validates_schema(skip_on_field_errors=False)
    def _check_tool_names_unique(self, data, **kwargs):
        first_use = {}
        errors = {}
        for index, tool in enumerate(data.get("tools") or ()):
            name, path = tool_schema_for(tool).name_path(tool)
            if name is None:  # a tool that failed its own checks has no name to compare
                continue
            if name in first_use:
                errors[f"tools.{index}.{path}"] = [
                    f"must be unique within the agent; {name} is already the name of "
                    f"llm_config.tools.{first_use[name]}."
                ]
            first_use.setdefault(name, index)
        if errors:
            raise ValidationError(errors)


class TtsConfigSchema(StrictSchema):
    provider = Text(required=True, validate=one_of(TTS_PROVIDERS))
    voice_id = Text(required=True, validate=length(1, 200))
    language = Text(required=True, validate=language_tag)
    model = Text(allow_none=True, load_default=None, validate=length(1, 100))
    speed = Number(allow_none=True, load_default=None)
    stability = Number(allow_none=True, load_default=None, validate=between(0, 1))
    similarity_boost = Number(allow_none=True, load_default=None, validate=between(0, 1))
    use_speaker_boost = Bool(allow_none=True, load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def _check_provider_fields(self, data, **kwargs):
        provider = data.get("provider")
        if provider is None:
            return
        if provider == "elevenlabs":
            errors = _elevenlabs_errors(data)
        else:
            errors = _other_provider_errors(data, provider)
        if errors:
            raise ValidationError(errors)

    @post_load
    def _default_elevenlabs_model(self, data, **kwargs):
        if data["provider"] == "elevenlabs" and data["model"] is None:
            data["model"] = ELEVENLABS_MODELS[0]
        return data


def _elevenlabs_errors(data):
    errors = {}
    model = data.get("model")
    if model is not None and model not in ELEVENLABS_MODELS:
        errors["model"] = [f"must be one of the elevenlabs models: {', '.join(ELEVENLABS_MODELS)}."]
    language = data.get("language") or ""
    english = language.lower() == "en" or language.lower().startswith("en-")
    if model == "eleven_monolingual_v1" and language and not english:
        errors["language"] = [
            "must be en or en-* with eleven_monolingual_v1, which speaks English only."
        ]
    speed = data.get("speed")
    if speed is not None and not 0.5 <= speed <= 2.0:
        errors["speed"] = ["must be between 0.5 and 2.0 for elevenlabs."]
    return errors


def _other_provider_errors(data, provider):
    errors = {}
    for name in ELEVENLABS_ONLY_FIELDS:
        if data.get(name) is not None:
            errors[name] = [
                f"is only for the elevenlabs provider, not {provider}; set it to null to use "
                f"{provider}."
            ]
    model = data.get("model")
    if model in ELEVENLABS_MODELS:
        errors["model"] = [
            f"is an elevenlabs model; set it to null or to a model that {provider} offers."
        ]
    speed = data.get("speed")
    if speed is not None and not 0.25 <= speed <= 4.0:
        errors["speed"] = [f"must be between 0.25 and 4.0 for {provider}."]
    return errors


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
    enabled = Bool(load_default=True)
    schema = JsonObject(required=True, validate=json_schema)
    messages = Array(Object(AnalysisMessageSchema), load_default=list, validate=item_count(100))


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
    webhook_url = Text(
        allow_none=True, load_default=None, validate=[length(maximum=2048), http_url]
    )
    webhook_secret = Text(load_only=True, allow_none=True, validate=length(8, 256))
    webhook_secret_set = fields.Boolean(dump_only=True)
    webhook_events = Array(
        Text(validate=one_of(WEBHOOK_EVENTS)), load_default=list, validate=no_duplicates
    )
    stt_config = Object(SttConfigSchema, allow_none=True, load_default=None)
    llm_config = Object(LlmConfigSchema, allow_none=True, load_default=None)
    tts_config = Object(TtsConfigSchema, allow_none=True, load_default=None)
    analysis_plan = Object(AnalysisPlanSchema, allow_none=True, load_default=None)
    created_at = fields.String(dump_only=True, metadata={"format": "date-time"})
    updated_at = fields.String(dump_only=True, metadata={"format": "date-time"})

    @validates_schema(skip_on_field_errors=False)
    def _check_realtime_has_no_speech_config(self, data, **kwargs):
        llm_config = data.get("llm_config") or {}
        if llm_config.get("provider") != "xai_realtime":
            return
        errors = {
            name: [
                "must be null when llm_config.provider is xai_realtime, which is "
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

    An agent exported with a webhook secret but without the secret itself is refused unless
    `allow_missing_secrets`; it is then stored without one.
    """
    loaded = EXPORT_FILE.load(document)
    errors = {}
    agents = []
    for index, agent in enumerate(loaded["agents"]):
        secret_set = agent.pop("webhook_secret_set")
        has_secret = "webhook_secret" in agent
        if secret_set and not has_secret and not allow_missing_secrets:
            errors[f"agents.{index}.webhook_secret"] = [
                "is missing though webhook_secret_set is true; export with --include-secrets, "
                "or import with --allow-missing-secrets to store the agent without one."
            ]
        elif has_secret and not secret_set:
            errors[f"agents.{index}.webhook_secret_set"] = [
                "must be true when webhook_secret is given."
            ]
        agents.append(agent)
    if errors:
        raise ValidationError(errors)
    return agents


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


class SuccessSchema(StrictSchema):
    success = fields.Boolean(required=True)


class StatusSchema(StrictSchema):
    status = fields.String(required=True)


class ErrorSchema(StrictSchema):
    """The one error body of every failure."""

    error = fields.String(required=True)
    code = fields.String(required=True)
    details = fields.List(fields.String())
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String())
    )
