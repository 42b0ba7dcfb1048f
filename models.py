"""Persistence: the SQLite database, its tables, and every read and write of agents.

Each agent row keeps the response-ready JSON of the agent (`document`) beside the few columns
that are queried, so reads and lists hand stored text straight to the client.
"""

import fcntl
import hashlib
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import NamedTuple

from peewee import (
    BooleanField,
    CompositeKey,
    FloatField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

SCHEMA_VERSION = 1
DEFAULT_NAMESPACE = "default"
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60

# WAL lets readers run beside the one writer. synchronous=FULL fsyncs the WAL at every commit,
# so an agent acknowledged with 201 survives a power cut, not only a crash of the process.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
}

db = SqliteDatabase(None, autoconnect=False)

READ_ONLY_FIELDS = ("id", "webhook_secret_set", "created_at", "updated_at")


class AgentNotFound(LookupError):
    """No agent has that id."""


class AgentChanged(Exception):
    """The agent's current ETag is not the one the client sent in If-Match."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key came back with a different request body."""


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Agent(BaseModel):
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

    class Meta:
        primary_key = CompositeKey("namespace", "id")
        indexes = (
            (("namespace", "created_at", "id"), False),
            (("namespace", "is_active", "created_at", "id"), False),
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




def init_database(path):
    """Bind the database to the file at `path`, creating it and its tables on first use."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    db.init(path, pragmas=PRAGMAS, check_same_thread=False)
    # Several gunicorn workers start at once; only one may switch a new file to WAL and
    # create its tables, so they take turns on the lock file beside the database.
    with _lock_file(path), db.connection_context():
        migrate()


def migrate():
    """Bring the open database up to SCHEMA_VERSION."""
    version = db.execute_sql("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"The database has schema version {version}; this release knows up to {SCHEMA_VERSION}."
        )
    with db.atomic("IMMEDIATE"):
        db.create_tables(TABLES)
        db.execute_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")


def database_is_ready():
    """True when the database file can be opened and read, by a connection of its own."""
    probe = SqliteDatabase(db.database, pragmas=PRAGMAS, autoconnect=False)
    try:
        with probe.connection_context():
            probe.execute_sql("SELECT 1 FROM agent LIMIT 1").fetchall()
        return True
    except Exception:  # any failure to open or read means not ready
        return False


def open_connection():
    """Give this thread an open connection to the database file, kept from request to request.

    Opening one costs more than most requests, and closing the last connection to a WAL file
    checkpoints it, so it stays open; but once the path no longer names the file it was opened
    on (moved, deleted or replaced), or the file has become read-only or writable since, it is
    closed and the path opened again, as a connection opened for this request would be.
    """
    if not db.is_closed():
        if _file_identity() == getattr(_connected_file, "identity", None):
            return
        db.close()
    db.connect()
    _connected_file.identity = _file_identity()


# The file each thread's connection was opened on: device, inode, and whether it was writable.
_connected_file = threading.local()


def _file_identity():
    try:
        status = os.stat(db.database)
    except OSError:
        return None
    return status.st_dev, status.st_ino, os.access(db.database, os.W_OK)


@contextmanager
def write_transaction():
    """A transaction that takes SQLite's write lock up front, so it never fails half-way.

    Writers first queue on the lock file beside the database. SQLite makes a writer that finds
    the database locked sleep and retry (1, 2, 5, 10 ms and longer), so workers writing at once
    would spend most of their time asleep; a blocked flock wakes the moment it is released.
    """
    if db.in_transaction():
        with db.atomic() as savepoint:
            yield savepoint
        return
    with _lock_file(db.database), db.atomic("IMMEDIATE") as transaction:
        yield transaction


@contextmanager
def _lock_file(database_path):
    """Hold the exclusive lock on `<database>.lock`; closing the file releases it."""
    with open(f"{database_path}.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield




def utc_timestamp():
    """Now as ISO 8601 UTC with milliseconds, the form every timestamp is stored and sent in."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def is_timestamp(text):
    """True for text in the stored timestamp form, 2025-12-13T10:00:00.000Z."""
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return len(text) == 24


def new_agent_id():
    return str(uuid.uuid4())


def to_json(value):
    """The one JSON encoding used for stored documents: compact, UTF-8, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def etag_of(document):
    return '"' + hashlib.blake2b(document.encode(), digest_size=16).hexdigest() + '"'


def _render(agent_id, fields, created_at, updated_at):
    """The agent as every response shows it: id, the fields, the secret flag, timestamps."""
    public = {key: value for key, value in fields.items() if key != "webhook_secret"}
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


def _search_text(fields):
    return "\n".join(filter(None, (fields["name"], fields.get("business_name")))).casefold()


def editable_fields(document, webhook_secret):
    """A stored agent as the writable fields a client could send, secret included."""
    fields = json.loads(document)
    for key in READ_ONLY_FIELDS:
        fields.pop(key, None)
    if webhook_secret is not None:
        fields["webhook_secret"] = webhook_secret
    return fields




class StoredAgent(NamedTuple):
    """An agent as the routes answer with it: response-ready JSON and the ETag of that JSON."""

    id: str
    document: str
    etag: str


# The read path runs the same few statements all day, so they are written out once here
# rather than built by the query builder on every request.
SELECT_AGENT = 'SELECT "id", "document", "etag" FROM "agent" WHERE "namespace" = ? AND "id" = ?'
SELECT_DOCUMENTS = 'SELECT "document" FROM "agent" WHERE "namespace" = ?'
NEWEST_FIRST = ' ORDER BY "created_at" DESC, "id" DESC'


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
    """
    sql = [SELECT_DOCUMENTS]
    params = [namespace]
    if is_active is not None:
        sql.append(' AND "is_active" = ?')
        params.append(is_active)
    if query:
        sql.append(""" AND "search_text" LIKE ? ESCAPE '\\'""")
        params.append(f"%{_escape_like(query.casefold())}%")
    if after is not None:
        # A row value, unlike the equivalent OR, lets SQLite start the index scan at the cursor.
        sql.append(' AND ("created_at", "id") < (?, ?)')
        params.extend(after)
    sql.append(NEWEST_FIRST)
    if limit is not None:
        sql.append(" LIMIT ?")
        params.append(limit)
    return [row[0] for row in db.execute_sql("".join(sql), params)]


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")




INSERT_AGENT = (
    'INSERT INTO "agent" ("namespace", "id", "created_at", "updated_at", "is_active", '
    '"search_text", "webhook_secret", "document", "etag") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'
)
SELECT_EDITABLE = (
    'SELECT "document", "etag", "created_at", "webhook_secret" FROM "agent" '
    'WHERE "namespace" = ? AND "id" = ?'
)
UPDATE_IF_UNCHANGED = (
    'UPDATE "agent" SET "updated_at" = ?, "is_active" = ?, "search_text" = ?, '
    '"webhook_secret" = ?, "document" = ?, "etag" = ? '
    'WHERE "namespace" = ? AND "id" = ? AND "etag" = ?'
)
DELETE_AGENT = 'DELETE FROM "agent" WHERE "namespace" = ? AND "id" = ?'
# How often an update is revised again after other writers changed the agent under it, before
# it revises and writes under the write lock instead.
OPTIMISTIC_ATTEMPTS = 3


def create_agent(fields, idempotency_key=None, fingerprint=None, namespace=DEFAULT_NAMESPACE):
    """Store a new agent from validated fields; returns (agent, replayed).

    With an idempotency key, a repeat of an earlier request returns that request's agent as it
    was first answered, and creates nothing.
    """
    with write_transaction():
        if idempotency_key is not None:
            earlier = _idempotent_replay(namespace, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier, True
        now = utc_timestamp()
        agent_id = new_agent_id()
        document, etag = _render(agent_id, fields, now, now)
        db.execute_sql(INSERT_AGENT, (
            namespace, agent_id, now, now, fields["is_active"], _search_text(fields),
            fields.get("webhook_secret"), document, etag,
        ))
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


def update_agent(agent_id, revise, etag_matches=None, namespace=DEFAULT_NAMESPACE):
    """Replace an agent's fields with `revise(current_fields)`, as one read-revise-write.

    `etag_matches`, when given, must accept the stored ETag or AgentChanged is raised. When the
    revised fields equal the stored ones nothing is written and `updated_at` stays.

    Revising (validating, mostly) takes longer than writing, so it runs outside the write lock:
    the write then applies only if the agent still has the ETag it was revised from, and
    otherwise the update starts again from the newer agent, as if it had waited for the lock.
    """
    for _ in range(OPTIMISTIC_ATTEMPTS):
        updated = _revise_and_write(agent_id, revise, etag_matches, namespace)
        if updated is not None:
            return updated
    with write_transaction():
        return _revise_and_write(agent_id, revise, etag_matches, namespace)


def _revise_and_write(agent_id, revise, etag_matches, namespace):
    """The updated agent, or None when another writer changed it after it was read."""
    stored = _checked_agent(agent_id, etag_matches, namespace)
    document, etag, created_at, webhook_secret = stored
    current = editable_fields(document, webhook_secret)
    fields = revise(current)
    if fields == current:
        return StoredAgent(agent_id, document, etag)
    now = utc_timestamp()
    new_document, new_etag = _render(agent_id, fields, created_at, now)
    with write_transaction():
        written = db.execute_sql(UPDATE_IF_UNCHANGED, (
            now, fields["is_active"], _search_text(fields), fields.get("webhook_secret"),
            new_document, new_etag, namespace, agent_id, etag,
        )).rowcount
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
