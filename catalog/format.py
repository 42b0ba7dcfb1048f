"""The parts of the platform's config-catalog format that the service reads, and their rules.

Everything else in a catalog (labels, pricing, keys, regions, the platform's `schemas` beyond
the fields each provider takes) is left as it is: a newer copy of the platform's catalog loads
unchanged.
"""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from strict_fields import (
    Array,
    Integer,
    JsonObject,
    Number,
    Object,
    Sentences,
    Text,
    length,
    one_of,
)


class Lenient(Schema):
    """A part of the catalog: the members the service reads are checked, others are kept out."""

    class Meta:
        unknown = EXCLUDE

    error_messages = {"type": "must be an object."}

    def handle_error(self, error, data, **kwargs):
        error.schema = self


def _names():
    return Array(Text(validate=length(1, 200)))


class Range(Lenient):
    min = Number(required=True)
    max = Number(required=True)

    @validates_schema(skip_on_field_errors=True)
    def _check_order(self, data, **kwargs):
        if data["min"] > data["max"]:
            raise ValidationError("must not be above max.", "min")


class ByName(Sentences, fields.Field):
    """An object of named values, each loaded by `value` (a field); errors name the member."""

    default_error_messages = {"invalid": "must be an object."}

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def _deserialize(self, data, attr, obj, **kwargs):
        if not isinstance(data, dict):
            raise self.make_error("invalid")
        loaded, errors = {}, {}
        for name, item in data.items():
            try:
                loaded[name] = self.value.deserialize(item)
            except ValidationError as error:
                errors[name] = error.messages
        if errors:
            raise ValidationError(errors)
        return loaded


class ProviderSchema(Lenient):
    id = Text(required=True, validate=length(1, 100))
    kind = Text(validate=one_of(("text", "realtime")))
    default_model = Text(validate=length(1, 200))
    models = _names()
    legacy_models = _names()
    model = Text(validate=one_of(("free",)))
    default_voice = Text(validate=length(1, 200))
    voices = _names()
    voice_id = Text(validate=one_of(("free", "enum")))
    settings = _names()
    params = ByName(Object(Range))
    model_languages = ByName(_names())

    @validates_schema(skip_on_field_errors=True)
    def _check_enum_has_voices(self, data, **kwargs):
        if data.get("voice_id") == "enum" and not data.get("voices"):
            raise ValidationError("is enum, so voices must list them.", "voice_id")


class ProvidersSchema(Lenient):
    providers = Array(Object(ProviderSchema), required=True)

    @validates_schema(skip_on_field_errors=True)
    def _check_ids_unique(self, data, **kwargs):
        seen = {}
        for index, provider in enumerate(data["providers"]):
            if provider["id"] in seen:
                raise ValidationError(
                    {
                        "providers": {
                            index: {
                                "id": [
                                    f"must be unique; providers.{seen[provider['id']]} is "
                                    f"{provider['id']} too."
                                ]
                            }
                        }
                    }
                )
            seen[provider["id"]] = index


class KindParams(Lenient):
    tts = ByName(Object(Range))


class CatalogFileSchema(Lenient):
    """A catalog file: version 1 (checked before this), and a provider list per kind."""

    version = Integer(required=True)
    llm = Object(ProvidersSchema, required=True)
    stt = Object(ProvidersSchema, required=True)
    tts = Object(ProvidersSchema, required=True)
    params = Object(KindParams)
    schemas = JsonObject()
