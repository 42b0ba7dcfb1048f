"""The speech-to-text, language-model and text-to-speech configs of an agent.

The shape of each config and the range of each field are here; which providers exist, which
models and voices each offers and which provider-only fields each takes come from the catalog
(catalog/), so they follow the catalog file without a change here.
"""

from marshmallow import ValidationError, post_load, validates_schema

import catalog
from remembered import RemembersValid
from strict_fields import (
    Array,
    Bool,
    Integer,
    Number,
    Object,
    StrictSchema,
    Text,
    between,
    item_count,
    language_tag,
    length,
    one_of,
)
from tool_schemas import Tool, unique_tool_name_errors

MESSAGE_ROLES = ("system", "user", "assistant")


class RememberedObject(RemembersValid, Object):
    """A config field whose valid values are remembered by their JSON text (remembered.py)."""


class KnownProvider:
    """The validator of a `provider` field: one of the catalog's providers of `kind`."""

    def __init__(self, kind):
        self.kind = kind

    def __call__(self, value):
        ids = catalog.current().ids(self.kind)
        if value not in ids:
            raise ValidationError(f"must be one of: {', '.join(ids)}.")


def provider_field(kind):
    """A required `provider`, one of the current catalog's providers of `kind`."""
    return Text(required=True, validate=KnownProvider(kind), metadata={"catalog": kind})


def _optional(field_class, **options):
    return field_class(allow_none=True, load_default=None, **options)


def _the_provider(kind, data):
    provider_id = data.get("provider")
    return None if provider_id is None else catalog.current().provider(kind, provider_id)


def _number(value):
    return str(float(value))


def _and(names):
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def provider_only_errors(kind, names, data, provider):
    """Messages for provider-only fields set with a provider that does not take them."""
    known = catalog.current()
    errors = {}
    for name in names:
        if data.get(name) is None or name in provider.settings:
            continue
        takers = known.takers(kind, name)
        if not takers:
            errors[name] = [
                f"is taken by no provider of this service's catalog; set it to null to use "
                f"{provider.id}."
            ]
            continue
        whose = f"the {_and(takers)} provider{'s' if len(takers) > 1 else ''}"
        errors[name] = [
            f"is only for {whose}, not {provider.id}; set it to null to use {provider.id}."
        ]
    return errors


def model_errors(provider, model):
    """A message when the provider checks model names and `model` is not one of them.

    A name that breaks the field's own length rule is told only that.
    """
    if model is None or not 1 <= len(model) <= 100:
        return {}
    if not provider.checks_models or model in provider.models:
        return {}
    return {"model": [f"must be one of the {provider.id} models: {', '.join(provider.models)}."]}


class MessageSchema(StrictSchema):
    role = Text(required=True, validate=one_of(MESSAGE_ROLES))
    content = Text(required=True, validate=length(1, 100_000))


def _language_tags():
    return _optional(Array, cls_or_instance=Text(validate=language_tag), validate=item_count(100))


def _terms():
    return _optional(Array, cls_or_instance=Text(validate=length(1, 100)), validate=item_count(100))


class SttConfigSchema(StrictSchema):
    provider = provider_field("stt")
    model = Text(required=True, validate=length(1, 100))
    language = Text(required=True, validate=language_tag)
    keyterms = Array(Text(validate=length(1, 100)), load_default=list, validate=item_count(100))
    # ElevenLabs Scribe's own.
    tag_audio_events = _optional(Bool)
    include_timestamps = _optional(Bool)
    sample_rate = _optional(Integer, validate=one_of((8000, 16000)))
    # Gladia's own.
    languages = _language_tags()
    code_switching = _optional(Bool)
    region = _optional(Text, validate=one_of(("eu-west", "us-west")))
    endpointing = _optional(Number, validate=between(0.01, 1))
    custom_vocabulary = _terms()
    translation_enabled = _optional(Bool)
    translation_target_languages = _language_tags()

    PROVIDER_ONLY = (
        "tag_audio_events",
        "include_timestamps",
        "sample_rate",
        "languages",
        "code_switching",
        "region",
        "endpointing",
        "custom_vocabulary",
        "translation_enabled",
        "translation_target_languages",
    )

    @validates_schema(skip_on_field_errors=False)
    def _check_provider(self, data, **kwargs):
        provider = _the_provider("stt", data)
        if provider is None:
            return
        errors = {
            **model_errors(provider, data.get("model")),
            **provider_only_errors("stt", self.PROVIDER_ONLY, data, provider),
        }
        if errors:
            raise ValidationError(errors)


class LlmConfigSchema(StrictSchema):
    provider = provider_field("llm")
    model = Text(required=True, validate=length(1, 100))
    temperature = Number(load_default=0.7, validate=between(0, 2))
    messages = Array(Object(MessageSchema), load_default=list, validate=item_count(100))
    tools = Array(Tool(), load_default=list, validate=item_count(128))
    voice = _optional(Text, validate=length(1, 100))

    @validates_schema(skip_on_field_errors=False)
    def _check_provider(self, data, **kwargs):
        provider = _the_provider("llm", data)
        if provider is None:
            return
        errors = model_errors(provider, data.get("model"))
        voice = data.get("voice")
        if voice is not None and provider.kind != "realtime":
            errors["voice"] = [
                f"is only for realtime (speech-to-speech) providers, not {provider.id}; set it "
                f"to null to use {provider.id}."
            ]
        elif voice is not None and provider.checks_voices and voice not in provider.voices:
            errors["voice"] = [
                f"must be one of the {provider.id} voices: {', '.join(provider.voices)}."
            ]
        if errors:
            raise ValidationError(errors)

    @validates_schema(skip_on_field_errors=False)
    def _check_tool_names_unique(self, data, **kwargs):
        errors = unique_tool_name_errors(data.get("tools") or ())
        if errors:
            raise ValidationError(errors)


def is_realtime(llm_config):
    """Whether a (loaded) llm_config names a speech-to-speech provider."""
    provider = _the_provider("llm", llm_config or {})
    return provider is not None and provider.kind == "realtime"


class TtsConfigSchema(StrictSchema):
    provider = provider_field("tts")
    voice_id = Text(required=True, validate=length(1, 200))
    language = Text(required=True, validate=language_tag)
    model = _optional(Text, validate=length(1, 100))
    speed = _optional(Number)
    stability = _optional(Number, validate=between(0, 1))
    similarity_boost = _optional(Number, validate=between(0, 1))
    use_speaker_boost = _optional(Bool)
    style = _optional(Number, validate=between(0, 1))

    PROVIDER_ONLY = ("speed", "stability", "similarity_boost", "use_speaker_boost", "style")

    @validates_schema(skip_on_field_errors=False)
    def _check_provider(self, data, **kwargs):
        provider = _the_provider("tts", data)
        if provider is None:
            return
        errors = {
            **_tts_model_errors(provider, data),
            **provider_only_errors("tts", self.PROVIDER_ONLY, data, provider),
        }
        voice_id = data.get("voice_id")
        if provider.checks_voices and voice_id is not None and voice_id not in provider.voices:
            errors["voice_id"] = [
                f"must be one of the {provider.id} voices: {', '.join(provider.voices)}."
            ]
        speed = data.get("speed")
        limits = provider.ranges.get("speed")
        if "speed" not in errors and speed is not None and limits is not None:
            if not limits[0] <= speed <= limits[1]:
                errors["speed"] = [
                    f"must be between {_number(limits[0])} and {_number(limits[1])} for "
                    f"{provider.id}."
                ]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _default_model(self, data, **kwargs):
        provider = catalog.current().provider("tts", data["provider"])
        if data["model"] is None and provider.checks_models:
            data["model"] = provider.default_model
        return data


def _tts_model_errors(provider, data):
    model = data.get("model")
    errors = model_errors(provider, model)
    if model is not None and not provider.checks_models and model not in provider.models:
        owner = catalog.current().owner_of_model("tts", model, besides=provider.id)
        if owner is not None:
            article = "an" if owner[0] in "aeiou" else "a"
            errors["model"] = [
                f"is {article} {owner} model; set it to null or to a model that {provider.id} "
                "offers."
            ]
    languages = provider.model_languages.get(model)
    language = data.get("language")
    if languages and language and language.lower().split("-")[0] not in languages:
        spoken = " or ".join(f"{tag} or {tag}-*" for tag in languages)
        errors["language"] = [
            f"must be {spoken} with {model}, which speaks {_and(languages)} only."
        ]
    return errors
