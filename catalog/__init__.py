"""Which providers exist, which models and voices each offers and which settings it takes.

That is data, not code: one file in the platform's config-catalog format, `platform.json` beside
this module unless AGENTS_CATALOG names another. It is read and checked once, when the app is
built; validation then asks the catalog of the app serving the request (`current()`), which the
app makes current for each request as it does its store.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from marshmallow import ValidationError

from catalog.format import CatalogFileSchema
from config import ConfigError
from strict_json import InvalidJson, parse_json

KINDS = ("llm", "stt", "tts")
FORMAT_VERSION = 1
DEFAULT_FILE = "platform.json"


class Provider(NamedTuple):
    """One provider of a kind (llm, stt or tts), as validation needs it."""

    id: str
    # text or realtime (speech-to-speech); only language models have a kind.
    kind: str
    # The model names it offers, as listed: newest first, legacy ones included.
    models: tuple
    # Whether a model must be one of `models` (False where the catalog says "model": "free").
    checks_models: bool
    default_model: str | None
    # The voice ids it offers; checked only when `checks_voices`.
    voices: tuple
    checks_voices: bool
    # The provider-only fields it takes (stt_config.languages, tts_config.stability, ...).
    settings: frozenset
    # Its own range for a setting ({"speed": (0.25, 4)}), over the catalog's shared ones.
    ranges: dict
    # The languages a model is limited to: {"eleven_monolingual_v1": ("en",)}.
    model_languages: dict


class Catalog:
    """A checked catalog file: the providers of each kind, by id, in the file's order."""

    def __init__(self, document, source):
        self.source = source
        shared_ranges = {
            name: (limits["min"], limits["max"])
            for name, limits in document.get("params", {}).get("tts", {}).items()
            if "min" in limits and "max" in limits
        }
        self.providers = {
            kind: {
                entry["id"]: _provider(kind, entry, document, shared_ranges)
                for entry in document[kind]["providers"]
            }
            for kind in KINDS
        }

    def ids(self, kind):
        """The ids of a kind's providers, in the catalog's order."""
        return tuple(self.providers[kind])

    def provider(self, kind, provider_id):
        """The provider of that kind and id, or None."""
        return self.providers[kind].get(provider_id)

    def takers(self, kind, setting):
        """The ids of the kind's providers that take a provider-only field."""
        return [p.id for p in self.providers[kind].values() if setting in p.settings]

    def owner_of_model(self, kind, model, besides):
        """The first provider of the kind other than `besides` that checks for and lists `model`."""
        for provider in self.providers[kind].values():
            if provider.id != besides and provider.checks_models and model in provider.models:
                return provider.id
        return None


def _provider(kind, entry, document, shared_ranges):
    models = tuple(dict.fromkeys([*entry.get("models", ()), *entry.get("legacy_models", ())]))
    own_ranges = {
        name: (limits["min"], limits["max"]) for name, limits in entry.get("params", {}).items()
    }
    return Provider(
        id=entry["id"],
        kind=entry.get("kind", "text"),
        models=models,
        checks_models=bool(models) and entry.get("model") != "free",
        default_model=entry.get("default_model"),
        voices=tuple(entry.get("voices", ())),
        # A language model's voices are always a closed list; a voice for speech is one only
        # where the catalog says so (voice_id: enum).
        checks_voices=bool(entry.get("voices"))
        and (kind == "llm" or entry.get("voice_id") == "enum"),
        settings=frozenset(_settings(kind, entry, document)),
        ranges={**shared_ranges, **own_ranges} if kind == "tts" else own_ranges,
        model_languages={
            model: tuple(languages) for model, languages in entry.get("model_languages", {}).items()
        },
    )


def _settings(kind, entry, document):
    """The provider-only fields a provider takes: its `settings`, else what its schema lists.

    The platform's own catalog lists `settings` for few providers; for the rest its `schemas`
    section (a JSON Schema per provider) names every field the provider takes.
    """
    if "settings" in entry:
        return entry["settings"]
    for option in _members(_members(document.get("schemas"), kind), "oneOf", ()):
        properties = _members(option, "properties")
        if entry["id"] in _members(_members(properties, "provider"), "enum", ()):
            return list(properties)
    return []


def _members(value, name, default=None):
    """`value[name]` where value is an object that has it; `default` (an empty object) if not.

    The platform's `schemas` section is read as far as it has the expected shape, no further.
    """
    found = value.get(name) if isinstance(value, dict) else None
    expected = dict if default is None else (list, tuple)
    return found if isinstance(found, expected) else ({} if default is None else default)


def load_catalog(path=None):
    """The catalog in the file at `path` (the shipped one when None), checked.

    Raises ConfigError naming the file and what is wrong with it: unreadable, not JSON, not
    version 1 of the format, or not shaped as the format says.
    """
    if not path:
        return default_catalog()
    return _read(Path(path), f"AGENTS_CATALOG: {path}")


_default = None


def default_catalog():
    """The catalog shipped with the service, read once per process."""
    global _default
    if _default is None:
        shipped = resources.files(__name__) / DEFAULT_FILE
        with resources.as_file(shipped) as path:
            _default = _read(path, f"The shipped catalog {path}")
    return _default


def _read(path, named):
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{named} cannot be read ({error.strerror}).") from None
    try:
        document = parse_json(raw)
    except InvalidJson as error:
        raise ConfigError(f"{named} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{named} is not a catalog: it must be a JSON object.")
    version = document.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ConfigError(
            f"{named} has catalog version {version!r}; this release reads version "
            f"{FORMAT_VERSION} only."
        )
    try:
        checked = CatalogFileSchema().load(document)
    except ValidationError as error:
        # Imported here: sentences orders messages by the agent schema, which reads the catalog.
        from sentences import validation_message

        problems = validation_message(error.messages, getattr(error, "schema", None))
        raise ConfigError(f"{named} is not a valid catalog. {problems}") from None
    return Catalog(checked, str(path))


_current = ContextVar("catalog")


def current():
    """The catalog of the app serving the request, or the shipped one outside any app."""
    catalog = _current.get(None)
    return default_catalog() if catalog is None else catalog


def activate(catalog):
    """Make `catalog` the current one in the calling context; returns the token to reset it."""
    return _current.set(catalog)


def reset(token):
    """Undo the `activate` that returned `token`."""
    _current.reset(token)


@contextmanager
def activated(catalog):
    """`catalog` is the current one inside the block."""
    token = activate(catalog)
    try:
        yield catalog
    finally:
        reset(token)
