"""What test mode keeps per namespace: frozen clock, seeded ids, request journal, faults,
snapshots and loaded fixture files, in tables so that every worker sees the same.
"""

import collections
import hashlib
import uuid
from contextlib import nullcontext

from peewee import AutoField, BooleanField, CompositeKey, IntegerField, TextField

from models import (
    DEFAULT_NAMESPACE,
    Agent,
    BaseModel,
    IdempotencyRecord,
    JsonText,
    delete_namespace_agents,
    insert_agents,
    insert_rows,
)
from store import db, random_id, utc_timestamp, write_transaction
from stored_form import to_json
from testdouble.calls.records import TABLES as CALL_TABLES
from testdouble.calls.records import delete_namespace_calls


class SnapshotNotFound(LookupError):
    """No snapshot has that name in the namespace."""


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


TABLES = (FrozenClock, IdSequence, JournalEntry, Fault, Snapshot, FixtureFile, *CALL_TABLES)
# What a namespace holds and a snapshot saves. The journal, faults and simulated calls are kept
# out of it: they describe what the running test did, not the state it wants back.
NAMESPACE_STATE = (Agent, IdempotencyRecord, FrozenClock, IdSequence)


# Every request of test mode runs these: written out once, as models.py writes its own, rather
# than built by the query builder each time (which cost a create in test mode over 300 µs).
SELECT_FROZEN_TIME = 'SELECT "now" FROM "frozen_clock" WHERE "namespace" = ?'
SELECT_ID_SEQUENCE = 'SELECT "seed", "counter" FROM "id_sequence" WHERE "namespace" = ?'
UPDATE_ID_COUNTER = 'UPDATE "id_sequence" SET "counter" = ? WHERE "namespace" = ?'
SELECT_AGENT_EXISTS = 'SELECT 1 FROM "agent" WHERE "namespace" = ? AND "id" = ?'
INSERT_JOURNAL_ENTRY = (
    'INSERT INTO "journal_entry" ("namespace", "method", "path", "query", "headers", "body", '
    '"status", "received_at") VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
)
FORGET_OLD_JOURNAL_ENTRIES = (
    'DELETE FROM "journal_entry" WHERE "namespace" = ? AND "id" < ('
    'SELECT "id" FROM "journal_entry" WHERE "namespace" = ? ORDER BY "id" DESC LIMIT 1 OFFSET ?)'
)
# A fault's id and uses left, then its FAULT_FIELDS in their order.
SELECT_FAULTS = (
    'SELECT "id", "remaining", "method", "path", "status", "error", "code", "delay_ms", '
    '"retry_after", "after_commit" FROM "fault" WHERE "namespace" = ? AND "method" = ? '
    'ORDER BY "id"'
)


def install_stamps(store):
    """Stamp the store's new agents with their namespace's frozen clock and seeded ids."""
    store.now = namespace_now
    store.new_id = next_namespace_id
    store.stamps_read_the_database = True


def namespace_now(namespace):
    """The namespace's frozen time, or the real one."""
    return frozen_time(namespace) or utc_timestamp()


def frozen_time(namespace):
    """The time the namespace's clock is frozen at, or None while it runs."""
    frozen = db.execute_sql(SELECT_FROZEN_TIME, (namespace,)).fetchone()
    return None if frozen is None else frozen[0]


def next_namespace_id(namespace, taken=()):
    """The namespace's next seeded id, or a random one when it has no seed.

    A seeded id that an agent of the namespace already has (a fixture may bring any id), or that
    is in `taken`, is skipped: the counter moves past it for good.
    """
    sequence = db.execute_sql(SELECT_ID_SEQUENCE, (namespace,)).fetchone()
    if sequence is None:
        return random_id()
    seed, counter = sequence
    while True:
        candidate = seeded_id(seed, counter)
        counter += 1
        if candidate not in taken and not _is_stored(namespace, candidate):
            break
    db.execute_sql(UPDATE_ID_COUNTER, (counter, namespace))
    return candidate


def _is_stored(namespace, agent_id):
    return db.execute_sql(SELECT_AGENT_EXISTS, (namespace, agent_id)).fetchone() is not None


def seeded_id(seed, counter):
    """The `counter`th id of a seeded namespace: a lowercase UUIDv4 that depends on nothing else."""
    digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def reset_namespace(namespace=DEFAULT_NAMESPACE, seed=None):
    """Forget a namespace's agents, idempotency records, journal, faults, frozen clock and calls.

    With a seed, the ids it hands out from now on are `seeded_id(seed, 0)`, `(seed, 1)`, ...;
    without one they are random again. Snapshots are kept, so a test can restore one after.
    """
    with write_transaction():
        delete_namespace_agents(namespace)
        delete_namespace_calls(namespace)
        for model in (FrozenClock, IdSequence, JournalEntry, Fault):
            model.delete().where(model.namespace == namespace).execute()
        if seed is not None:
            IdSequence.create(namespace=namespace, seed=seed, counter=0)


def freeze_clock(now, namespace=DEFAULT_NAMESPACE):
    """Make `now` the time of every create and update in the namespace."""
    with write_transaction():
        FrozenClock.insert(namespace=namespace, now=now).on_conflict(
            conflict_target=[FrozenClock.namespace], preserve=[FrozenClock.now]
        ).execute()


def release_clock(namespace=DEFAULT_NAMESPACE):
    """Let the namespace's clock run again."""
    with write_transaction():
        FrozenClock.delete().where(FrozenClock.namespace == namespace).execute()


def load_agents(agents, namespace=DEFAULT_NAMESPACE):
    """Store validated agents as given, all or none; raises AgentIdsTaken."""
    with write_transaction():
        return insert_agents(agents, namespace)


def load_agents_once(agents, digest, namespace=DEFAULT_NAMESPACE):
    """Load a fixtures file's agents unless a file with this digest was loaded before.

    Every gunicorn worker may start with the same file; the first one to get here loads it.
    """
    with write_transaction():
        loaded = FixtureFile.get_or_none(
            (FixtureFile.namespace == namespace) & (FixtureFile.digest == digest)
        )
        if loaded is not None:
            return []
        FixtureFile.create(namespace=namespace, digest=digest, loaded_at=utc_timestamp())
        return insert_agents(agents, namespace)


def save_snapshot(name, namespace=DEFAULT_NAMESPACE):
    """Save the namespace's agents, idempotency records, clock and id seed under `name`.

    Returns how many agents it holds. A snapshot of the same name is replaced.
    """
    with write_transaction():
        state = {
            model._meta.table_name: list(
                model.select(*_saved_fields(model)).where(model.namespace == namespace).dicts()
            )
            for model in NAMESPACE_STATE
        }
        Snapshot.insert(
            namespace=namespace, name=name, state=state, created_at=utc_timestamp()
        ).on_conflict(
            conflict_target=[Snapshot.namespace, Snapshot.name],
            preserve=[Snapshot.state, Snapshot.created_at],
        ).execute()
    return len(state[Agent._meta.table_name])


def _saved_fields(model):
    """The fields a snapshot keeps: not the row numbers the database gives (Agent.sequence)."""
    return [field for field in model._meta.sorted_fields if not isinstance(field, AutoField)]


def restore_snapshot(name, namespace=DEFAULT_NAMESPACE):
    """Put the namespace back exactly as it was saved; raises SnapshotNotFound."""
    with write_transaction():
        snapshot = Snapshot.get_or_none((Snapshot.namespace == namespace) & (Snapshot.name == name))
        if snapshot is None:
            raise SnapshotNotFound(name)
        for model in NAMESPACE_STATE:
            model.delete().where(model.namespace == namespace).execute()
            insert_rows(model, snapshot.state[model._meta.table_name])


JOURNAL_FIELDS = ("method", "path", "query", "headers", "body", "status", "received_at")
# The most entries a namespace's journal keeps: the newest ones. However many requests a suite
# (or a runaway client) makes, the journal cannot grow the file beyond this many entries.
JOURNAL_LIMIT = 1000
# Forgetting the entries beyond the limit walks the newest JOURNAL_LIMIT of them, which cost a
# request more than recording it; so each process forgets a namespace's old entries once every
# this many entries it records there, and `journal` shows only the newest JOURNAL_LIMIT.
FORGET_EVERY = 100
_recorded_since_forgetting = collections.Counter()


def record_request(entry, namespace=DEFAULT_NAMESPACE):
    """Add a request (method, path, query, headers, body, status, received_at) to the journal,
    and now and then forget the namespace's entries beyond the newest JOURNAL_LIMIT."""
    row = (
        namespace,
        entry["method"],
        entry["path"],
        to_json(entry["query"]),
        to_json(entry["headers"]),
        to_json(entry["body"]),  # a missing body too, as JSON's null, as the model stores it
        entry["status"],
        entry["received_at"],
    )
    _recorded_since_forgetting[namespace] += 1
    forget = _recorded_since_forgetting[namespace] >= FORGET_EVERY
    # Inside the request's own write transaction (hooks.py) it needs none of its own, nor a
    # savepoint: an entry that fails there fails that request's commit.
    with nullcontext() if db.in_transaction() else write_transaction():
        db.execute_sql(INSERT_JOURNAL_ENTRY, row)
        if forget:
            db.execute_sql(FORGET_OLD_JOURNAL_ENTRIES, (namespace, namespace, JOURNAL_LIMIT - 1))
    if forget:
        del _recorded_since_forgetting[namespace]


def journal(method=None, path=None, namespace=DEFAULT_NAMESPACE):
    """The namespace's journal, oldest first, optionally only one method and path (`{id}` ok)."""
    newest = (
        JournalEntry.select(JournalEntry.id)
        .where(JournalEntry.namespace == namespace)
        .order_by(JournalEntry.id.desc())
        .limit(JOURNAL_LIMIT)
    )
    select = JournalEntry.select().where(
        (JournalEntry.namespace == namespace) & JournalEntry.id.in_(newest)
    )
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


ID_SEGMENT = "{id}"


def path_matches(pattern, path):
    """True when `path` is `pattern`, where each `{id}` segment stands for any one path segment.

    A trailing slash on either makes no difference, as it makes none to the routes. Segments are
    compared one by one, so a match takes time in proportion to the path, whatever the pattern.
    """
    wanted, given = _segments(pattern), _segments(path)
    return len(wanted) == len(given) and all(
        segment == sent or (segment == ID_SEGMENT and sent != "")
        for segment, sent in zip(wanted, given, strict=True)
    )


def _segments(path):
    return (path.rstrip("/") or "/").split("/")


FAULT_FIELDS = (
    "method",
    "path",
    "status",
    "error",
    "code",
    "delay_ms",
    "retry_after",
    "after_commit",
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

    Faults are read and matched without the write lock, which every writer of every namespace
    waits on; only spending a use takes it, and only if that use is still there, so `times: 2`
    answers exactly two requests however many workers race for it.
    """
    candidates = db.execute_sql(SELECT_FAULTS, (namespace, method)).fetchall()
    for fault_id, remaining, *fields in candidates:
        fault = dict(zip(FAULT_FIELDS, fields, strict=True))
        if path_matches(fault["path"], path) and (remaining == -1 or _spend_use(fault_id)):
            return {**fault, "after_commit": bool(fault["after_commit"]), "times": remaining}
    return None


def _spend_use(fault_id):
    """Take one of a fault's uses; False when other requests have spent them all meanwhile."""
    with write_transaction():
        spent = (
            Fault.update(remaining=Fault.remaining - 1)
            .where((Fault.id == fault_id) & (Fault.remaining > 0))
            .execute()
        )
        Fault.delete().where((Fault.id == fault_id) & (Fault.remaining == 0)).execute()
    return spent == 1


def _fault_view(fault):
    return {**{name: getattr(fault, name) for name in FAULT_FIELDS}, "times": fault.remaining}
