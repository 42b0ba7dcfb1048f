"""Every setting of the service, its default, and how it is read from `AGENTS_*` variables."""

import os

ENV_PREFIX = "AGENTS_"


def boolean(raw):
    """`1`/`true` and `0`/`false` (any case); anything else is a mistake worth refusing."""
    value = raw.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise ValueError(raw)


# name: (default, parser). The README quotes this table.
SETTINGS = {
    "DATABASE_URL": ("sqlite:///data/agents.db", str),
    "API_KEYS": ("", str),
    "URL_PREFIX": ("", str),
    "MAX_BODY_BYTES": (1024 * 1024, int),
    # The /_test routes, namespaces, journal and faults for other services' test suites.
    "TEST_MODE": (False, boolean),
    # A fixtures file ({"agents": [...]}) loaded into the default namespace; test mode only.
    "FIXTURES": ("", str),
}


class ConfigError(ValueError):
    """A setting has a value the service cannot start with."""


def load_settings(environ=None):
    """Return the settings from the environment, with defaults for what is unset."""
    environ = os.environ if environ is None else environ
    settings = {}
    for name, (default, parse) in SETTINGS.items():
        raw = environ.get(ENV_PREFIX + name)
        if raw is None:
            settings[name] = default
            continue
        try:
            settings[name] = parse(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name} must be a {parse.__name__}, not {raw!r}.") from None
    return settings


def parse_api_keys(raw):
    """Split the comma-separated key list, dropping blanks."""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def normalise_prefix(raw):
    """`api/v1/` and `/api/v1` both mean `/api/v1`; empty means no prefix."""
    stripped = raw.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def sqlite_path(database_url):
    """The file path of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    scheme = "sqlite:///"
    if not database_url.startswith(scheme) or len(database_url) == len(scheme):
        raise ConfigError(f"{ENV_PREFIX}DATABASE_URL must look like sqlite:///path/to/file.db.")
    return database_url[len(scheme):]
