"""Every setting of the service, its default, and how it is read from `AGENTS_*` variables."""

import ipaddress
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
    "BIND": ("127.0.0.1:8000", str),
    "ALLOW_UNAUTHENTICATED": (False, boolean),
    # 0 sizes the pool from the cores: two workers per core, at most 8.
    "WORKERS": (0, int),
    "THREADS": (2, int),
    "LOG_LEVEL": ("info", str),
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


def exposure_refusal(addresses, api_keys, allow_unauthenticated):
    """Why listening on `addresses` is refused, or None.

    Without API keys anyone who can reach the port can read and change every agent, so only
    loopback addresses are allowed unless open access is asked for by name.
    """
    if api_keys or allow_unauthenticated:
        return None
    exposed = [address for address in addresses if not _is_loopback(address)]
    if not exposed:
        return None
    return (
        f"Refusing to listen on {', '.join(exposed)} without {ENV_PREFIX}API_KEYS; "
        f"set {ENV_PREFIX}ALLOW_UNAUTHENTICATED=1 (or pass --allow-unauthenticated) "
        "if open access is intended."
    )


def _is_loopback(address):
    if address.startswith("unix:"):
        return True
    if address.startswith("["):
        host = address[1:address.find("]")]
    else:
        host = address.rsplit(":", 1)[0] if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
