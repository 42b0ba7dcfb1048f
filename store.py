"""The Store: one database engine, the clock and ids that stamp what is written to it, and which
store the models are working on now.

Each app has its own store and makes it current for each request (a command does the same for
its work), so that two apps in one process keep to their own databases. `db` is the current
store's database, for the Peewee models to be bound to.
"""

import threading
import uuid
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from peewee import DatabaseProxy

import migrations
from storage import DatabaseUnavailable


def utc_timestamp():
    """Now as ISO 8601 UTC with milliseconds, the form every timestamp is stored and sent in."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def random_id():
    """A new agent id: a random lowercase UUIDv4."""
    return str(uuid.uuid4())


class Store:
    """One database engine, and the clock and ids that stamp what is written to it.

    Test mode replaces `now(namespace)` and `new_id(namespace, taken)` with a namespace's frozen
    clock and seeded ids (none of them stored, nor in `taken`), which read the database and so
    must be called inside the write transaction (`stamps_read_the_database`), and adds to
    `on_prepare` what must happen once the tables exist.
    """

    def __init__(self, engine):
        self.engine = engine
        self.now = lambda namespace: utc_timestamp()
        self.new_id = lambda namespace, taken=(): random_id()
        self.stamps_read_the_database = False
        self.on_prepare = []
        self._prepared = False
        self._preparing = threading.Lock()

    def prepare(self):
        """Create or migrate the database, then run `on_prepare`; once per process."""
        if self._prepared:  # every request asks; only the first one waits
            return
        with self._preparing:
            if self._prepared:
                return
            self.engine.prepare(migrations.migrate)
            with self.activated(), self.engine.database.connection_context():
                for step in self.on_prepare:
                    step()
            self._prepared = True

    def is_ready(self):
        """Whether the database is prepared and can be opened, read and written now."""
        try:
            self.prepare()
        except DatabaseUnavailable:
            return False
        return self.engine.is_ready(migrations.latest_version())

    def activate(self):
        """Make this the current store of the calling context; returns the token to reset it."""
        return _current_store.set(self)

    @contextmanager
    def activated(self):
        """This store is the current one inside the block."""
        token = self.activate()
        try:
            yield self
        finally:
            _current_store.reset(token)


_current_store = ContextVar("store")


def current_store():
    """The store the models are working on now."""
    return _current_store.get()


def reset_current_store(token):
    """Undo the `Store.activate` that returned `token`."""
    _current_store.reset(token)


class _CurrentDatabase(DatabaseProxy):
    """The database of the current store, so that two apps in one process keep to their own."""

    def initialize(self, obj):
        pass

    @property
    def obj(self):
        return _current_store.get().engine.database


db = _CurrentDatabase()


def write_transaction(flush=True):
    """The current engine's write transaction: it holds the write lock, durable when left.

    Without `flush` it is left unflushed, for what a power cut may lose (a rate-limit count);
    the next flushed write carries it to the disk anyway. While writes are held (`hold_writes`),
    the first one stays open when its block is left, and later ones are savepoints within it.
    """
    transaction = _current_store.get().engine.write_transaction(flush=flush)
    held = _held_writes.get()
    if held is not None and held.stack is None:
        return held.keep_open(transaction)
    return transaction


_held_writes = ContextVar("held_writes", default=None)


def hold_writes():
    """Keep the calling context's next write transaction open until `HeldWrites.commit`."""
    held = HeldWrites()
    held.token = _held_writes.set(held)
    return held


class HeldWrites:
    """A request's first write transaction, kept open after its block so that what the request
    writes as it ends (test mode's journal entry) commits with it, in one transaction, not two.
    A block that fails rolls it back, as if it had never been opened."""

    def __init__(self):
        self.stack = None
        self.token = None

    @contextmanager
    def keep_open(self, transaction):
        stack = ExitStack()
        value = stack.enter_context(transaction)
        try:
            yield value
        except BaseException:
            with stack:  # leaves the transaction with the error: rolled back
                raise
        self.stack = stack

    def commit(self, write_last=None):
        """Stop holding. If a transaction is held, run `write_last` in it and commit both,
        returning True; an error of either is raised, and then nothing of them is stored.
        Returns False when none is held (and `write_last` has not run)."""
        stack, self.stack = self.stack, None
        if self.token is not None:
            _held_writes.reset(self.token)
            self.token = None
        if stack is None:
            return False
        with stack:
            if write_last is not None:
                write_last()
        return True
