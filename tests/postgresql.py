"""The PostgreSQL server the suite runs its PostgreSQL half on, and a schema of its own for
each test: a new one, or one emptied after an earlier test of the same process."""

import contextlib
import os
import uuid
from urllib.parse import quote

import psycopg

from storage import shown_url
from storage.postgresql import MIGRATION_LOCK

SERVER_URL = os.environ.get("AGENTS_TEST_POSTGRESQL_URL", "postgresql://root@127.0.0.1:5432/test")
_reachable = {}


def under_ci():
    """Whether the suite runs under CI, where what a test needs missing is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_or_reason():
    """(the server's URL, None), or (None, why it cannot be used), asked once per process.

    pg_trgm is installed up front where every schema's index can find it: installed by a
    test's migration, it would land in that test's schema and go when the schema is dropped.
    """
    if SERVER_URL not in _reachable:
        try:
            with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=3) as connection:
                connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            _reachable[SERVER_URL] = None
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            _reachable[SERVER_URL] = (
                f"PostgreSQL at {shown_url(SERVER_URL)} cannot be used ({reason})"
            )
    reason = _reachable[SERVER_URL]
    return (None, reason) if reason else (SERVER_URL, None)


def schema_url(server_url, schema):
    """The server's URL with `schema` first on the search path of every connection."""
    separator = "&" if "?" in server_url else "?"
    return f"{server_url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextlib.contextmanager
def fresh_schema(server_url):
    """A new, empty schema of the server's database, as a URL; dropped with all it holds after."""
    schema = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(server_url, schema)
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


# What a schema is made of (every column of its tables and indexes, and its version), to tell
# that a test left it as the migrations made it; read from the catalog, which answers at once.
SHAPE = """
SELECT md5(string_agg(c.relname || '.' || a.attname || ':' || a.atttypid, ','
                      ORDER BY c.relname, a.attnum))
       || (SELECT max("version") FROM "schema_version")
FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid
WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
"""
# Every table emptied and every identity restarted, in one transaction. DELETE, not TRUNCATE:
# TRUNCATE gives each table and index new files, several times slower for a few rows.
EMPTY = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT quote_ident(tablename) FROM pg_tables
                WHERE schemaname = current_schema() AND tablename <> 'schema_version' LOOP
        EXECUTE 'DELETE FROM ' || name;
    END LOOP;
    PERFORM setval(c.oid, 1, false) FROM pg_class AS c
    WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace;
END $$
"""


class SchemaPool:
    """Migrated schemas for one test process, each used by one test at a time.

    Creating and migrating a schema takes a quarter of a second or more (some forty statements
    of DDL), longer than most tests; so a schema a test is done with is emptied (every row
    deleted, identities restarted) and handed to the next test, unless the test changed its
    tables or version, which is left aside instead. Every schema is dropped at the end.
    """

    def __init__(self, server_url):
        self.server_url = server_url
        self.free = []
        self.made = []

    @contextlib.contextmanager
    def schema(self):
        url, shape = self.free.pop() if self.free else self._new()
        try:
            yield url
        finally:
            if self._emptied(url, shape):
                self.free.append((url, shape))

    def _new(self):
        from migrations import migrate
        from storage import open_engine

        name = f"test_{uuid.uuid4().hex}"
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')
        self.made.append(name)
        url = schema_url(self.server_url, name)
        engine = open_engine(url, durable=False)
        try:
            engine.prepare(migrate)
        finally:
            engine.close()
        with psycopg.connect(url) as connection:
            return url, connection.execute(SHAPE).fetchone()[0]

    def _emptied(self, url, shape):
        """Whether the schema is as migrated and now empty again."""
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                if connection.execute(SHAPE).fetchone()[0] != shape:
                    return False
                connection.execute("SET lock_timeout = '2s'")
                connection.execute("SET synchronous_commit = off")  # nothing here to keep
                connection.execute(EMPTY)
        except psycopg.Error:
            return False
        return True

    def drop_all(self):
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            for name in self.made:
                connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
