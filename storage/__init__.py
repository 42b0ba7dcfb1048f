"""The storage engines behind the models, and the failures that mean storage is unavailable.

An engine owns what only its kind of database needs; models.py reaches whichever one the
configured URL names through the same few members:

    database                the Peewee database object
    location                where the data lives, as an operator names it (no password)
    document_as_bytes       SQL reading the "document" column as its UTF-8 bytes
    has_trigram_table       whether searches read SQLite's FTS5 table agent_search (listing.py)
    prepare(migrate)        create what is missing, then run `migrate(database)`, one process
                            at a time
    open()                  give the calling thread a usable connection, before each request
    execute_many(sql, rows) run a statement written with `?` placeholders once for each row
    change_stamp()          a value that differs whenever what the calling thread's connection
                            reads may have changed, or None where the engine cannot tell
    write_transaction(flush=True)
                            a transaction that holds the write lock and is durable once left
                            (with flush=False it may be lost to a power cut: a counter's)
    is_ready(version)       whether the database answers, can be written and is at `version`
    unavailability(error)   why `error` means the storage is unavailable, or None if it does not
    close()                 close the connections it opened (a finished app's)
    exists()                whether there is a database to work on, for the commands that
                            read one and must not create it
    check()                 a report: integrity, schema version and counts
    backup_advice(target)   None where `backup(target)` copies the database; else what does

sqlite.py is the embedded engine, postgresql.py the shared one; which one a URL names is said
here, without importing either.
"""

import os
import sys

SQLITE_SCHEME = "sqlite:///"
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


class DatabaseUnavailable(Exception):
    """The storage cannot be opened, read or written now; the same request may succeed later."""


class WriteNotFlushed(DatabaseUnavailable):
    """A committed write the disk did not confirm: others can read it, a power cut may lose it."""


def is_postgresql_url(database_url):
    return database_url.startswith(POSTGRESQL_SCHEMES)


def sqlite_path(database_url):
    """The absolute file path of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    if not database_url.startswith(SQLITE_SCHEME) or len(database_url) == len(SQLITE_SCHEME):
        raise ValueError("must look like sqlite:///path/to/file.db")
    return os.path.abspath(database_url[len(SQLITE_SCHEME) :])


def absolute_url(database_url):
    """The URL with any file path in it made absolute; ValueError, saying what the URL should
    look like, unless an engine speaks it."""
    if is_postgresql_url(database_url):
        from storage.postgresql import checked_url

        return checked_url(database_url)
    try:
        return SQLITE_SCHEME + sqlite_path(database_url)
    except ValueError:
        raise ValueError(
            "must look like sqlite:///path/to/file.db or postgresql://user@host:port/database"
        ) from None


def shown_url(database_url):
    """The URL as it may be written to a log or an error: without a password."""
    if not is_postgresql_url(database_url):
        return database_url
    from storage.postgresql import without_password

    return without_password(database_url)


def open_engine(database_url, durable=True):
    """The engine for a URL `absolute_url` accepts; nothing is opened or created yet.

    Without `durable` an engine may skip what only power-cut safety needs (a test double's).
    """
    if is_postgresql_url(database_url):
        from storage.postgresql import PostgresqlEngine

        return PostgresqlEngine(database_url, durable)
    from storage.sqlite import SqliteEngine

    return SqliteEngine(sqlite_path(database_url), durable)


def leave_out_unused_drivers(database_url):
    """Keep PostgreSQL's driver out of a process whose database is SQLite for all its life (a
    server's), if called before anything imports Peewee.

    Peewee imports psycopg whenever it is installed, and with it asyncio, libpq and OpenSSL:
    about 8 MB of every worker's memory that SQLite never uses.
    """
    if not is_postgresql_url(database_url) and "peewee" not in sys.modules:
        sys.modules.setdefault("psycopg", None)
