"""PostgreSQL, the shared engine: one database that every worker of every host writes to.

Writers are serialised by a transaction-scoped advisory lock, as SQLite's writers are by its
write lock, so every read-then-write the models do (idempotency, If-Match, a fault's uses, the
journal's order) holds across hosts unchanged. Commits are durable before they are answered
(`synchronous_commit` on), except a test double's and a rate-limit count's.
"""

import hashlib
import threading
import time
import weakref
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from peewee import DatabaseError, InterfaceError, PostgresqlDatabase
from peewee import __exception_wrapper__ as peewee_errors

from storage import DatabaseUnavailable

# SQLSTATEs that describe the server rather than the statement: the connection (class 08),
# a shutdown or restart (57P01-57P03), its resources (class 53: disk full, out of memory,
# too many connections), a read-only standby (25006), and a statement ended by the operator's
# statement_timeout or lock_timeout (57014, 55P03): the server is too busy now. Any other SQL
# error is a bug: a 500.
UNAVAILABLE_CLASSES = ("08", "53")
UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "25006", "57014", "55P03"}
# What the role or the search_path may lack for the service to make its tables: no privilege
# (42501), no such schema (3F000). The operator's to mend, so one line rather than a traceback.
UNPREPARABLE_STATES = {"42501", "3F000"}
# How long a connection attempt may take unless the URL says otherwise, in seconds.
CONNECT_TIMEOUT = 5
# How long readiness trusts its last answer, in seconds (as SQLite's does).
PROBE_TTL = 1.0
# Migrations take this session-wide advisory lock: hosts starting together migrate in turn.
MIGRATION_LOCK = 0x6167_656E_7473_0001  # "agents" and 1
COUNTS = (
    ("agents", 'SELECT count(*) FROM "agent"'),
    ("active_agents", 'SELECT count(*) FROM "agent" WHERE "is_active"'),
    ("idempotency_records", 'SELECT count(*) FROM "idempotency_record"'),
)


def checked_url(database_url):
    """The URL itself once libpq can read it; ValueError otherwise."""
    try:
        psycopg.conninfo.conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        raise ValueError("must look like postgresql://user@host:port/database") from None
    return database_url


def without_password(database_url):
    """The URL as it may be shown: no password in its user part or in its parameters."""
    parts = urlsplit(database_url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _first_line(error):
    """libpq's message without the hint it puts on lines of their own: one line of a log or an
    `Error:`."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else ""


def _unpreparable(error):
    cause = error.__context__
    if isinstance(cause, psycopg.Error) and cause.sqlstate in UNPREPARABLE_STATES:
        return _first_line(cause)
    return None


@lru_cache(maxsize=512)
def _pyformat(sql):
    """A statement written with `?` placeholders, as psycopg takes it (%s, and % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class SharedDatabase(PostgresqlDatabase):
    """Peewee's PostgreSQL database, speaking the models' `?` placeholders too.

    The models' hand-written statements use `?`, which SQLite takes; each distinct statement is
    translated once. Peewee's own queries already come with psycopg's %s and pass unchanged.
    """

    def __init__(self, url, durable, connect_timeout):
        super().__init__(
            url, autoconnect=False, prefer_psycopg3=True, connect_timeout=connect_timeout
        )
        self.durable = durable
        self.connections = weakref.WeakSet()

    def execute(self, query, **context_options):
        sql, params = self.get_sql_context(**context_options).sql(query).query()
        return self._execute_cursor(sql, params)

    def execute_sql(self, sql, params=None):
        if params and "?" in sql:
            sql = _pyformat(sql)
        return self._execute_cursor(sql, params)

    def _connect(self):
        connection = super()._connect()
        # A test double needs no power-cut durability; everything else is on the disk of the
        # server before it is answered.
        durability = "on" if self.durable else "off"
        connection.execute(f"SET synchronous_commit = {durability}")
        self.connections.add(connection)
        return connection


class PostgresqlEngine:
    """One PostgreSQL database (or schema of one, by the URL's search_path)."""

    # The TEXT column "document" as its UTF-8 bytes (bytea, which psycopg hands over as bytes).
    document_as_bytes = """convert_to("document", 'UTF8')"""
    # Searches need no table of their own: pg_trgm's index answers the LIKE (listing.py).
    has_trigram_table = False

    def __init__(self, url, durable=True):
        self.url = url
        self.location = without_password(url)
        parameters = psycopg.conninfo.conninfo_to_dict(url)
        self._connect_timeout = parameters.get("connect_timeout", CONNECT_TIMEOUT)
        self.database = SharedDatabase(url, durable, self._connect_timeout)
        self._write_lock = None
        self._last_probe = None
        self._probing = threading.Lock()

    def prepare(self, migrate):
        """Migrate the database, one host or worker at a time (an advisory lock)."""
        try:
            with self.database.connection_context():
                self.database.execute_sql("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
                try:
                    migrate(self.database)
                finally:
                    self.database.execute_sql("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
        except DatabaseError as error:
            cause = self.unavailability(error) or _unpreparable(error)
            if cause is None:
                raise
            raise DatabaseUnavailable(
                f"cannot open the database at {self.location}: {cause}"
            ) from None

    def _write_lock_key(self):
        """The writers' advisory lock: one per schema, so services in other schemas of the
        same database keep their own. Known from the first write on."""
        if self._write_lock is None:
            schema = self.database.execute_sql("SELECT current_schema()").fetchone()[0]
            digest = hashlib.blake2b(f"agents writes {schema}".encode(), digest_size=8).digest()
            self._write_lock = int.from_bytes(digest, "big", signed=True)
        return self._write_lock

    def open(self):
        """Give this thread a usable connection, kept from request to request; one the server
        has dropped, or left in a failed transaction, is closed and opened anew."""
        database = self.database
        if not database.is_closed():
            if database.is_connection_usable():
                return
            self._close_quietly()
        database.connect()

    def execute_many(self, sql, rows):
        """Run one statement written with `?` placeholders for each row of parameters."""
        with peewee_errors:  # the driver's errors as peewee's, as every other statement raises them
            self.database.cursor().executemany(_pyformat(sql), rows)

    def change_stamp(self):
        """None: other hosts write to the server, and it tells no connection when they have."""
        return None

    def _close_quietly(self):
        try:
            self.database.close()
        except (DatabaseError, InterfaceError, psycopg.Error):
            # A connection the server already dropped: nothing is left to close but our state.
            self.database._state.reset()

    def close(self):
        """Close every connection this engine opened, in whichever thread."""
        for connection in list(self.database.connections):
            connection.close()
        self._close_quietly()

    @contextmanager
    def write_transaction(self, flush=True):
        """A transaction that holds the writers' advisory lock from its first statement, and
        is committed durably when left (unless not asked to `flush`)."""
        database = self.database
        if database.in_transaction():
            with database.atomic() as savepoint:
                yield savepoint
            return
        with database.atomic() as txn:
            database.execute_sql("SELECT pg_advisory_xact_lock(?)", (self._write_lock_key(),))
            if not flush:
                database.execute_sql("SET LOCAL synchronous_commit = off")
            yield txn

    def is_ready(self, schema_version):
        """Whether the server takes a new connection, can write, and is at `schema_version`.

        Asked at most once a second per process, on a connection of its own.
        """
        cached = self._last_probe
        if cached is None or time.monotonic() >= cached[0]:
            with self._probing:
                cached = self._last_probe
                if cached is None or time.monotonic() >= cached[0]:
                    answer = self._answers_at(schema_version)
                    cached = self._last_probe = (time.monotonic() + PROBE_TTL, answer)
        return cached[1]

    def _answers_at(self, schema_version):
        from migrations import POSTGRESQL_VERSION

        try:
            with self._own_connection() as connection:
                read_only = connection.execute("SHOW transaction_read_only").fetchone()[0]
                version = connection.execute(POSTGRESQL_VERSION).fetchone()
        except psycopg.Error:
            return False
        return read_only == "off" and version is not None and version[0] == schema_version

    @contextmanager
    def _own_connection(self):
        connection = psycopg.connect(
            self.url, autocommit=True, connect_timeout=self._connect_timeout
        )
        try:
            yield connection
        finally:
            connection.close()

    def unavailability(self, error):
        """The server's own words when `error` is a state of the server or the connection to
        it, else None."""
        if isinstance(error, DatabaseUnavailable):
            return str(error)
        cause = getattr(error, "orig", None) or error
        if not isinstance(cause, psycopg.Error):
            cause = error.__context__
        if not isinstance(cause, psycopg.Error):
            return None
        state = cause.sqlstate
        if state is None:
            # Raised by the driver, not the server: the connection failed or was lost.
            if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
                return _first_line(cause) or "the connection to the server was lost"
            return None
        if state[:2] in UNAVAILABLE_CLASSES or state in UNAVAILABLE_STATES:
            return _first_line(cause)
        return None

    def exists(self):
        """A server database always exists to be asked; whether it answers is `check`'s."""
        return True

    def check(self):
        """The schema version and counts, read on a connection of its own."""
        from migrations import POSTGRESQL_VERSION

        try:
            with self._own_connection() as connection:
                row = connection.execute(
                    "SELECT to_regclass('schema_version') IS NOT NULL"
                ).fetchone()
                version = connection.execute(POSTGRESQL_VERSION).fetchone() if row[0] else None
                report = {"integrity": ["ok"], "schema_version": version[0] if version else 0}
                if report["schema_version"] >= 1:
                    for name, sql in COUNTS:
                        report[name] = connection.execute(sql).fetchone()[0]
        except psycopg.Error as error:
            raise DatabaseUnavailable(
                f"cannot read the database at {self.location}: {_first_line(error)}"
            ) from None
        return report

    def backup_advice(self, target):
        """What backs this database up, since this service does not: pg_dump's command line."""
        return (
            "A PostgreSQL database is backed up with its own tool, pg_dump; nothing was backed "
            f"up. Run: pg_dump --format=custom --file='{target}' '{self.location}'"
        )
