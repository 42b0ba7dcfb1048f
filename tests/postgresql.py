"""The PostgreSQL server the suite runs its PostgreSQL half on, and a fresh schema per test."""

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
