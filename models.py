"""Agents in the database: the tables and every read and write.

Each agent row keeps the response-ready JSON of the agent (`document`, built by stored_form)
beside the few columns that are queried, so reads and lists hand stored text straight to the
client. Everything is
scoped by namespace (test mode's; outside it every agent is in the default one).

The models work on the current store (store.py): the one the request's app, or a command,
activated.
"""

import json
import math
import time
from typing import NamedTuple

from peewee import (
    AutoField,
    BooleanField,
    CompositeKey,
    FloatField,
    IntegerField,
    Model,
    TextField,
    chunked,
)

from store import current_store, db, write_transaction
from stored_form import (
    agent_row,
    editable_fields,
    render,
    search_text,
    to_json,
    tool_secrets_text,
)

DEFAULT_NAMESPACE = "default"
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# How often an update is revised again after other writers changed the agent under it, before
# it revises and writes under the write lock instead.
OPTIMISTIC_ATTEMPTS = 3


class AgentNotFound(LookupError):
    """No agent has that id."""


class AgentChanged(Exception):
    """The agent's current ETag is not the one the client sent in If-Match."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key came back with a different request body."""


class AgentIdsTaken(Exception):
    """Agents to load carry ids that stored agents already have; `indexes` says which."""

    def __init__(self, indexes):
        super().__init__(indexes)
        self.indexes = indexes


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class JsonText(TextField):
    """A JSON value stored as its compact text."""

    def db_value(self, value):
        return to_json(value)

    def python_value(self, value):
        return json.loads(value)


class Agent(BaseModel):
    # The rowid the search index is keyed on (migrations.SEARCH_INDEX), numbered by SQLite.
    sequence = AutoField()
    namespace = TextField(default=DEFAULT_NAMESPACE)
    id = TextField()
    created_at = TextField()
    updated_at = TextField()
    is_active = BooleanField()
    # Case-folded name and business name, searched by `q`.
    search_text = TextField()
    webhook_secret = TextField(null=True)
    document = TextField()
    etag = TextField()
    # The secrets of the agent's tool servers, by tool (JSON: a list with null where a tool has
    # none), kept out of the document as the webhook secret is; null when no tool has one.
    tool_secrets = TextField(null=True)

    class Meta:
        indexes = (
            (("namespace", "id"), True),
            (("namespace", "created_at", "id", "search_text"), False),
            (("namespace", "is_active", "created_at", "id", "search_text"), False),
        )


class IdempotencyRecord(BaseModel):
    namespace = TextField(default=DEFAULT_NAMESPACE)
    key = TextField()
    fingerprint = TextField()
    agent_id = TextField()
    document = TextField()
    etag = TextField()
    status = IntegerField()
    created = FloatField(index=True)

    class Meta:
        primary_key = CompositeKey("namespace", "key")


TABLES = (Agent, IdempotencyRecord)


class StoredAgent(NamedTuple):
    """An agent as the routes answer with it: response-ready JSON and the ETag of that JSON."""

    id: str
    document: str
    etag: str


# The request paths run the same few statements all day, so they are written out once here
# rather than built by the query builder on every request.
SELECT_AGENT = 'SELECT "id", "document", "etag" FROM "agent" WHERE "namespace" = ? AND "id" = ?'
SELECT_DOCUMENTS = 'SELECT "document" FROM "agent" WHERE "namespace" = ?'
NEWEST_FIRST = ' ORDER BY "created_at" DESC, "id" DESC'
# The trigram index (migrations.SEARCH_INDEX) finds the agents that hold a text of at least
# TRIGRAM characters; CROSS JOIN makes SQLite start from it rather than from the newest agent.
TRIGRAM = 3
SEARCH_DOCUMENTS = (
    'SELECT "document" FROM "agent_search" CROSS JOIN "agent" '
    'ON "agent"."sequence" = "agent_search"."rowid" '
    'WHERE "agent_search" MATCH ? AND "namespace" = ?'
)
HOLDS = """ AND "agent"."search_text" LIKE ? ESCAPE '\\'"""
# Where an agent stands in the list, read from the list index alone.
POSITIONS = 'SELECT "created_at", "id" FROM "agent" WHERE "namespace" = ?'
# How many of the newest agents a search reads before it asks the index: a text one in ten of
# them holds fills a page of 100 here, in about a millisecond at any count.
SCAN_FIRST = 1000
COUNT_MATCHES = (
    'SELECT count(*) FROM (SELECT 1 FROM "agent_search" WHERE "agent_search" MATCH ? LIMIT ?)'
)
LAST_SEQUENCE = 'SELECT max("sequence") FROM "agent"'
MERGE_SEARCH_INDEX = """INSERT INTO "agent_search" ("agent_search") VALUES ('optimize')"""
INSERT_AGENT = (
    'INSERT INTO "agent" ("namespace", "id", "created_at", "updated_at", "is_active", '
    '"search_text", "webhook_secret", "document", "etag", "tool_secrets") '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_EDITABLE = (
    'SELECT "document", "etag", "created_at", "webhook_secret", "tool_secrets" FROM "agent" '
    'WHERE "namespace" = ? AND "id" = ?'
)
UPDATE_IF_UNCHANGED = (
    'UPDATE "agent" SET "updated_at" = ?, "is_active" = ?, "search_text" = ?, '
    '"webhook_secret" = ?, "document" = ?, "etag" = ?, "tool_secrets" = ? '
    'WHERE "namespace" = ? AND "id" = ? AND "etag" = ?'
)
DELETE_AGENT = 'DELETE FROM "agent" WHERE "namespace" = ? AND "id" = ?'


def get_agent(agent_id, namespace=DEFAULT_NAMESPACE):
    """The stored agent with that id; raises AgentNotFound."""
    row = db.execute_sql(SELECT_AGENT, (namespace, agent_id)).fetchone()
    if row is None:
        raise AgentNotFound(agent_id)
    return StoredAgent(*row)


def list_agents(limit=None, after=None, is_active=None, query=None, namespace=DEFAULT_NAMESPACE):
    """The stored JSON of agents newest first, `limit` (all when None) after `after`.

    `after` is the (created_at, id) of the last agent of the previous page. Only the documents
    are fetched: every other column would cost a Python string per row for nothing.

    A search (`query`) of at least TRIGRAM characters looks at the newest SCAN_FIRST agents
    first (the list index carries the search text, so only the matches' rows are read): a
    text one in ten agents holds fills its page among them. Otherwise, if few enough agents
    hold it, they are found in the trigram index and sorted; if many do, the scan newest first
    goes on until the page is full.
    """
    folded = query.casefold() if query else None
    # The index needs three characters, and no NUL: it would end the LIKE pattern.
    indexed = folded and len(folded) >= TRIGRAM and "\0" not in folded
    if indexed and limit is not None:
        page = _among_the_newest(folded, limit, after, is_active, namespace)
        if page is not None:
            return page
        indexed = _held_by_few(folded, limit)
    if indexed:
        sql, params = _filtered(SEARCH_DOCUMENTS, [_phrase(folded), namespace], is_active, after)
    else:
        sql, params = _filtered(SELECT_DOCUMENTS, [namespace], is_active, after)
    if folded:
        # The rule of a search, however the rows were found: the text is in the search text.
        sql += HOLDS
        params.append(_pattern(folded))
    sql += NEWEST_FIRST
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [row[0] for row in db.execute_sql(sql, params)]


def _filtered(select, params, is_active, after):
    sql = [select]
    if is_active is not None:
        sql.append(' AND "is_active" = ?')
        params.append(is_active)
    if after is not None:
        # A row value, unlike the equivalent OR, lets SQLite start the index scan at the cursor.
        sql.append(' AND ("created_at", "id") < (?, ?)')
        params.extend(after)
    return "".join(sql), params


def _pattern(folded):
    return f"%{_escape_like(folded)}%"


def _among_the_newest(folded, limit, after, is_active, namespace):
    """The page of a search if the newest SCAN_FIRST agents hold it (or are all there is)."""
    sql, params = _filtered(POSITIONS, [namespace], is_active, after)
    edge = db.execute_sql(f"{sql}{NEWEST_FIRST} LIMIT 1 OFFSET ?", (*params, SCAN_FIRST - 1))
    edge = edge.fetchone()
    sql, params = _filtered(SELECT_DOCUMENTS, [namespace], is_active, after)
    sql += HOLDS
    params.append(_pattern(folded))
    if edge is not None:
        sql += ' AND ("created_at", "id") >= (?, ?)'
        params.extend(edge)
    page = [row[0] for row in db.execute_sql(f"{sql}{NEWEST_FIRST} LIMIT ?", (*params, limit))]
    if len(page) < limit and edge is not None:
        return None
    return page


def _held_by_few(folded, limit):
    """Whether sorting the agents that hold `folded` costs less than scanning for a page.

    Sorting costs about as much per agent as the scan does per agent it reads, and the scan
    reads about limit × agents ÷ holders, so the two cost the same at √(limit × agents) holders.
    """
    most = max(SCAN_FIRST, math.isqrt((limit + 1) * last_sequence()))
    held_by = db.execute_sql(COUNT_MATCHES, (_phrase(folded), most + 1)).fetchone()[0]
    return held_by <= most


def _phrase(folded):
    """An FTS5 query for the text as one phrase: every trigram of it, in a row."""
    return '"' + folded.replace('"', '""') + '"'


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def create_agent(fields, idempotency_key=None, fingerprint=None, namespace=DEFAULT_NAMESPACE):
    """Store a new agent from validated fields; returns (agent, replayed).

    With an idempotency key, a repeat of an earlier request returns that request's agent as it
    was first answered, and creates nothing.
    """
    store = current_store()
    with write_transaction():
        if idempotency_key is not None:
            earlier = _idempotent_replay(namespace, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier, True
        now = store.now(namespace)
        row = agent_row(namespace, store.new_id(namespace), fields, now, now)
        # INSERT_AGENT names the columns in _row's order.
        db.execute_sql(INSERT_AGENT, tuple(row.values()))
        agent_id, document, etag = row["id"], row["document"], row["etag"]
        if idempotency_key is not None:
            IdempotencyRecord.create(
                namespace=namespace,
                key=idempotency_key,
                fingerprint=fingerprint,
                agent_id=agent_id,
                document=document,
                etag=etag,
                status=201,
                created=time.time(),
            )
    return StoredAgent(agent_id, document, etag), False


def _idempotent_replay(namespace, key, fingerprint):
    IdempotencyRecord.delete().where(
        IdempotencyRecord.created < time.time() - IDEMPOTENCY_TTL_SECONDS
    ).execute()
    record = IdempotencyRecord.get_or_none(
        (IdempotencyRecord.namespace == namespace) & (IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    return StoredAgent(record.agent_id, record.document, record.etag)


def update_agent(
    agent_id, revise, etag_matches=None, always_write=False, namespace=DEFAULT_NAMESPACE
):
    """Replace an agent's fields with `revise(current_fields)`, as one read-revise-write.

    `etag_matches`, when given, must accept the stored ETag or AgentChanged is raised. When the
    revised fields equal the stored ones nothing is written and `updated_at` stays, unless
    `always_write` says to write (and stamp) them all the same.

    Revising (validating, mostly) takes longer than writing, so it runs outside the write lock:
    the write then applies only if the agent still has the ETag it was revised from, and
    otherwise the update starts again from the newer agent, as if it had waited for the lock.
    """
    for _ in range(OPTIMISTIC_ATTEMPTS):
        updated = _revise_and_write(agent_id, revise, etag_matches, always_write, namespace)
        if updated is not None:
            return updated
    with write_transaction():
        return _revise_and_write(agent_id, revise, etag_matches, always_write, namespace)


def _revise_and_write(agent_id, revise, etag_matches, always_write, namespace):
    """The updated agent, or None when another writer changed it after it was read."""
    stored = _checked_agent(agent_id, etag_matches, namespace)
    document, etag, created_at, webhook_secret, tool_secrets = stored
    current = editable_fields(document, webhook_secret, tool_secrets)
    fields = revise(current)
    if fields == current and not always_write:
        return StoredAgent(agent_id, document, etag)
    now = current_store().now(namespace)
    new_document, new_etag = render(agent_id, fields, created_at, now)
    with write_transaction():
        written = db.execute_sql(
            UPDATE_IF_UNCHANGED,
            (
                now,
                fields["is_active"],
                search_text(fields),
                fields.get("webhook_secret"),
                new_document,
                new_etag,
                tool_secrets_text(fields),
                namespace,
                agent_id,
                etag,
            ),
        ).rowcount
    return StoredAgent(agent_id, new_document, new_etag) if written else None


def delete_agent(agent_id, etag_matches=None, namespace=DEFAULT_NAMESPACE):
    """Remove an agent; raises AgentNotFound, or AgentChanged on an If-Match mismatch."""
    with write_transaction():
        _checked_agent(agent_id, etag_matches, namespace)
        db.execute_sql(DELETE_AGENT, (namespace, agent_id))


def _checked_agent(agent_id, etag_matches, namespace):
    row = db.execute_sql(SELECT_EDITABLE, (namespace, agent_id)).fetchone()
    if row is None:
        raise AgentNotFound(agent_id)
    if etag_matches is not None and not etag_matches(row[1]):
        raise AgentChanged(agent_id)
    return row


def insert_agents(agents, namespace=DEFAULT_NAMESPACE):
    """Store validated agents as given, inside the caller's write transaction.

    `id` and timestamps are kept when present; raises AgentIdsTaken when a stored agent already
    has one of the ids.
    """
    store = current_store()
    given_ids = {agent["id"]: index for index, agent in enumerate(agents) if "id" in agent}
    taken = Agent.select(Agent.id).where(
        (Agent.namespace == namespace) & Agent.id.in_(list(given_ids))
    )
    taken_indexes = sorted(given_ids[agent.id] for agent in taken)
    if taken_indexes:
        raise AgentIdsTaken(taken_indexes)
    rows = []
    for agent in agents:
        fields = dict(agent)
        agent_id = fields.pop("id", None) or store.new_id(namespace, taken=given_ids)
        created_at = fields.pop("created_at", None) or store.now(namespace)
        updated_at = fields.pop("updated_at", None) or created_at
        rows.append(agent_row(namespace, agent_id, fields, created_at, updated_at))
    insert_rows(Agent, rows)
    return [StoredAgent(row["id"], row["document"], row["etag"]) for row in rows]


def last_sequence():
    """The number of the agent stored last (0 for none): agents stored next come after it."""
    return db.execute_sql(LAST_SEQUENCE).fetchone()[0] or 0


def stored_positions(agent_ids, numbered_after, namespace=DEFAULT_NAMESPACE):
    """Where each of `agent_ids` that is stored stands: its place among the agents stored since
    `last_sequence()` was `numbered_after` (0 for the first of them), or -1 if stored before.

    Inside one write transaction, agents are numbered one after another as they are inserted.
    """
    placeholders = ", ".join("?" * len(agent_ids))
    rows = db.execute_sql(
        f'SELECT "id", "sequence" FROM "agent" WHERE "namespace" = ? AND "id" IN ({placeholders})',
        (namespace, *agent_ids),
    )
    return {
        agent_id: sequence - numbered_after - 1 if sequence > numbered_after else -1
        for agent_id, sequence in rows
    }


def merge_search_index():
    """Merge the search index's segments into one, as after a bulk load: a text's agents are
    then read from one list rather than from each batch's (at 100,000 agents a search of many
    common trigrams took 1.5 ms from one, 10.6 from the segments a bulk load leaves)."""
    db.execute_sql(MERGE_SEARCH_INDEX)


def insert_rows(model, rows):
    """Insert rows (dicts of columns) into a model's table, in batches SQLite accepts."""
    # Batches stay under SQLite's limit on the number of values in one statement.
    for batch in chunked(rows, 500):
        model.insert_many(batch).execute()


def delete_namespace_agents(namespace=DEFAULT_NAMESPACE):
    """Remove every agent and idempotency record of a namespace, inside the caller's transaction."""
    for model in TABLES:
        model.delete().where(model.namespace == namespace).execute()
