"""Which members of a request body are secrets: write-only values no answer may reveal.

A stored secret is never shown, and no answer may depend on whether a value sent is the stored
one, or a client could confirm a guess. The secrets are every `webhook_secret`, and the `secret`
of a tool's `server` object (`llm_config.tools.N.server.secret`), at whatever depth they appear,
so that a body which is not a valid agent is treated the same way.
"""

import json

import orjson


def may_name_a_secret(raw):
    """False only when the JSON bytes `raw` cannot hold a secret: a member named as one is named
    in the text itself unless escaped or in UTF-16 or UTF-32 (which JSON may be sent in), so a
    text with none of these needs no walk through its members."""
    return b"secret" in raw or b"\\u" in raw or json.detect_encoding(raw) != "utf-8"


# What masked_secrets looks into and at: only containers hold members, and only members of these
# names can be secrets (a walk that called itself for every value cost a full agent half as much
# again).
CONTAINERS = (dict, list)
SECRET_NAMES = frozenset(("webhook_secret", "secret"))


def _is_secret(key, value, parent_key):
    """True when the member `key: value` of an object that is the member `parent_key` of its
    own parent (None at the top) is a secret."""
    return value is not None and (
        key == "webhook_secret" or (key == "secret" and parent_key == "server")
    )


def carries_secret(value, parent_key=None):
    """True when the JSON value holds a non-null secret anywhere."""
    if isinstance(value, dict):
        return any(
            _is_secret(key, item, parent_key) or carries_secret(item, key)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return any(carries_secret(item) for item in value)
    return False


def masked_secrets(value, mask, parent_key=None):
    """The JSON value with every non-null secret replaced by `mask`; a container that holds none
    is the value itself, not a copy.

    It walks only into the containers whose JSON names a secret. orjson writes a member's name as
    it is (none of the letters of `secret` is ever escaped), so text without `secret"` in it has
    no member named secret or webhook_secret. It writes a full agent in about 2 µs, where a walk
    through all its members took about 25 µs of a create. A container is written again for each
    level above it that names a secret.
    """
    if not isinstance(value, CONTAINERS) or not _may_hold_secret(value):
        return value
    if isinstance(value, list):
        return [masked_secrets(item, mask) for item in value]
    return {
        key: mask
        if key in SECRET_NAMES and _is_secret(key, item, parent_key)
        else masked_secrets(item, mask, key)
        for key, item in value.items()
    }


def _may_hold_secret(container):
    try:
        return b'secret"' in orjson.dumps(container)
    except TypeError:  # what orjson cannot write (an integer beyond 64 bits): look inside
        return True
