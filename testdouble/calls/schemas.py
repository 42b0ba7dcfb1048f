"""What a valid POST /_test/calls is, every rule and its message; and the shapes it answers
with, for the OpenAPI document.
"""

from marshmallow import ValidationError, fields, post_load, validates_schema

from schemas import WEBHOOK_EVENTS
from strict_fields import (
    Array,
    Bool,
    Integer,
    JsonObject,
    Object,
    StrictSchema,
    Text,
    between,
    item_count,
    length,
    one_of,
)
from testdouble.calls.bounds import MAX_FAULT_DELAY_MS, MAX_SCRIPT_STEPS
from tool_schemas import TOOL_NAME

CALL_TYPES = ("inbound_phone_call", "outbound_phone_call", "web_call")
SPEAKERS = ("user", "assistant")
FAULT_EFFECTS = ("duplicate", "delay_ms", "signature", "timestamp", "drop")


def _tool_name(value):
    if not TOOL_NAME.match(value):
        raise ValidationError("must be 1 to 64 letters, digits, underscores or hyphens.")


class CustomerSchema(StrictSchema):
    number = Text(allow_none=True, validate=length(1, 64))


class PhoneNumberSchema(StrictSchema):
    id = Text(allow_none=True, validate=length(1, 64))
    number = Text(allow_none=True, validate=length(1, 64))
    name = Text(allow_none=True, validate=length(1, 200))


class SpokenStepSchema(StrictSchema):
    """A message of the conversation."""

    role = Text(required=True, validate=one_of(SPEAKERS))
    content = Text(required=True, validate=length(1, 100_000))


class ToolStepSchema(StrictSchema):
    """A call of one of the agent's tools."""

    tool = Text(required=True, validate=_tool_name)
    arguments = JsonObject(load_default=dict)


SPOKEN_STEP = SpokenStepSchema()
TOOL_STEP = ToolStepSchema()


class Step(fields.Field):
    """A script step: `{"role", "content"}`, or `{"tool", "arguments"}` when it has `tool`."""

    default_error_messages = {"invalid": "must be an object.", "null": "must not be null."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return (TOOL_STEP if "tool" in value else SPOKEN_STEP).load(value)


class CallFaultSchema(StrictSchema):
    """What to do to one event's deliveries."""

    event = Text(required=True, validate=one_of(WEBHOOK_EVENTS))
    duplicate = Bool(metadata={"description": "Deliver each twice, the second a replay."})
    delay_ms = Integer(validate=between(0, MAX_FAULT_DELAY_MS))
    signature = Text(validate=one_of(("wrong", "missing")))
    timestamp = Text(
        validate=one_of(("stale", "future")),
        metadata={"description": "X-Webhook-Timestamp 600 s before or after the clock."},
    )
    drop = Bool(metadata={"description": "Never send it."})

    @validates_schema(skip_on_field_errors=True)
    def _check_effects(self, data, **kwargs):
        effects = [name for name in FAULT_EFFECTS if data.get(name) not in (None, False)]
        if not effects:
            raise ValidationError(f"must have at least one of {', '.join(FAULT_EFFECTS)}.", "event")
        if "drop" in effects and len(effects) > 1:
            raise ValidationError("cannot be combined with other faults: nothing is sent.", "drop")


class CallRequestSchema(StrictSchema):
    """The body of POST /_test/calls."""

    assistant_id = Text(validate=length(1, 100))
    agent_id = Text(validate=length(1, 100), metadata={"description": "assistant_id's alias."})
    type = Text(load_default=CALL_TYPES[0], validate=one_of(CALL_TYPES))
    customer = Object(CustomerSchema)
    phone_number = Object(PhoneNumberSchema)
    script = Array(Step(), load_default=list, validate=item_count(MAX_SCRIPT_STEPS))
    end_reason = Text(load_default="customer-ended-call", validate=length(1, 200))
    duration_seconds = Integer(validate=between(0, 86_400))
    analysis = fields.Raw(
        allow_none=True,
        metadata={"description": "Sent as is; without it, generated from the agent's schema."},
    )
    faults = Array(
        Object(CallFaultSchema), load_default=list, validate=item_count(len(WEBHOOK_EVENTS))
    )

    @validates_schema(skip_on_field_errors=False)
    def _check_agent(self, data, **kwargs):
        if "assistant_id" in data and "agent_id" in data:
            raise ValidationError("must not be given beside assistant_id, its alias.", "agent_id")
        if "assistant_id" not in data and "agent_id" not in data:
            raise ValidationError("is required (or agent_id, its alias).", "assistant_id")

    @validates_schema(skip_on_field_errors=True)
    def _check_one_fault_per_event(self, data, **kwargs):
        first = {}
        errors = {}
        for index, fault in enumerate(data["faults"]):
            event = fault["event"]
            if event in first:
                errors[f"faults.{index}.event"] = [
                    f"must be unique; faults.{first[event]} is already for {event}."
                ]
            first.setdefault(event, index)
        if errors:
            raise ValidationError(errors)

    @post_load
    def _alias(self, data, **kwargs):
        if "agent_id" in data:
            data["assistant_id"] = data.pop("agent_id")
        return data


class DeliveryQuerySchema(StrictSchema):
    """The filters of GET /_test/deliveries."""

    event = Text(validate=one_of(WEBHOOK_EVENTS))
    call_id = Text(validate=length(1, 100))


class RecordedRequestSchema(StrictSchema):
    method = fields.String(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    body = fields.String(required=True, metadata={"description": "As sent, at most 64 KiB."})
    truncated = fields.Boolean(required=True)


class RecordedResponseSchema(StrictSchema):
    status = fields.Integer(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    body = fields.String(required=True, metadata={"description": "At most 64 KiB, as UTF-8."})
    truncated = fields.Boolean(required=True)


class DeliverySchema(StrictSchema):
    """One delivery as the journal keeps it."""

    call_id = fields.String(required=True)
    event = fields.String(required=True)
    url = fields.String(required=True)
    fault = fields.Dict(allow_none=True, required=True)
    request = fields.Nested(RecordedRequestSchema, required=True)
    sent_at = fields.String(required=True, metadata={"format": "date-time"})
    sent = fields.Boolean(required=True)
    awaited = fields.Boolean(required=True)
    response = fields.Nested(RecordedResponseSchema, allow_none=True, required=True)
    duration_ms = fields.Integer(required=True)
    error = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "timeout, connection_refused, connection_error, tls_error, "
            "invalid_response, too_large, dropped or deadline_exceeded.",
        },
    )


class CallSchema(StrictSchema):
    """A simulated call, as it ended."""

    id = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    assistant_id = fields.String(required=True)
    assistant = fields.Dict(
        required=True,
        metadata={
            "description": "The resolved agent as responses show it, without secrets; a "
            "transient one has null id and timestamps.",
        },
    )
    resolution = fields.Dict(required=True)
    customer = fields.Dict(required=True)
    phone_number = fields.Dict(required=True)
    end_reason = fields.String(required=True)
    error = fields.String(allow_none=True, required=True)
    messages = fields.List(fields.Dict(), required=True)
    tool_calls = fields.List(fields.Dict(), required=True)
    analysis = fields.Raw(allow_none=True, required=True)
    analysis_error = fields.String(allow_none=True, required=True)
    duration_seconds = fields.Integer(required=True)
    started_at = fields.String(allow_none=True, required=True)
    ended_at = fields.String(required=True)
    skipped = fields.List(fields.Dict(), required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class CallEnvelopeSchema(StrictSchema):
    call = fields.Nested(CallSchema, required=True)


class CallListSchema(StrictSchema):
    calls = fields.List(fields.Nested(CallSchema), required=True)


class DeliveryListSchema(StrictSchema):
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)
