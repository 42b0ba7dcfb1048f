"""The plugin's `sign` and `verify`: exactly the platform SDK's `Webhooks.sign` and `.verify`."""

import hashlib
import hmac
import json
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agents_api import HEADERS, WebhookVerificationError, sign, verify

SECRET = "whsec_test_secret_12345"
TS = 1700000000
STATUS_PAYLOAD = '{"message":{"type":"status-update"}}'

MISSING = "Missing signature, timestamp, or secret"
STALE = "Webhook timestamp is too old or invalid"
INVALID = "Invalid webhook signature"

# Expected digests computed once with Node:
#   node -e 'const {createHmac}=require("node:crypto");
#            console.log(createHmac("sha256", SECRET).update(CONTENT).digest("hex"))'
# where CONTENT is the "{timestamp}.{payload}" string shown next to each vector.
NODE_STATUS_UPDATE = "09a6634fdc9688fdc77b1b2997e7d4abbeef50439bee0292c555d21be39b1675"
NODE_NON_ASCII = "489f4ecd687cb9dfe4f61ef6fc6c180eadd892336ac599c72c49d15c6aaabc00"
NODE_RAW_TIMESTAMP_SUFFIX = "567d591063302d73658418c07b80d16f3ca0e6217990c1e5b6e6523e59142677"
NODE_INVALID_UTF8 = "58262d5132ea6d85f7b6ce5b4d906511603180e8c2db01017762be3f5e46c468"
NODE_LONE_SURROGATE = "d54fe378c4ddf2eabc2516e4c878d701d2810e7317cb6fd4ce3cce88d09f50c2"
NODE_LEADING_SPACE = "46e22cd99f07dcad41d02ec976d4f6ff414e9bcc4455f4be605e22ae10d3de90"

# Bytes '{"a":"' 0xff 0xfe 0xc3 '"}' -- Node's Buffer.toString("utf-8") gives three U+FFFD.
INVALID_UTF8_PAYLOAD = b'{"a":"\xff\xfe\xc3"}'


def independent_hex(secret: str, raw_timestamp: str, payload: str) -> str:
    content = f"{raw_timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def expect_error(message: str, **kwargs) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(**kwargs)
    assert str(caught.value) == message


# --- sign -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "secret", "timestamp", "expected_hex"),
    [
        # "1700000000.{"message":{"type":"status-update"}}"
        (STATUS_PAYLOAD, SECRET, TS, NODE_STATUS_UPDATE),
        # "1712345678.{"summary":"Kunde möchte Rückruf 📞"}" with secret "s3cr3t-ü"
        ('{"summary":"Kunde möchte Rückruf 📞"}', "s3cr3t-ü", 1712345678, NODE_NON_ASCII),
        # "1700000000.{"a":"\ufffd\ufffd\ufffd"}" (bytes decoded like Buffer.toString)
        (INVALID_UTF8_PAYLOAD, SECRET, TS, NODE_INVALID_UTF8),
        # "1700000000.{"a":"\ud800"}" -- Node encodes the lone surrogate as U+FFFD
        ('{"a":"\ud800"}', SECRET, TS, NODE_LONE_SURROGATE),
    ],
)
def test_sign_matches_node_vectors(payload, secret, timestamp, expected_hex):
    assert sign(payload, secret, timestamp) == {
        "signature": f"sha256={expected_hex}",
        "timestamp": str(timestamp),
    }


def test_sign_format_and_default_timestamp_in_unix_seconds():
    before = int(time.time())
    result = sign("{}", SECRET)
    after = int(time.time())
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", result["signature"])
    assert before <= int(result["timestamp"]) <= after


@given(payload=st.text(), secret=st.text(min_size=1), timestamp=st.integers(0, 2**40))
def test_sign_matches_independent_hmac(payload, secret, timestamp):
    try:
        expected = independent_hex(secret, str(timestamp), payload)
    except UnicodeEncodeError:  # lone surrogates: covered by the Node vector above
        return
    assert sign(payload, secret, timestamp)["signature"] == f"sha256={expected}"


def test_sign_bytes_payload_equals_str_payload():
    assert sign(STATUS_PAYLOAD.encode(), SECRET, TS) == sign(STATUS_PAYLOAD, SECRET, TS)


@pytest.mark.parametrize("bad_timestamp", [1.5, "1700000000", True])
def test_sign_rejects_non_int_timestamp(bad_timestamp):
    with pytest.raises(TypeError):
        sign("{}", SECRET, bad_timestamp)


# --- verify: round trips ------------------------------------------------------------------


def test_round_trip_returns_parsed_payload():
    headers = sign(STATUS_PAYLOAD, SECRET, TS)
    result = verify(STATUS_PAYLOAD, headers["signature"], headers["timestamp"], SECRET, now=TS)
    assert result == {"message": {"type": "status-update"}}


def test_round_trip_with_default_clock():
    headers = sign(STATUS_PAYLOAD, SECRET)
    assert verify(STATUS_PAYLOAD, headers["signature"], headers["timestamp"], SECRET)


@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    ),
    secret=st.text(min_size=1),
)
def test_round_trip_property(body, secret):
    payload = json.dumps(body)
    headers = sign(payload, secret, TS)
    assert verify(payload, headers["signature"], headers["timestamp"], secret, now=TS) == body


def test_verify_node_vector():
    assert verify(STATUS_PAYLOAD, f"sha256={NODE_STATUS_UPDATE}", str(TS), SECRET, now=TS)


def test_prefix_is_optional():
    assert verify(STATUS_PAYLOAD, NODE_STATUS_UPDATE, str(TS), SECRET, now=TS)


def test_prefix_is_stripped_only_once():
    expect_error(
        INVALID,
        payload=STATUS_PAYLOAD,
        signature=f"sha256=sha256={NODE_STATUS_UPDATE}",
        timestamp=str(TS),
        secret=SECRET,
        now=TS,
    )


def test_bytes_payload_accepted():
    result = verify(STATUS_PAYLOAD.encode(), NODE_STATUS_UPDATE, str(TS), SECRET, now=TS)
    assert result["message"]["type"] == "status-update"


def test_non_utf8_payload_bytes_decode_like_buffer_to_string():
    result = verify(INVALID_UTF8_PAYLOAD, NODE_INVALID_UTF8, str(TS), SECRET, now=TS)
    assert result == {"a": "\ufffd\ufffd\ufffd"}


# (bytes inside a JSON string, what Node's Buffer.toString("utf-8") makes of them)
NODE_UTF8_DECODINGS = [
    (b"\xed\xa0\x80", "\ufffd" * 3),  # encoded surrogate
    (b"\xf0\x9f\x98", "\ufffd"),  # truncated 4-byte sequence
    (b"\xc0\xaf", "\ufffd" * 2),  # overlong encoding
    (b"\xe0\x80\x8f", "\ufffd" * 3),
    (b"\xf4\x90\x80\x80", "\ufffd" * 4),  # above U+10FFFF
    (b"\xe2\x82", "\ufffd"),
    (b"\x80\xbf", "\ufffd" * 2),  # stray continuation bytes
]


@pytest.mark.parametrize(("raw", "decoded"), NODE_UTF8_DECODINGS)
def test_invalid_utf8_replaced_like_node(raw, decoded):
    payload = b'{"a":"' + raw + b'"}'
    signature = independent_hex(SECRET, str(TS), '{"a":"' + decoded + '"}')
    assert verify(payload, signature, str(TS), SECRET, now=TS) == {"a": decoded}


def test_byte_order_mark_is_kept_like_node():
    # Buffer.toString keeps a leading BOM, and JSON.parse then rejects it.
    payload = b"\xef\xbb\xbf{}"
    signature = independent_hex(SECRET, str(TS), "\ufeff{}")
    with pytest.raises(json.JSONDecodeError):
        verify(payload, signature, str(TS), SECRET, now=TS)


# --- verify: signature failures -------------------------------------------------------------


def test_wrong_secret():
    headers = sign(STATUS_PAYLOAD, "other-secret", TS)
    expect_error(INVALID, payload=STATUS_PAYLOAD, secret=SECRET, now=TS, **headers)


def test_tampered_body():
    headers = sign(STATUS_PAYLOAD, SECRET, TS)
    tampered = '{"message":{"type":"tool-calls"}}'
    expect_error(INVALID, payload=tampered, secret=SECRET, now=TS, **headers)


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,
        "sha256=",  # nothing left after the prefix
        NODE_STATUS_UPDATE[:-1],  # shorter: length check
        NODE_STATUS_UPDATE + "0",  # longer: length check
        NODE_STATUS_UPDATE.upper(),  # the SDK compares hex strings, so case matters
        "SHA256=" + NODE_STATUS_UPDATE,  # prefix match is case-sensitive
        NODE_STATUS_UPDATE[:-1] + "é",  # non-ASCII: compared as UTF-8 bytes
    ],
)
def test_invalid_signatures(signature):
    expect_error(
        INVALID,
        payload=STATUS_PAYLOAD,
        signature=signature,
        timestamp=str(TS),
        secret=SECRET,
        now=TS,
    )


# --- verify: timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 1, 299, 300, -1, -300])
def test_timestamp_within_max_age_accepted(offset):
    headers = sign(STATUS_PAYLOAD, SECRET, TS)
    assert verify(STATUS_PAYLOAD, secret=SECRET, now=TS + offset, **headers)


@pytest.mark.parametrize("offset", [301, 10_000, -301, -10_000])
def test_stale_and_future_timestamps_rejected(offset):
    headers = sign(STATUS_PAYLOAD, SECRET, TS)
    expect_error(STALE, payload=STATUS_PAYLOAD, secret=SECRET, now=TS + offset, **headers)


def test_now_is_floored_like_math_floor():
    headers = sign(STATUS_PAYLOAD, SECRET, TS)
    assert verify(STATUS_PAYLOAD, secret=SECRET, now=TS + 300.9, **headers)
    expect_error(STALE, payload=STATUS_PAYLOAD, secret=SECRET, now=TS - 300.1, **headers)


def test_custom_max_age():
    headers = sign(STATUS_PAYLOAD, SECRET, TS)
    expect_error(STALE, payload=STATUS_PAYLOAD, secret=SECRET, now=TS + 500, **headers)
    assert verify(STATUS_PAYLOAD, secret=SECRET, now=TS + 500, max_age=600, **headers)
    assert verify(STATUS_PAYLOAD, secret=SECRET, now=TS + 600, max_age=600, **headers)
    expect_error(STALE, payload=STATUS_PAYLOAD, secret=SECRET, now=TS + 1, max_age=0, **headers)


def test_timestamp_with_trailing_garbage_is_parsed_but_signed_raw():
    # parseInt("1700000000abc", 10) === 1700000000, yet the signed content keeps "abc".
    # Node vector for content "1700000000abc.{}".
    assert verify("{}", NODE_RAW_TIMESTAMP_SUFFIX, "1700000000abc", SECRET, now=TS) == {}
    signed_for_clean_timestamp = sign("{}", SECRET, TS)["signature"]
    expect_error(
        INVALID,
        payload="{}",
        signature=signed_for_clean_timestamp,
        timestamp="1700000000abc",
        secret=SECRET,
        now=TS,
    )


def test_timestamp_with_leading_space():
    # parseInt(" 17", 10) === 17. Node vector for content " 17.{}".
    assert verify("{}", NODE_LEADING_SPACE, " 17", SECRET, now=17) == {}
    assert verify("{}", NODE_LEADING_SPACE, " 17", SECRET, now=317) == {}
    expect_error(
        STALE,
        payload="{}",
        signature=NODE_LEADING_SPACE,
        timestamp=" 17",
        secret=SECRET,
        now=318,
    )


@pytest.mark.parametrize(
    "raw_timestamp",
    ["+1700000000", "\u00a01700000000", "\ufeff\t1700000000", "1700000000.9", "1700000000 5"],
)
def test_other_parse_int_accepted_forms(raw_timestamp):
    signature = independent_hex(SECRET, raw_timestamp, "{}")
    assert verify("{}", signature, raw_timestamp, SECRET, now=TS) == {}


@pytest.mark.parametrize(
    "raw_timestamp",
    [
        "abc",
        "-",
        "+",
        "- 1700000000",
        "0x6553F100",  # parseInt(..., 10) stops at "x": 0
        "1.7e9",  # parseInt stops at ".": 1
        "\x1c1700000000",  # Python whitespace but not JavaScript whitespace
        "\u0661\u0667\u0660\u0660",  # Arabic-Indic digits are not digits to parseInt
        "9" * 400,  # parseInt gives Infinity
    ],
)
def test_unparseable_or_far_timestamps_rejected(raw_timestamp):
    signature = independent_hex(SECRET, raw_timestamp, "{}")
    expect_error(
        STALE,
        payload="{}",
        signature=signature,
        timestamp=raw_timestamp,
        secret=SECRET,
        now=TS,
    )


def test_timestamp_checked_before_signature():
    expect_error(STALE, payload="{}", signature="nope", timestamp="abc", secret=SECRET, now=TS)


# --- verify: missing pieces and body parsing ------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "timestamp", "secret"),
    [
        ("", str(TS), SECRET),
        (None, str(TS), SECRET),
        ("sha256=abc", "", SECRET),
        ("sha256=abc", None, SECRET),
        ("sha256=abc", str(TS), ""),
        ("sha256=abc", str(TS), None),
        ("", "abc", ""),  # reported before the timestamp is looked at
    ],
)
def test_missing_pieces(signature, timestamp, secret):
    expect_error(
        MISSING, payload="{}", signature=signature, timestamp=timestamp, secret=secret, now=TS
    )


def test_empty_payload_is_not_a_missing_piece():
    headers = sign("", SECRET, TS)
    with pytest.raises(json.JSONDecodeError):
        verify("", secret=SECRET, now=TS, **headers)


@pytest.mark.parametrize("payload", ["NaN", '{"x": Infinity}', "[-Infinity]"])
def test_non_json_constants_rejected_like_json_parse(payload):
    headers = sign(payload, SECRET, TS)
    with pytest.raises(ValueError) as caught:
        verify(payload, secret=SECRET, now=TS, **headers)
    assert not isinstance(caught.value, WebhookVerificationError)


# --- headers -------------------------------------------------------------------------------


def test_headers():
    assert dict(HEADERS) == {
        "EVENT": "x-webhook-event",
        "SIGNATURE": "x-webhook-signature",
        "TIMESTAMP": "x-webhook-timestamp",
    }
    with pytest.raises(TypeError):
        HEADERS["EVENT"] = "changed"  # type: ignore[index]
