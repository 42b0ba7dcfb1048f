"""Every setting of the service, its default, and how it is read from `AGENTS_*` variables.

`load_settings` is the one pass over them: each value is parsed and checked once, here, and a
value the service cannot start with is a ConfigError that names the variable.
"""

import ipaddress
import os
import re

from storage import absolute_url, shown_url

ENV_PREFIX = "AGENTS_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A setting has a value the service cannot start with."""


def boolean(raw):
    """`1`/`true` and `0`/`false` (any case); anything else is a mistake worth refusing."""
    value = raw.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise ValueError("must be 1 or 0 (or true or false)")


def whole_number(raw):
    """A decimal integer of ASCII digits."""
    if not re.fullmatch(r"\s*[0-9]+\s*", raw):
        raise ValueError("must be a whole number")
    return int(raw)


def text(raw):
    return raw


def file_path(raw):
    """A path, made absolute against the working directory the setting was read in."""
    return os.path.abspath(raw) if raw.strip() else ""


RATE_WINDOWS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^\s*([0-9]+)\s*/\s*(second|minute|hour)\s*$")


def rate_limit(raw):
    """`100/minute` (or `/second`, `/hour`) as (100, 60); empty means no limit (None)."""
    if not raw.strip():
        return None
    match = _RATE.match(raw)
    if match is None or int(match.group(1)) < 1:
        raise ValueError("must be COUNT/second, COUNT/minute or COUNT/hour, such as 100/minute")
    return int(match.group(1)), RATE_WINDOWS[match.group(2)]


# name: (default, parser). The README quotes this table.
SETTINGS = {
    "DATABASE_URL": ("sqlite:///data/agents.db", text),
    "API_KEYS": ("", text),
    "URL_PREFIX": ("", text),
    "MAX_BODY_BYTES": (1024 * 1024, whole_number),
    # The /_test routes, namespaces, journal and faults for other services' test suites.
    "TEST_MODE": (False, boolean),
    # A fixtures file ({"agents": [...]}) loaded into the default namespace; test mode only.
    "FIXTURES": ("", file_path),
    "BIND": ("127.0.0.1:8000", text),
    "ALLOW_UNAUTHENTICATED": (False, boolean),
    # 0 sizes the pool from the cores: two workers per core, at most 8.
    "WORKERS": (0, whole_number),
    "THREADS": (2, whole_number),
    "LOG_LEVEL": ("info", text),
    # A catalog file (providers, models, voices, settings) in place of the shipped one.
    "CATALOG": ("", text),
    # Requests per API key (per client address without keys) in a window; empty: no limit.
    "RATE_LIMIT": (None, rate_limit),
}


# Settings that name files: `serve` passes them on made absolute, since gunicorn starts in the
# service's own folder rather than the caller's.
PATH_SETTINGS = ("DATABASE_URL", "FIXTURES")


def load_settings(environ=None, overrides=None):
    """Every setting, from `overrides` (values or text), else the environment, else its default.

    Text is parsed as the environment's is; the whole set is then checked together.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    settings = {}
    for name, (default, parse) in SETTINGS.items():
        raw = overrides[name] if name in overrides else environ.get(ENV_PREFIX + name)
        if raw is None:
            settings[name] = default
        elif isinstance(raw, str):
            settings[name] = _parsed(name, raw, parse)
        else:
            settings[name] = raw
    return _checked(settings)


def _parsed(name, raw, parse):
    try:
        return parse(raw)
    except ValueError as error:
        raise ConfigError(f"{ENV_PREFIX}{name} {error}, not {raw!r}.") from None


def _checked(settings):
    settings["URL_PREFIX"] = normalise_prefix(settings["URL_PREFIX"])
    if isinstance(settings["API_KEYS"], str):
        settings["API_KEYS"] = parse_api_keys(settings["API_KEYS"])
    try:
        settings["DATABASE_URL"] = absolute_url(settings["DATABASE_URL"])
    except ValueError as error:
        raise ConfigError(
            f"{ENV_PREFIX}DATABASE_URL {error}, not {shown_url(settings['DATABASE_URL'])!r}."
        ) from None
    level = settings["LOG_LEVEL"].strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"{ENV_PREFIX}LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
            f"not {settings['LOG_LEVEL']!r}."
        )
    settings["LOG_LEVEL"] = level
    check_bind(settings["BIND"], f"{ENV_PREFIX}BIND")
    for name, minimum in (("MAX_BODY_BYTES", 1), ("THREADS", 1), ("WORKERS", 0)):
        if settings[name] < minimum:
            raise ConfigError(f"{ENV_PREFIX}{name} must be at least {minimum}.")
    if settings["FIXTURES"] and not settings["TEST_MODE"]:
        raise ConfigError(
            f"{ENV_PREFIX}FIXTURES needs {ENV_PREFIX}TEST_MODE=1: fixtures are for test doubles."
        )
    return settings


def parse_api_keys(raw):
    """Split the comma-separated key list, dropping blanks."""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def normalise_prefix(raw):
    """`api/v1/` and `/api/v1` both mean `/api/v1`; empty means no prefix."""
    stripped = raw.strip().strip("/")
    return f"/{stripped}" if stripped else ""


# host:port, [v6 address]:port, or unix:/path.
_BIND = re.compile(r"^(?:unix:.+|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}|[A-Za-z0-9_.-]+:[0-9]{1,5})$")


def check_bind(address, what):
    """Refuse a listening address that is not HOST:PORT, [IPv6]:PORT or unix:PATH."""
    if not _BIND.match(address) or (
        not address.startswith("unix:") and int(address.rsplit(":", 1)[1]) > 65535
    ):
        raise ConfigError(
            f"{what} must be HOST:PORT (such as 127.0.0.1:8000), [IPv6]:PORT or unix:PATH, "
            f"not {address!r}."
        )


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
        host = address[1 : address.find("]")]
    else:
        host = address.rsplit(":", 1)[0] if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
