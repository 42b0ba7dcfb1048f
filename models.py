"""Persistence: the SQLite database, its tables, and every read and write of agents.

Each agent row keeps the response-ready JSON of the agent (`document`) beside the few columns
that are queried, so reads and lists hand stored text straight to the client.

Everything is scoped by namespace. Test mode adds, per namespace, a frozen clock, seeded ids, a
request journal, injected faults and snapshots, all in tables here so every worker sees them.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from peewee import (
    BooleanField,
    CompositeKey,
    DatabaseError,
    FloatField,
    IntegerField,
    Model,
    OperationalError,
    SqliteDatabase,
    TextField,
    chunked,
)

DEFAULT_NAMESPACE = "default"
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# Below this much free space on the database's disk the service reports itself not ready.
MIN_FREE_BYTES = 1024 * 1024

# WAL lets readers run beside the one writer. Each write is flushed to the disk before it is
# answered, so an agent acknowledged with 201 survives a power cut, not only a crash of the process:
# write_transaction fsyncs the WAL itself once the write lock is released (SQLite's own per-commit
# fsync, synchronous=FULL, would hold every other writer waiting on the disk meanwhile).
# synchronous=NORMAL still fsyncs around every checkpoint, so nothing moves from the WAL into the
# database file unflushed.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
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


class AgentIdsTaken(Exception):
    """Agents to load carry ids that stored agents already have; `indexes` says which."""

    def __init__(self, indexes):
        super().__init__(indexes)
        self.indexes = indexes


class SnapshotNotFound(LookupError):
    """No snapshot has that name in the namespace."""


class SchemaTooNew(RuntimeError):
    """The database file was written by a later release than this one."""


# SQLite's operational failures (the file cannot be opened, is read-only, the disk is full, an
# I/O error, a lock held past the busy timeout) are states of the file, not faults of the request
# that met them: the same request may succeed once the operator has mended the file.
DatabaseUnavailable = OperationalError


class WriteNotFlushed(DatabaseUnavailable):
    """A committed write the disk did not confirm: others can read it, a power cut may lose it."""


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

# Schema version 1, as release 1.0.0 created it. Kept as text, not derived from the models, so
# that changing a model can never change what an old file is upgraded from.
SCHEMA_1 = (
    'CREATE TABLE IF NOT EXISTS "agent" ("namespace" TEXT NOT NULL, "id" TEXT NOT NULL, '
    '"created_at" TEXT NOT NULL, "updated_at" TEXT NOT NULL, "is_active" INTEGER NOT NULL, '
    '"search_text" TEXT NOT NULL, "webhook_secret" TEXT, "document" TEXT NOT NULL, '
    '"etag" TEXT NOT NULL, PRIMARY KEY ("namespace", "id"))',
    'CREATE TABLE IF NOT EXISTS "idempotency_record" ("namespace" TEXT NOT NULL, '
    '"key" TEXT NOT NULL, "fingerprint" TEXT NOT NULL, "agent_id" TEXT NOT NULL, '
    '"document" TEXT NOT NULL, "etag" TEXT NOT NULL, "status" INTEGER NOT NULL, '
    '"created" REAL NOT NULL, PRIMARY KEY ("namespace", "key"))',
    'CREATE INDEX IF NOT EXISTS "agent_namespace_created_at_id" '
    'ON "agent" ("namespace", "created_at", "id")',
    'CREATE INDEX IF NOT EXISTS "agent_namespace_is_active_created_at_id" '
    'ON "agent" ("namespace", "is_active", "created_at", "id")',
    'CREATE INDEX IF NOT EXISTS "idempotency_record_created" ON "idempotency_record" ("created")',
)

class JsonText(TextField):
    """A JSON value stored as its compact text."""

    def db_value(self, value):
        return to_json(value)

    def python_value(self, value):
        return json.loads(value)

def _migration_1_first_tables():
    """Step 1: the agent and idempotency tables of release 1.0.0."""
    for statement in SCHEMA_1:
        db.execute_sql(statement)


def _migration_2_unquoted_etags():
    """Step 2: ETags are stored without the quotes the HTTP header puts around them."""
    for table in ("agent", "idempotency_record"):
        db.execute_sql(
            f"UPDATE {table} SET etag = substr(etag, 2, length(etag) - 2) WHERE etag GLOB '\"*\"'"
        )


class FrozenClock(BaseModel):
    namespace = TextField(primary_key=True)
    now = TextField()


class IdSequence(BaseModel):
    """A namespace's seed for deterministic ids and how many it has handed out."""

    namespace = TextField(primary_key=True)
    seed = IntegerField()
    counter = IntegerField()


class JournalEntry(BaseModel):
    namespace = TextField(index=True)
    method = TextField()
    path = TextField()
    query = JsonText()
    headers = JsonText()
    body = JsonText(null=True)
    status = IntegerField()
    received_at = TextField()


class Fault(BaseModel):
    namespace = TextField()
    method = TextField()
    path = TextField()
    status = IntegerField()
    error = TextField(null=True)
    code = TextField()
    delay_ms = IntegerField()
    # Uses left; -1 until deleted. A fault is deleted when its last use is spent.
    remaining = IntegerField()
    retry_after = IntegerField(null=True)
    after_commit = BooleanField()

    class Meta:
        indexes = ((("namespace", "method"), False),)


class Snapshot(BaseModel):
    namespace = TextField()
    name = TextField()
    state = JsonText()
    created_at = TextField()

    class Meta:
        primary_key = CompositeKey("namespace", "name")


class FixtureFile(BaseModel):
    """A fixtures file already loaded into this database, known by its content's digest."""

    namespace = TextField()
    digest = TextField()
    loaded_at = TextField()

    class Meta:
        primary_key = CompositeKey("namespace", "digest")


TEST_DOUBLE_TABLES = (FrozenClock, IdSequence, JournalEntry, Fault, Snapshot, FixtureFile)
# What a namespace holds and a snapshot saves. The journal and faults are kept out of it: they
# describe the requests of the test that is running, not the state it wants back.
NAMESPACE_STATE = (Agent, IdempotencyRecord, FrozenClock, IdSequence)

def _migration_3_test_double_tables():
    """Step 3: the tables of test mode (clock, id seeds, journal, faults, snapshots, fixtures)."""
    db.create_tables(TEST_DOUBLE_TABLES)


# MIGRATIONS[n - 1] takes a file from schema version n - 1 to n. Append only: a release that
# changes what is stored adds a step, and the files of every earlier release still open.
MIGRATIONS = (
    _migration_1_first_tables,
    _migration_2_unquoted_etags,
    _migration_3_test_double_tables,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Set by bind_database: in test mode agents take their timestamps from a namespace's frozen clock
# and their ids from its seed; outside it neither table is ever read.
_test_mode = False


def init_database(path, test_mode=False):
    """Bind the database to the file at `path`, creating it and its tables on first use."""
    bind_database(path, test_mode)
    prepare_database()


def bind_database(path, test_mode=False):
    """Point the database at the file at `path` without opening it."""
    global _test_mode
    _test_mode = test_mode
    db.init(path, pragmas=PRAGMAS, check_same_thread=False)


def prepare_database():
    """Create the bound file and its folder if need be, and migrate it to SCHEMA_VERSION."""
    path = db.database
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Several gunicorn workers start at once; only one may switch a new file to WAL and
    # create its tables, so they take turns on the lock file beside the database.
    with _lock_file(path), db.connection_context():
        migrate()


def schema_version():
    """The open file's schema version (0 for a new, empty file)."""
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate():
    """Bring the open database up to SCHEMA_VERSION, one committed step per version."""
    version = schema_version()
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"The database has schema version {version}; this release knows up to "
            f"{SCHEMA_VERSION}. Run the release that wrote it, or a later one."
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        with db.atomic("IMMEDIATE"):
            MIGRATIONS[number - 1]()
            db.execute_sql(f"PRAGMA user_version = {number}")


def database_is_ready():
    """True when the database file can be opened, read and written, at the expected version.

    The check uses a connection of its own, so a worker's kept connection is left as it is.
    """
    # The probe's write alone cannot tell a read-only file: it may be given a read-write
    # descriptor that outlived the file's write permission (see open_connection).
    if not os.access(db.database, os.W_OK):
        return False
    probe = SqliteDatabase(db.database, pragmas=PRAGMAS, autoconnect=False)
    try:
        with probe.connection_context():
            probe.execute_sql("BEGIN IMMEDIATE")
            try:
                # Rewriting the version in place is the cheapest write there is, and the
                # rollback keeps it from ever reaching the disk.
                version = probe.execute_sql("PRAGMA user_version").fetchone()[0]
                probe.execute_sql(f"PRAGMA user_version = {version}")
            finally:
                probe.execute_sql("ROLLBACK")
    except DatabaseError:
        return False
    return version == SCHEMA_VERSION and _has_room()


def _has_room():
    # A rolled-back write never reaches the disk, so a full disk is asked about directly.
    folder = os.path.dirname(os.path.abspath(db.database))
    return shutil.disk_usage(folder).free >= MIN_FREE_BYTES


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
    identity = _connected_file.identity = _file_identity()
    if identity and not identity.writable:
        # SQLite keeps a closed connection's descriptor open while other connections of this
        # process hold locks on the file, and hands it to the next one that opens the file: a
        # read-write descriptor from before the file became read-only would let it write.
        db.execute_sql("PRAGMA query_only = ON")


# The FileIdentity of the file each thread's connection was opened on.
_connected_file = threading.local()


class FileIdentity(NamedTuple):
    device: int
    inode: int
    writable: bool


def _file_identity():
    try:
        status = os.stat(db.database)
    except OSError:
        return None
    return FileIdentity(status.st_dev, status.st_ino, os.access(db.database, os.W_OK))


@contextmanager
def write_transaction():
    """A transaction that takes SQLite's write lock up front, so it never fails half-way, and
    is on the disk when the block is left.

    Writers first queue on the lock file beside the database. SQLite makes a writer that finds
    the database locked sleep and retry (1, 2, 5, 10 ms and longer), so workers writing at once
    would spend most of their time asleep; a blocked flock wakes the moment it is released.

    The commit is flushed after the lock is released, so the next writer commits while this one
    waits on the disk, and writers flushing together share the disk's work. Until the flush
    returns, other requests can already read the write; were the power to fail meanwhile, it
    would be lost, but nobody would have been told it was stored. A later write's flush covers
    every commit before it in the WAL, so no write that builds on it is ever kept without it.
    """
    if db.in_transaction():
        with db.atomic() as savepoint:
            yield savepoint
        return
    with _lock_file(db.database), db.atomic("IMMEDIATE") as transaction:
        yield transaction
    # A test double needs no power-cut durability, and its callers' suites wait on every write.
    if not _test_mode:
        _flush_to_disk(db.database)


def _flush_to_disk(database_path):
    """fsync the WAL: every commit written to it so far, by any connection, is then durable."""
    try:
        try:
            descriptor = os.open(f"{database_path}-wal", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            # No WAL: the file's system could not switch it to WAL, and commits went straight
            # into the database file.
            descriptor = os.open(database_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _fdatasync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise WriteNotFlushed(f"could not flush a committed write to the disk: {error}") from error


# fdatasync skips the file's timestamps, which recovery does not need; macOS has only fsync.
_fdatasync = getattr(os, "fdatasync", os.fsync)


@contextmanager
def _lock_file(database_path):
    """Hold the exclusive lock on `<database>.lock`; closing the file releases it."""
    # A bare descriptor: a Python file object would cost every write about 70 µs to build.
    descriptor = os.open(f"{database_path}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)




def utc_timestamp():
    """Now as ISO 8601 UTC with milliseconds, the form every timestamp is stored and sent in."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def seeded_id(seed, counter):
    """The `counter`th id of a seeded namespace: a lowercase UUIDv4 that depends on nothing else."""
    digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _new_id(namespace):
    if _test_mode:
        sequence = IdSequence.get_or_none(IdSequence.namespace == namespace)
        if sequence is not None:
            IdSequence.update(counter=IdSequence.counter + 1).where(
                IdSequence.namespace == namespace
            ).execute()
            return seeded_id(sequence.seed, sequence.counter)
    return str(uuid.uuid4())


def _now(namespace):
    if _test_mode:
        frozen = FrozenClock.get_or_none(FrozenClock.namespace == namespace)
        if frozen is not None:
            return frozen.now
    return utc_timestamp()


def to_json(value):
    """The one JSON encoding used for stored documents: compact, UTF-8, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def etag_of(document):
    """The entity tag of a stored representation, unquoted as HTTP libraries compare them."""
    return hashlib.blake2b(document.encode(), digest_size=16).hexdigest()


def _row(namespace, agent_id, fields, created_at, updated_at):
    """The agent table's columns for an agent with these fields."""
    document, etag = _render(agent_id, fields, created_at, updated_at)
    return {
        "namespace": namespace,
        "id": agent_id,
        "created_at": created_at,
        "updated_at": updated_at,
        "is_active": fields["is_active"],
        "search_text": _search_text(fields),
        "webhook_secret": fields.get("webhook_secret"),
        "document": document,
        "etag": etag,
    }


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
        now = _now(namespace)
        row = _row(namespace, _new_id(namespace), fields, now, now)
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
    now = _now(namespace)
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


def reset_namespace(namespace=DEFAULT_NAMESPACE, seed=None):
    """Forget a namespace's agents, idempotency records, journal, faults and frozen clock.

    With a seed, the ids it hands out from now on are `seeded_id(seed, 0)`, `(seed, 1)`, ...;
    without one they are random again. Snapshots are kept, so a test can restore one after.
    """
    with write_transaction():
        for model in (*NAMESPACE_STATE, JournalEntry, Fault):
            model.delete().where(model.namespace == namespace).execute()
        if seed is not None:
            IdSequence.create(namespace=namespace, seed=seed, counter=0)


def freeze_clock(now, namespace=DEFAULT_NAMESPACE):
    """Make `now` the time of every create and update in the namespace."""
    with write_transaction():
        FrozenClock.replace(namespace=namespace, now=now).execute()


def release_clock(namespace=DEFAULT_NAMESPACE):
    """Let the namespace's clock run again."""
    with write_transaction():
        FrozenClock.delete().where(FrozenClock.namespace == namespace).execute()


def load_agents(agents, namespace=DEFAULT_NAMESPACE):
    """Store validated agents as given, all or none; `id` and timestamps are kept when present.

    Raises AgentIdsTaken when a stored agent already has one of the ids.
    """
    with write_transaction():
        return _insert_agents(agents, namespace)


def load_agents_once(agents, digest, namespace=DEFAULT_NAMESPACE):
    """Load a fixtures file's agents unless a file with this digest was loaded before.

    Every gunicorn worker starts with the same file; the first one to get here loads it.
    """
    with write_transaction():
        loaded = FixtureFile.get_or_none(
            (FixtureFile.namespace == namespace) & (FixtureFile.digest == digest)
        )
        if loaded is not None:
            return []
        FixtureFile.create(namespace=namespace, digest=digest, loaded_at=utc_timestamp())
        return _insert_agents(agents, namespace)


def _insert_agents(agents, namespace):
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
        agent_id = fields.pop("id", None) or _new_id(namespace)
        created_at = fields.pop("created_at", None) or _now(namespace)
        updated_at = fields.pop("updated_at", None) or created_at
        rows.append(_row(namespace, agent_id, fields, created_at, updated_at))
    _insert_rows(Agent, rows)
    return [Agent(id=row["id"], document=row["document"], etag=row["etag"]) for row in rows]


def _insert_rows(model, rows):
    # Batches stay under SQLite's limit on the number of values in one statement.
    for batch in chunked(rows, 500):
        model.insert_many(batch).execute()


def save_snapshot(name, namespace=DEFAULT_NAMESPACE):
    """Save the namespace's agents, idempotency records, clock and id seed under `name`.

    Returns how many agents it holds. A snapshot of the same name is replaced.
    """
    with write_transaction():
        state = {
            model._meta.table_name: list(
                model.select().where(model.namespace == namespace).dicts()
            )
            for model in NAMESPACE_STATE
        }
        Snapshot.replace(
            namespace=namespace, name=name, state=state, created_at=utc_timestamp()
        ).execute()
    return len(state[Agent._meta.table_name])


def restore_snapshot(name, namespace=DEFAULT_NAMESPACE):
    """Put the namespace back exactly as it was saved; raises SnapshotNotFound."""
    with write_transaction():
        snapshot = Snapshot.get_or_none((Snapshot.namespace == namespace) & (Snapshot.name == name))
        if snapshot is None:
            raise SnapshotNotFound(name)
        for model in NAMESPACE_STATE:
            model.delete().where(model.namespace == namespace).execute()
            _insert_rows(model, snapshot.state[model._meta.table_name])


JOURNAL_FIELDS = ("method", "path", "query", "headers", "body", "status", "received_at")


def record_request(entry, namespace=DEFAULT_NAMESPACE):
    """Add a request (method, path, query, headers, body, status, received_at) to the journal."""
    with write_transaction():
        JournalEntry.create(namespace=namespace, **entry)


def journal(method=None, path=None, namespace=DEFAULT_NAMESPACE):
    """The namespace's journal, oldest first, optionally only one method and path (`{id}` ok)."""
    select = JournalEntry.select().where(JournalEntry.namespace == namespace)
    if method is not None:
        select = select.where(JournalEntry.method == method)
    return [
        {name: getattr(entry, name) for name in JOURNAL_FIELDS}
        # Entries are written as responses leave, so a delayed one is stored after later ones.
        for entry in select.order_by(JournalEntry.received_at, JournalEntry.id)
        if path is None or path_matches(path, entry.path)
    ]


def clear_journal(namespace=DEFAULT_NAMESPACE):
    """Empty the namespace's journal."""
    with write_transaction():
        JournalEntry.delete().where(JournalEntry.namespace == namespace).execute()


def path_matches(pattern, path):
    """True when `path` is `pattern`, where each `{id}` stands for one path segment.

    A trailing slash on either makes no difference, as it makes none to the routes.
    """
    pieces = (pattern.rstrip("/") or "/").split("{id}")
    expression = "[^/]+".join(re.escape(piece) for piece in pieces)
    return re.fullmatch(expression, path.rstrip("/") or "/") is not None


FAULT_FIELDS = (
    "method", "path", "status", "error", "code", "delay_ms", "retry_after", "after_commit",
)


def add_fault(fault, namespace=DEFAULT_NAMESPACE):
    """Store a validated fault; `times` of them answer matching requests (-1: until deleted)."""
    with write_transaction():
        row = Fault.create(
            namespace=namespace,
            remaining=fault["times"],
            **{name: fault[name] for name in FAULT_FIELDS},
        )
    return _fault_view(row)


def faults(namespace=DEFAULT_NAMESPACE):
    """The namespace's faults, oldest first, each with the uses it has left as `times`."""
    select = Fault.select().where(Fault.namespace == namespace).order_by(Fault.id)
    return [_fault_view(fault) for fault in select]


def clear_faults(namespace=DEFAULT_NAMESPACE):
    """Delete every fault of the namespace."""
    with write_transaction():
        Fault.delete().where(Fault.namespace == namespace).execute()


def take_fault(method, path, namespace=DEFAULT_NAMESPACE):
    """Spend one use of the oldest fault matching the request and return it; None if none does.

    The use is spent under the write lock, so `times: 2` answers exactly two requests however
    many workers race for it.
    """
    matching = (
        Fault.select()
        .where((Fault.namespace == namespace) & (Fault.method == method))
        .order_by(Fault.id)
    )
    if not matching.exists():  # the common case, decided without taking the write lock
        return None
    with write_transaction():
        for fault in matching:
            if not path_matches(fault.path, path):
                continue
            if fault.remaining == 1:
                fault.delete_instance()
            elif fault.remaining > 1:
                Fault.update(remaining=Fault.remaining - 1).where(Fault.id == fault.id).execute()
            return _fault_view(fault)
    return None


def _fault_view(fault):
    return {**{name: getattr(fault, name) for name in FAULT_FIELDS}, "times": fault.remaining}


def export_agents(include_secrets=False, namespace=DEFAULT_NAMESPACE):
    """Every agent as responses show it, oldest first; with its webhook secret when asked for."""
    agents = []
    select = (
        Agent.select(Agent.document, Agent.webhook_secret)
        .where(Agent.namespace == namespace)
        .order_by(Agent.created_at, Agent.id)
    )
    for row in select.tuples():
        agent = json.loads(row[0])
        if include_secrets and row[1] is not None:
            agent["webhook_secret"] = row[1]
        agents.append(agent)
    return agents


def import_agents(agents, replace=False, namespace=DEFAULT_NAMESPACE):
    """Store validated agents with their own ids and timestamps: all of them, or none.

    Without `replace`, an id already stored raises AgentIdsTaken; with it, every stored agent
    and idempotency record goes first.
    """
    with write_transaction():
        if replace:
            Agent.delete().where(Agent.namespace == namespace).execute()
            IdempotencyRecord.delete().where(IdempotencyRecord.namespace == namespace).execute()
        _insert_agents(agents, namespace)
    return len(agents)


def backup_database(target):
    """Copy the database to the file `target` with SQLite's online backup; returns its check.

    The copy is one consistent snapshot taken while the service goes on reading and writing. It
    is written beside the target and renamed into place only once complete and checked.
    """
    partial = f"{target}.partial"
    try:
        _remove(partial)
        copy = sqlite3.connect(partial)
        try:
            with db.connection_context():
                db.connection().backup(copy)
            # A single self-contained file: no -wal or -shm to carry along with it.
            copy.execute("PRAGMA journal_mode = DELETE")
            integrity = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        finally:
            copy.close()
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        if integrity == ["ok"]:
            os.replace(partial, target)
    finally:
        _remove(partial)
    return integrity


def _remove(path):
    for name in (path, f"{path}-journal"):
        if os.path.exists(name):
            os.remove(name)


def check_database(path):
    """Integrity, schema version and counts of the file at `path`, opened read-only."""
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    connection = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
    try:
        report = {
            "integrity": [row[0] for row in connection.execute("PRAGMA integrity_check")],
            "schema_version": connection.execute("PRAGMA user_version").fetchone()[0],
            "journal_mode": connection.execute("PRAGMA journal_mode").fetchone()[0],
        }
        if report["schema_version"] >= 1:
            for name, sql in (
                ("agents", "SELECT count(*) FROM agent"),
                ("active_agents", "SELECT count(*) FROM agent WHERE is_active"),
                ("idempotency_records", "SELECT count(*) FROM idempotency_record"),
            ):
                report[name] = connection.execute(sql).fetchone()[0]
    except sqlite3.DatabaseError as error:
        report = {
            "integrity": [f"unreadable: {error}"], "schema_version": None, "journal_mode": None,
        }
    finally:
        connection.close()
    return report
