"""The stored form of an agent: the response-ready JSON kept for it, that JSON's ETag, the
secrets kept beside it, and the writable fields read back from them.

A stored document is what every response shows: secrets are left out of it and said only to be
set (`webhook_secret_set`, a tool server's `secret_set`), and kept in columns of their own.
"""

import hashlib
import json

import orjson

READ_ONLY_FIELDS = ("id", "webhook_secret_set", "created_at", "updated_at")


def to_json(value):
    """The one JSON encoding used for stored documents: compact, UTF-8, key order kept.

    orjson's, a tenth of the standard encoder's cost for a full agent, which writes what orjson
    cannot hold (an integer beyond 64 bits). orjson writes numbers as JavaScript does (`1e-7`,
    `0.00001`) where the standard encoder writes `1e-07`, `1e-05`: the same values.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def from_json(text):
    """What `to_json` wrote, read back: by orjson, a third of the standard parser's cost for a
    full agent, and by the standard one for the integers beyond 64 bits orjson refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def etag_of(document):
    """The entity tag of a stored representation, unquoted as HTTP libraries compare them."""
    return hashlib.blake2b(document.encode(), digest_size=16).hexdigest()


def agent_row(namespace, agent_id, fields, created_at, updated_at):
    """The agent table's columns for an agent with these fields."""
    document, etag = render(agent_id, fields, created_at, updated_at)
    return {
        "namespace": namespace,
        "id": agent_id,
        "created_at": created_at,
        "updated_at": updated_at,
        "is_active": fields["is_active"],
        "search_text": search_text(fields),
        "webhook_secret": fields.get("webhook_secret"),
        "document": document,
        "etag": etag,
        "tool_secrets": tool_secrets_text(fields),
    }


def _tools(fields):
    return (fields.get("llm_config") or {}).get("tools") or ()


def tool_secrets_text(fields):
    """The tool_secrets column for these fields: one entry per tool, or None when none has one."""
    secrets = [(tool.get("server") or {}).get("secret") for tool in _tools(fields)]
    return to_json(secrets) if any(secret is not None for secret in secrets) else None


def _without_secrets(fields):
    """The fields as responses show them: no secret, only whether each one is set."""
    public = {key: value for key, value in fields.items() if key != "webhook_secret"}
    if not any("server" in tool for tool in _tools(fields)):
        return public
    tools = []
    for tool in _tools(fields):
        if "server" in tool:
            server = {key: value for key, value in tool["server"].items() if key != "secret"}
            server["secret_set"] = tool["server"].get("secret") is not None
            tool = {**tool, "server": server}
        tools.append(tool)
    public["llm_config"] = {**public["llm_config"], "tools": tools}
    return public


def render(agent_id, fields, created_at, updated_at):
    """The agent as every response shows it: id, the fields, the secret flag, timestamps."""
    public = _without_secrets(fields)
    document = to_json(
        {
            "id": agent_id,
            **public,
            "webhook_secret_set": fields.get("webhook_secret") is not None,
            "created_at": created_at,
            "updated_at": updated_at,
        }
    )
    return document, etag_of(document)


def search_text(fields):
    """What `q` searches: the case-folded name and business name."""
    return "\n".join(filter(None, (fields["name"], fields.get("business_name")))).casefold()


def editable_fields(document, webhook_secret, tool_secrets=None):
    """A stored agent as the writable fields a client could send, secrets included."""
    fields = from_json(document)
    for key in READ_ONLY_FIELDS:
        fields.pop(key, None)
    if webhook_secret is not None:
        fields["webhook_secret"] = webhook_secret
    secrets = from_json(tool_secrets) if tool_secrets else []
    for index, tool in enumerate(_tools(fields)):
        server = tool.get("server")
        if server is None:
            continue
        server.pop("secret_set", None)
        if index < len(secrets) and secrets[index] is not None:
            server["secret"] = secrets[index]
    return fields
