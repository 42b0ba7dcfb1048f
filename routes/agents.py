"""The agents resource: list, create, read, update and delete, under both path families.

`/assistants` is the platform's current name and `/agents` the reference page's; `blueprint`
builds the same views for each, answering in that family's envelopes (`{"assistant": ...}` or
`{"agent": ...}`) and naming that family in `Location` and `Link`.
"""

import base64
import binascii
import hashlib
import json
import re

from flask import Blueprint, g, request, url_for
from marshmallow import ValidationError

import models
from openapi import BODY_ERRORS, header, operation
from routes.jsonio import json_response, read_json_body
from schemas import (
    AGENT,
    IDEMPOTENCY_KEY_PATTERN,
    AgentEnvelopeSchema,
    AgentListSchema,
    AgentSchema,
    AssistantEnvelopeSchema,
    AssistantListSchema,
    ListQuerySchema,
    SuccessSchema,
    load_patched,
)
from secret_fields import carries_secret, masked_secrets
from strict_fields import LOWERCASE_UUID_PATTERN, is_utc_timestamp

# family: (the member one agent is answered in, its envelope, the list's envelope)
FAMILIES = {
    "assistants": ("assistant", AssistantEnvelopeSchema, AssistantListSchema),
    "agents": ("agent", AgentEnvelopeSchema, AgentListSchema),
}
LIST_QUERY = ListQuerySchema()
UUID_TEXT = re.compile(LOWERCASE_UUID_PATTERN, re.IGNORECASE)
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
# If-Match and If-None-Match (RFC 9110 sections 13.1.1-2): `*`, or a comma-separated list of
# entity tags. A list may hold empty elements (section 5.6.1) but must name at least one tag.
# Werkzeug's parser reads any text as some list, so a broken header would count as none.
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_OWS = r"[ \t]*"
ENTITY_TAG_LIST = re.compile(
    rf"{_OWS}(?:\*|(?:,{_OWS})*{_ENTITY_TAG}(?:{_OWS},(?:{_OWS}{_ENTITY_TAG})?)*){_OWS}"
)
MALFORMED_PRECONDITION = (
    'must be * or a comma-separated list of entity tags in double quotes, such as "5f1e0c" '
    'or W/"5f1e0c".'
)

AGENT_ID = {
    "agent_id": {
        "description": "The agent's id, a lowercase UUID.",
        "schema": {"type": "string", "format": "uuid"},
    }
}
ETAG = {"ETag": {"description": "The agent's version.", "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "The agent's URL.", "schema": {"type": "string"}}}
IDEMPOTENCY_KEY_HEADER = header(
    "Idempotency-Key",
    "Makes a retried create safe: a repeat within 24 hours returns the first answer.",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
)


def blueprint(family):
    """The views of one path family, `/<family>` and `/<family>/<id>`."""
    member, envelope, listing = FAMILIES[family]
    bp = Blueprint(family, __name__)
    bp.tag = family
    bp.uses_database = True
    bp.protected = True
    bp.rate_limited = True

    def agent_response(agent, status=200):
        return json_response(agent_body(member, agent.document), status, etag_header(agent.etag))

    @bp.get(f"/{family}", strict_slashes=False)
    @operation(ok=(200, "The agents.", listing, None), query=ListQuerySchema, errors=(400,))
    def list_all():
        """List agents, newest first; all of them, or one page when `limit` is given."""
        body, next_query = list_page(family, request.args, _namespace())
        headers = None
        if next_query is not None:
            headers = {"Link": next_page_link(url_for(f"{family}.list_all", **next_query))}
        return json_response(body, headers=headers)

    @bp.post(f"/{family}", strict_slashes=False)
    @operation(
        ok=(201, "The new agent.", envelope, {**ETAG, **LOCATION}),
        body=AgentSchema,
        headers=[IDEMPOTENCY_KEY_HEADER],
        errors=(409, *BODY_ERRORS),
    )
    def create():
        """Create an agent."""
        body = read_json_body()
        fields = AGENT.load(body)
        key = _idempotency_key()
        fingerprint = _fingerprint(body) if key else None
        agent, replayed = models.create_agent(fields, key, fingerprint, namespace=_namespace())
        response = agent_response(agent, 201)
        response.headers["Location"] = url_for(f"{family}.get_one", agent_id=agent.id)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    @bp.get(f"/{family}/<agent_id>", strict_slashes=False)
    @operation(
        ok=(200, "The agent.", envelope, ETAG),
        path_parameters=AGENT_ID,
        errors=(400, 404),
        headers=[header("If-None-Match", "Answer 304 while the ETag still holds.")],
        not_modified="Not modified: the agent still has the ETag sent in If-None-Match.",
    )
    def get_one(agent_id):
        """Get an agent."""
        if_none_match = _precondition("If-None-Match")
        agent = models.get_agent(_known_id(agent_id), namespace=_namespace())
        if if_none_match is not None and request.if_none_match.contains_weak(agent.etag):
            return json_response(b"", 304, etag_header(agent.etag))
        return agent_response(agent)

    @bp.patch(f"/{family}/<agent_id>", strict_slashes=False)
    @operation(
        ok=(200, "The updated agent.", envelope, ETAG),
        path_parameters=AGENT_ID,
        body=AgentSchema,
        merge_patch=True,
        headers=[header("If-Match", "Refuse the change if the agent changed since.")],
        content_types=("application/merge-patch+json", "application/json"),
        errors=(404, 412, *BODY_ERRORS),
    )
    def update(agent_id):
        """Update an agent with a JSON merge patch (RFC 7396)."""
        etag_matches = _if_match()
        patch = read_json_body()
        agent = models.update_agent(
            _known_id(agent_id),
            lambda current: load_patched(current, patch),
            etag_matches=etag_matches,
            # Sending the stored secret must be answered as sending any other would be.
            always_write=carries_secret(patch),
            namespace=_namespace(),
        )
        return agent_response(agent)

    @bp.delete(f"/{family}/<agent_id>", strict_slashes=False)
    @operation(
        ok=(200, "The agent is gone.", SuccessSchema, None),
        path_parameters=AGENT_ID,
        headers=[header("If-Match", "Refuse the delete if the agent changed since.")],
        errors=(400, 404, 412),
    )
    def delete(agent_id):
        """Delete an agent."""
        models.delete_agent(_known_id(agent_id), etag_matches=_if_match(), namespace=_namespace())
        return json_response('{"success":true}')

    return bp


def list_page(family, args, namespace):
    """One page of GET /<family> for its query `args` (a MultiDict), as (the body in JSON bytes,
    the query of the next page or None when there is none)."""
    query = LIST_QUERY.load_query(args)
    limit = query.get("limit")
    documents = models.list_agents(
        limit=None if limit is None else limit + 1,
        after=_decode_cursor(query["cursor"]) if "cursor" in query else None,
        is_active=query.get("is_active"),
        query=query.get("q"),
        namespace=namespace,
        as_bytes=True,
    )
    has_more = limit is not None and len(documents) > limit
    page = documents[:limit]
    next_cursor = _encode_cursor(page[-1]) if has_more else None
    body = b'{"%s":[%s],"has_more":%s,"next_cursor":%s}' % (
        family.encode(),
        b",".join(page),
        b"true" if has_more else b"false",
        json.dumps(next_cursor).encode(),
    )
    next_query = {**args.to_dict(), "cursor": next_cursor} if has_more else None
    return body, next_query


def next_page_link(url):
    """The Link header that points at the next page."""
    return f'<{url}>; rel="next"'


def _namespace():
    """Set by test mode from X-Agents-Namespace; otherwise every agent is in the default one."""
    return g.get("namespace", models.DEFAULT_NAMESPACE)


def agent_body(member, document):
    """One agent's envelope around its stored JSON, text or (as a fast read has it) bytes."""
    if isinstance(document, bytes):
        return b'{"%s":%s}' % (member.encode(), document)
    return '{"%s":%s}' % (member, document)


def etag_header(etag):
    return {"ETag": f'"{etag}"'}


def _known_id(agent_id):
    """Agent ids are lowercase UUIDs; anything else names no agent."""
    if not UUID_TEXT.match(agent_id):
        raise models.AgentNotFound(agent_id)
    return agent_id.lower()


def _if_match():
    """What accepts the stored ETag under If-Match (strong comparison); None without one."""
    return None if _precondition("If-Match") is None else request.if_match.contains


def _precondition(header):
    """The header's value, or None; a 400 naming it when it is not `*` or entity tags."""
    value = request.headers.get(header)
    if value is not None and not ENTITY_TAG_LIST.fullmatch(value):
        raise ValidationError({header: [MALFORMED_PRECONDITION]})
    return value


def _idempotency_key():
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ValidationError(
            {"Idempotency-Key": ["must be 1 to 255 printable ASCII characters without spaces."]}
        )
    return key


def _fingerprint(body):
    """The request's identity for Idempotency-Key: its JSON value, secrets counted only as sent.

    A retry that differs only in a secret's value replays too; were it a 409, the answer would
    tell whether a guess of the first request's (stored) secret was right.
    """
    masked = masked_secrets(body, mask=True)
    canonical = json.dumps(masked, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _encode_cursor(document):
    """The position of the agent in `document`, read back from the JSON stored for it."""
    agent = json.loads(document)
    position = f"{agent['created_at']}|{agent['id']}".encode()
    return base64.urlsafe_b64encode(position).decode().rstrip("=")


def _decode_cursor(cursor):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, agent_id = base64.urlsafe_b64decode(padded).decode().split("|")
    except (ValueError, binascii.Error):
        created_at = agent_id = ""
    if not (UUID_TEXT.match(agent_id) and is_utc_timestamp(created_at)):
        raise ValidationError({"cursor": ["is not a cursor this service issued."]})
    return created_at, agent_id
