"""Sign and verify the platform's webhooks exactly as its TypeScript SDK's `Webhooks` does.

The platform signs `"{timestamp}.{raw body}"` with HMAC-SHA256, sends the hex digest as
`sha256=<hex>` in the `x-webhook-signature` header and the Unix-seconds timestamp in
`x-webhook-timestamp`. `verify` reproduces the SDK's `Webhooks.verify` checks, error
messages and JavaScript quirks (`parseInt` timestamp parsing, UTF-8 decoding of raw bytes), so
a Python receiver accepts and rejects exactly the deliveries the SDK would.
"""

import hashlib
import hmac
import json
import math
import re
import time
from types import MappingProxyType
from typing import Any

HEADERS = MappingProxyType(
    {
        "EVENT": "x-webhook-event",
        "SIGNATURE": "x-webhook-signature",
        "TIMESTAMP": "x-webhook-timestamp",
    }
)
DEFAULT_MAX_AGE = 300
SIGNATURE_PREFIX = "sha256="

MISSING_MESSAGE = "Missing signature, timestamp, or secret"
STALE_MESSAGE = "Webhook timestamp is too old or invalid"
INVALID_SIGNATURE_MESSAGE = "Invalid webhook signature"

# The characters JavaScript's parseInt skips before the number (StrWhiteSpaceChar); this is
# narrower than str.isspace(), which also accepts e.g. U+001C..U+001F and U+0085.
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_LEADING_INTEGER = re.compile(r"([+-]?)([0-9]+)")


class WebhookVerificationError(Exception):
    """Raised when a webhook delivery fails verification."""


def sign(payload: str | bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the signature and timestamp headers the platform would send for this payload."""
    if timestamp is None:
        timestamp = int(time.time())
    elif isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("timestamp must be an int number of Unix seconds or None")
    raw_timestamp = str(timestamp)
    digest = _hex_digest(secret, raw_timestamp, _payload_text(payload))
    return {"signature": SIGNATURE_PREFIX + digest, "timestamp": raw_timestamp}


def verify(
    payload: str | bytes,
    signature: str | None,
    timestamp: str | None,
    secret: str | None,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> Any:
    """Check a delivery's signature and age like the SDK and return its parsed JSON body."""
    if not signature or not timestamp or not secret:
        raise WebhookVerificationError(MISSING_MESSAGE)

    timestamp_seconds = _js_parse_int(timestamp)
    now_seconds = math.floor(time.time() if now is None else now)
    # NaN compares false, so the isnan test is what rejects a timestamp with no leading digits.
    if math.isnan(timestamp_seconds) or abs(now_seconds - timestamp_seconds) > max_age:
        raise WebhookVerificationError(STALE_MESSAGE)

    payload_text = _payload_text(payload)
    # The SDK signs the raw header value, not the parsed number ("17abc" stays "17abc").
    expected = _hex_digest(secret, timestamp, payload_text).encode("ascii")
    received_hex = signature.removeprefix(SIGNATURE_PREFIX)
    received = _js_utf8(received_hex)
    if len(received) != len(expected) or not hmac.compare_digest(received, expected):
        raise WebhookVerificationError(INVALID_SIGNATURE_MESSAGE)

    return json.loads(payload_text, parse_constant=_reject_non_json_constant)


def _hex_digest(secret: str, raw_timestamp: str, payload_text: str) -> str:
    signed_content = f"{raw_timestamp}.{payload_text}"
    return hmac.new(_js_utf8(secret), _js_utf8(signed_content), hashlib.sha256).hexdigest()


def _payload_text(payload: str | bytes) -> str:
    if isinstance(payload, str):
        return payload
    # Same replacement rules as Node's Buffer.toString("utf-8"): each maximal invalid
    # subsequence becomes one U+FFFD, and a leading BOM is kept.
    return bytes(payload).decode("utf-8", errors="replace")


def _js_utf8(text: str) -> bytes:
    """Encode text to UTF-8 the way Node encodes a JavaScript string."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # JavaScript strings are UTF-16: surrogate pairs form one character and Node writes a
        # lone surrogate as U+FFFD, where Python's encoder would raise.
        utf16 = text.encode("utf-16-le", errors="surrogatepass")
        return utf16.decode("utf-16-le", errors="replace").encode("utf-8")


def _js_parse_int(text: str) -> float:
    """Parse text like JavaScript's parseInt(text, 10): a float, or NaN when no digits lead."""
    match = _LEADING_INTEGER.match(text.lstrip(_JS_WHITESPACE))
    if match is None:
        return math.nan
    sign, digits = match.groups()
    # float() rounds like a JavaScript number and gives inf, not an error, for huge values.
    return float(sign + digits)


def _reject_non_json_constant(name: str) -> None:
    # JSON.parse rejects these, but Python's json module would accept them.
    raise ValueError(f"{name} is not valid JSON")
