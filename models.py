"""Agents in the database: the tables and every read and write.

Each agent row keeps the response-ready JSON of the agent (`document`, built by stored_form)
beside the few columns that are queried, so reads and lists hand stored text straight to the
client. Everything is
scoped by namespace (test mode's; outside it every agent is in the default one).

The models work on the current store (store.py): the one the request's app, or a command,
activated.
"""

import itertools
import json
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

import listing
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
    # The rowid the search index is keyed on (migrations.SEARCH_INDEX), numbered by the database.
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
# {document} is the column itself, or the engine's expression that reads it as bytes.
SELECT_AGENT = 'SELECT "id", {document}, "etag" FROM "agent" WHERE "namespace" = ? AND "id" = ?'
FIRST_SEQUENCE_AFTER = 'SELECT min("sequence") FROM "agent" WHERE "sequence" > ?'
MERGE_SEARCH_INDEX = """INSERT INTO "agent_search" ("agent_search") VALUES ('optimize')"""
# The agents noted since the search index last took them (migrations.PENDING_SEARCHES): what it
# holds for each goes first (its 'delete' needs the very text it indexed), then what each agent
# that is still stored says now.
INDEX_PENDING_SEARCHES = (
    """INSERT INTO "agent_search" ("agent_search", "rowid", "search_text") """
    """SELECT 'delete', "sequence", "indexed_text" FROM "agent_search_pending" """
    'WHERE "indexed_text" IS NOT NULL',
    'INSERT INTO "agent_search" ("rowid", "search_text") '
    'SELECT "agent"."sequence", "agent"."search_text" FROM "agent_search_pending" '
    'CROSS JOIN "agent" ON "agent"."sequence" = "agent_search_pending"."sequence"',
    'DELETE FROM "agent_search_pending"',
)
# Each process hands the index the noted agents at every this many of its writes. A search reads
# each noted agent's row, so few wait; one batch of them costs the index about what two writes
# cost it one at a time.
SEARCH_INDEX_BATCH = 64
INSERT_AGENT = (
    'INSERT INTO "agent" ("namespace", "id", "created_at", "updated_at", "is_active", '
    '"search_text", "webhook_secret", "document", "etag", "tool_secrets") '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_EDITABLE = (
    'SELECT "document", "etag", "created_at", "webhook_secret", "tool_secrets", "is_active", '
    '"search_text" FROM "agent" WHERE "namespace" = ? AND "id" = ?'
)
# {indexed} sets the columns of the list and search indexes that change, and only those: SQLite
# rewrites the entries of every index (the search index's too) that holds a column an UPDATE
# sets, changed or not, which made an update three times as costly.
UPDATE_IF_UNCHANGED = (
    'UPDATE "agent" SET "updated_at" = ?, "webhook_secret" = ?, "document" = ?, "etag" = ?, '
    '"tool_secrets" = ?{indexed} WHERE "namespace" = ? AND "id" = ? AND "etag" = ?'
)
DELETE_AGENT = 'DELETE FROM "agent" WHERE "namespace" = ? AND "id" = ?'


def get_agent(agent_id, namespace=DEFAULT_NAMESPACE, as_bytes=False):
    """The stored agent with that id; raises AgentNotFound. Its document is UTF-8 bytes when
    asked `as_bytes`, for an answer that splices it in as it is."""
    sql = SELECT_AGENT.format(document=_document_column(as_bytes))
    row = db.execute_sql(sql, (namespace, agent_id)).fetchone()
    if row is None:
        raise AgentNotFound(agent_id)
    return StoredAgent(*row)


def list_agents(
    limit=None,
    after=None,
    is_active=None,
    query=None,
    namespace=DEFAULT_NAMESPACE,
    as_bytes=False,
):
    """The stored JSON of agents newest first, `limit` (all when None) after `after`, found
    as listing.py says.

    `after` is the (created_at, id) of the last agent of the previous page. Only the documents
    are fetched: every other column would cost a Python string per row for nothing. With
    `as_bytes` they are UTF-8 bytes: a page of 100 is then joined without decoding each to text
    and encoding it back.
    """
    document = _document_column(as_bytes)
    return listing.documents(limit, after, is_active, query, namespace, document)


def _document_column(as_bytes):
    return current_store().engine.document_as_bytes if as_bytes else '"document"'


def create_agent(fields, idempotency_key=None, fingerprint=None, namespace=DEFAULT_NAMESPACE):
    """Store a new agent from validated fields; returns (agent, replayed).

    With an idempotency key, a repeat of an earlier request returns that request's agent as it
    was first answered, and creates nothing.
    """
    store = current_store()
    # Built before the write lock where it can be, the row keeps other writers waiting less.
    row = None if store.stamps_read_the_database else _new_agent_row(store, namespace, fields)
    with write_transaction():
        if idempotency_key is not None:
            earlier = _idempotent_replay(namespace, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier, True
        if row is None:
            row = _new_agent_row(store, namespace, fields)
        # INSERT_AGENT names the columns in _row's order.
        db.execute_sql(INSERT_AGENT, tuple(row.values()))
        _index_pending_searches_now_and_then()
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


def _new_agent_row(store, namespace, fields):
    now = store.now(namespace)
    return agent_row(namespace, store.new_id(namespace), fields, now, now)


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
    document, etag, created_at, webhook_secret, tool_secrets, is_active, stored_text = stored
    current = editable_fields(document, webhook_secret, tool_secrets)
    fields = revise(current)
    if fields == current and not always_write:
        return StoredAgent(agent_id, document, etag)
    now = current_store().now(namespace)
    new_document, new_etag = render(agent_id, fields, created_at, now)
    changed = {}
    if fields["is_active"] != is_active:
        changed["is_active"] = fields["is_active"]
    new_text = search_text(fields)
    if new_text != stored_text:
        changed["search_text"] = new_text
    sql = UPDATE_IF_UNCHANGED.format(indexed="".join(f', "{name}" = ?' for name in changed))
    with write_transaction():
        written = db.execute_sql(
            sql,
            (
                now,
                fields.get("webhook_secret"),
                new_document,
                new_etag,
                tool_secrets_text(fields),
                *changed.values(),
                namespace,
                agent_id,
                etag,
            ),
        ).rowcount
        _index_pending_searches_now_and_then()
    return StoredAgent(agent_id, new_document, new_etag) if written else None


def delete_agent(agent_id, etag_matches=None, namespace=DEFAULT_NAMESPACE):
    """Remove an agent; raises AgentNotFound, or AgentChanged on an If-Match mismatch."""
    with write_transaction():
        _checked_agent(agent_id, etag_matches, namespace)
        db.execute_sql(DELETE_AGENT, (namespace, agent_id))
        _index_pending_searches_now_and_then()


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
    # One prepared statement for every row: building peewee's multi-row INSERT cost an import
    # more than the insert itself. INSERT_AGENT names the columns in agent_row's order.
    store.engine.execute_many(INSERT_AGENT, [(*row.values(),) for row in rows])
    return [StoredAgent(row["id"], row["document"], row["etag"]) for row in rows]


def stored_positions(agent_ids, numbered_after, namespace=DEFAULT_NAMESPACE):
    """Where each of `agent_ids` that is stored stands: its place among the agents stored since
    `listing.last_sequence()` was `numbered_after` (0 for the first of them), or -1 if stored
    before.

    Inside one write transaction, agents are numbered one after another as they are inserted;
    the first of them need not be numbered_after + 1 (PostgreSQL's identity skips the numbers a
    rolled-back insert took), so places count from the first.
    """
    placeholders = ", ".join("?" * len(agent_ids))
    rows = db.execute_sql(
        f'SELECT "id", "sequence" FROM "agent" WHERE "namespace" = ? AND "id" IN ({placeholders})',
        (namespace, *agent_ids),
    ).fetchall()
    if any(sequence > numbered_after for _, sequence in rows):
        first = db.execute_sql(FIRST_SEQUENCE_AFTER, (numbered_after,)).fetchone()[0]
    return {
        agent_id: sequence - first if sequence > numbered_after else -1
        for agent_id, sequence in rows
    }


def index_pending_searches():
    """Inside the caller's write transaction: give the search index the agents whose search text
    changed since it last took them. An engine without the table keeps its own index as rows
    change."""
    if current_store().engine.has_trigram_table:
        for statement in INDEX_PENDING_SEARCHES:
            db.execute_sql(statement)


_writes = itertools.count(1)


def _index_pending_searches_now_and_then():
    if next(_writes) % SEARCH_INDEX_BATCH == 0:
        index_pending_searches()


def merge_search_index():
    """Index the pending agents, then merge the search index's segments into one, as after a
    bulk load: a text's agents are then read from one list rather than from each batch's (at
    100,000 agents a search of many common trigrams took 1.5 ms from one, 10.6 from the segments
    a bulk load leaves). On an engine without the table, its own index needs nothing."""
    if current_store().engine.has_trigram_table:
        index_pending_searches()
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
