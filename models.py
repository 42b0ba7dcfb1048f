"""Persistence: the SQLite database, its tables, and every read and write of agents.

Each agent row keeps the response-ready JSON of the agent (`document`) beside the few columns
that are queried, so reads and lists hand stored text straight to the client.
"""

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

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
)

DEFAULT_NAMESPACE = "default"
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# Below this much free space on the database's disk the service reports itself not ready.
MIN_FREE_BYTES = 1024 * 1024

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


class AgentsExist(Exception):
    """An import would overwrite agents that are already stored; `ids` names them."""

    def __init__(self, ids):
        super().__init__(f"{len(ids)} agent(s) already stored")
        self.ids = ids


class SchemaTooNew(RuntimeError):
    """The database file was written by a later release than this one."""


# SQLite's operational failures (the file cannot be opened, is read-only, the disk is full, an
# I/O error, a lock held past the busy timeout) are states of the file, not faults of the request
# that met them: the same request may succeed once the operator has mended the file.
DatabaseUnavailable = OperationalError


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


# MIGRATIONS[n - 1] takes a file from schema version n - 1 to n. Append only: a release that
# changes what is stored adds a step, and the files of every earlier release still open.
MIGRATIONS = (
    _migration_1_first_tables,
    _migration_2_unquoted_etags,
)
SCHEMA_VERSION = len(MIGRATIONS)


def init_database(path):
    """Bind the database to the file at `path`, creating it and its tables on first use."""
    bind_database(path)
    prepare_database()


def bind_database(path):
    """Point the database at the file at `path` without opening it."""
    db.init(path, pragmas=PRAGMAS, check_same_thread=False)


def prepare_database():
    """Create the bound file and its folder if need be, and migrate it to SCHEMA_VERSION."""
    path = db.database
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Several gunicorn workers start at once; only one may switch a new file to WAL and
    # migrate it, so they take turns on a lock file beside the database.
    with open(f"{path}.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with db.connection_context():
                migrate()
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


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
    """True when the database file can be opened, read and written, at the expected version."""
    try:
        with db.connection_context():
            db.execute_sql("BEGIN IMMEDIATE")
            try:
                # Rewriting the version in place is the cheapest write there is, and the
                # rollback keeps it from ever reaching the disk.
                version = schema_version()
                db.execute_sql(f"PRAGMA user_version = {version}")
            finally:
                db.execute_sql("ROLLBACK")
    except DatabaseError:
        return False
    return version == SCHEMA_VERSION and _has_room()


def _has_room():
    # A rolled-back write never reaches the disk, so a full disk is asked about directly.
    folder = os.path.dirname(os.path.abspath(db.database))
    return shutil.disk_usage(folder).free >= MIN_FREE_BYTES


@contextmanager
def write_transaction():
    """A transaction that takes SQLite's write lock up front, so it never fails half-way."""
    with db.atomic("IMMEDIATE") as transaction:
        yield transaction




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


def editable_fields(agent):
    """The stored agent as the writable fields a client could send, secret included."""
    fields = json.loads(agent.document)
    for key in READ_ONLY_FIELDS:
        fields.pop(key, None)
    if agent.webhook_secret is not None:
        fields["webhook_secret"] = agent.webhook_secret
    return fields




def get_agent(agent_id, namespace=DEFAULT_NAMESPACE):
    """The stored agent with that id; raises AgentNotFound."""
    agent = (
        Agent.select(Agent.id, Agent.document, Agent.etag)
        .where((Agent.namespace == namespace) & (Agent.id == agent_id))
        .first()
    )
    if agent is None:
        raise AgentNotFound(agent_id)
    return agent


def list_agents(limit=None, after=None, is_active=None, query=None, namespace=DEFAULT_NAMESPACE):
    """Agents newest first, `limit` of them (all when None) after the (created_at, id) `after`."""
    select = Agent.select(Agent.id, Agent.created_at, Agent.document).where(
        Agent.namespace == namespace
    )
    if is_active is not None:
        select = select.where(Agent.is_active == is_active)
    if query:
        select = select.where(Agent.search_text.contains(query.casefold()))
    if after is not None:
        created_at, agent_id = after
        select = select.where(
            (Agent.created_at < created_at)
            | ((Agent.created_at == created_at) & (Agent.id < agent_id))
        )
    select = select.order_by(Agent.created_at.desc(), Agent.id.desc())
    if limit is not None:
        select = select.limit(limit)
    return list(select)




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
        agent = Agent.create(**_row(namespace, new_agent_id(), fields, now, now))
        if idempotency_key is not None:
            IdempotencyRecord.create(
                namespace=namespace,
                key=idempotency_key,
                fingerprint=fingerprint,
                agent_id=agent.id,
                document=agent.document,
                etag=agent.etag,
                status=201,
                created=time.time(),
            )
    return agent, False


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
    return Agent(id=record.agent_id, document=record.document, etag=record.etag)


def update_agent(agent_id, revise, etag_matches=None, namespace=DEFAULT_NAMESPACE):
    """Replace an agent's fields with `revise(current_fields)`, read and written in one lock.

    `etag_matches`, when given, must accept the stored ETag or AgentChanged is raised. When the
    revised fields equal the stored ones nothing is written and `updated_at` stays.
    """
    with write_transaction():
        agent = _locked_agent(agent_id, etag_matches, namespace)
        current = editable_fields(agent)
        fields = revise(current)
        if fields == current:
            return agent
        row = _row(namespace, agent_id, fields, agent.created_at, utc_timestamp())
        Agent.update(**row).where((Agent.namespace == namespace) & (Agent.id == agent_id)).execute()
    return Agent(id=agent_id, document=row["document"], etag=row["etag"])


def delete_agent(agent_id, etag_matches=None, namespace=DEFAULT_NAMESPACE):
    """Remove an agent; raises AgentNotFound, or AgentChanged on an If-Match mismatch."""
    with write_transaction():
        _locked_agent(agent_id, etag_matches, namespace)
        Agent.delete().where((Agent.namespace == namespace) & (Agent.id == agent_id)).execute()


def _locked_agent(agent_id, etag_matches, namespace):
    agent = Agent.get_or_none((Agent.namespace == namespace) & (Agent.id == agent_id))
    if agent is None:
        raise AgentNotFound(agent_id)
    if etag_matches is not None and not etag_matches(agent.etag):
        raise AgentChanged(agent_id)
    return agent


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

    Each agent is its fields plus `id`, `created_at` and `updated_at`. Without `replace`, an id
    already stored raises AgentsExist; with it, every stored agent goes first.
    """
    with write_transaction():
        if replace:
            Agent.delete().where(Agent.namespace == namespace).execute()
            IdempotencyRecord.delete().where(IdempotencyRecord.namespace == namespace).execute()
        else:
            stored = Agent.select(Agent.id).where(Agent.namespace == namespace).tuples()
            taken = {agent_id for (agent_id,) in stored}.intersection(
                agent["id"] for agent in agents
            )
            if taken:
                raise AgentsExist(sorted(taken))
        for agent in agents:
            fields = dict(agent)
            agent_id = fields.pop("id")
            created_at = fields.pop("created_at")
            updated_at = fields.pop("updated_at")
            Agent.insert(**_row(namespace, agent_id, fields, created_at, updated_at)).execute()
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
