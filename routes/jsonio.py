"""Reading JSON request bodies strictly, and answering with JSON the handlers already hold."""

import json
import math
import re

from flask import Response, request

from errors import ApiError

# Deeper than any agent needs, shallow enough that no validator can run out of stack.
MAX_JSON_DEPTH = 64
# A body can hold a lone surrogate only as an escape (\ud800 to \udfff), encoded in its bytes
# (which json.loads lets through), or in UTF-16 or UTF-32 (the only encodings with NUL bytes).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_json_body():
    """The request body as a JSON object, or an ApiError that says what is wrong with it."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json "
            "(or application/merge-patch+json for PATCH).",
        )
    body = parse_json(request.get_data(cache=True))
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    return body


def strict_json_loads(raw):
    """JSON text as Python values, refusing NaN, Infinity and numbers beyond a double."""
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


class NumberTooLarge(ValueError):
    """A JSON number beyond the range of a double, which Python would read as infinity."""


def parse_json(raw):
    """Any JSON value that JSON, SQLite and every response can hold, or an invalid_json ApiError."""
    try:
        value = strict_json_loads(raw)
    except NumberTooLarge:
        raise _invalid("The request body has a number too large for a 64-bit float.") from None
    except (ValueError, RecursionError):
        raise _invalid("The request body is not valid JSON.") from None
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
        raise NumberTooLarge(text)
    return value


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _invalid(message):
    return ApiError(400, "invalid_json", message)


def _check_values(value):
    """Refuse what Python's parser lets through but JSON and SQLite cannot hold."""
    pending = [(value, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise _invalid(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not _is_unicode_text(value):
            raise _invalid("The request body contains a lone surrogate, which is not Unicode text.")


def _is_unicode_text(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_response(text, status=200, headers=None):
    """A response whose body is JSON text already serialised."""
    return Response(text, status, headers, mimetype="application/json")

