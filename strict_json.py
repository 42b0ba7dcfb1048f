"""Reading JSON text strictly: only what JSON, the database and every response can hold.

Python's parser lets through what JSON itself cannot carry (NaN, numbers beyond a double, lone
surrogates, a key twice in one object); these refuse it with a sentence saying what is wrong.
"""

import json
import math
import re

# Deeper than any agent needs, shallow enough that no validator can run out of stack.
MAX_JSON_DEPTH = 64
# A body can hold a lone surrogate only as an escape (\ud800 to \udfff), encoded in its bytes
# (which json.loads lets through), or in UTF-16 or UTF-32 (the only encodings with NUL bytes).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class InvalidJson(ValueError):
    """The text is not JSON this service can hold; the message says why, as a sentence."""


def strict_json_loads(raw):
    """JSON text as Python values, refusing NaN, Infinity, numbers beyond a double, repeated keys.

    Raises InvalidJson for those, ValueError for text that is not JSON at all.
    """
    return json.loads(raw, **_STRICT_HOOKS)


def parse_json(raw):
    """Any JSON value that JSON, the database and every response can hold; else InvalidJson."""
    try:
        value = strict_json_loads(raw)
    except InvalidJson:
        raise
    except (ValueError, RecursionError):
        raise InvalidJson("The request body is not valid JSON.") from None
    # Walking every value costs a typical agent 60 to 85 µs; a look at its bytes, a tenth of that,
    # clears most bodies: fewer brackets than levels allowed, and nothing that could be a surrogate.
    if _may_nest_too_deep(raw) or _may_hold_surrogates(raw):
        _check_values(value)
    return value


def _may_nest_too_deep(raw):
    return raw.count(b"{") + raw.count(b"[") >= MAX_JSON_DEPTH


def _may_hold_surrogates(raw):
    # A search for plain bytes is a fraction of a regular expression's cost over the same body.
    return (b"\\u" in raw and _SURROGATE_ESCAPE.search(raw)) or b"\xed" in raw or b"\x00" in raw


def _finite_float(text):
    value = float(text)
    if math.isinf(value):
        raise InvalidJson("The request body has a number too large for a 64-bit float.")
    return value


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs):
    members = dict(pairs)
    if len(members) == len(pairs):
        return members
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise InvalidJson(
                f"The request body has the member {json.dumps(key, ensure_ascii=False)} twice "
                "in one object."
            )
        seen.add(key)
    return members


def _check_values(value):
    """Refuse what Python's parser lets through but JSON and SQLite cannot hold."""
    pending = [(value, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidJson(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not _is_unicode_text(value):
            raise InvalidJson(
                "The request body contains a lone surrogate, which is not Unicode text."
            )


def _is_unicode_text(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_STRICT_HOOKS = {
    "parse_constant": _reject_constant,
    "parse_float": _finite_float,
    "object_pairs_hook": _unique_keys,
}
# The same rules for text read a value at a time (`strict_decoder.raw_decode`).
strict_decoder = json.JSONDecoder(**_STRICT_HOOKS)
