"""The storage engines behind the models, and the failures that mean storage is unavailable.

An engine owns what only its kind of database needs; models.py reaches whichever one the
configured URL names through the same few members:

    database                the Peewee database object
    location                where the data lives, as an operator names it (no password)
    prepare(migrate)        create what is missing, then run `migrate(database)`, one process
                            at a time
    open()                  give the calling thread a usable connection, before each request
    write_transaction(flush=True)
                            a transaction that holds the write lock and is durable once left
                            (with flush=False it may be lost to a power cut: a counter's)
    is_ready(version)       whether the database answers, can be written and is at `version`
    unavailability(error)   why `error` means the storage is unavailable, or None if it does not
"""


class DatabaseUnavailable(Exception):
    """The storage cannot be opened, read or written now; the same request may succeed later."""


class WriteNotFlushed(DatabaseUnavailable):
    """A committed write the disk did not confirm: others can read it, a power cut may lose it."""


def absolute_url(database_url):
    """The URL with any file path in it made absolute; ValueError, saying what the URL should
    look like, unless an engine speaks it."""
    from storage.sqlite import URL_SCHEME, sqlite_path

    return URL_SCHEME + sqlite_path(database_url)


def open_engine(database_url, durable=True):
    """The engine for a URL `absolute_url` accepts; nothing is opened or created yet.

    Without `durable` an engine may skip what only power-cut safety needs (a test double's).
    """
    from storage.sqlite import SqliteEngine, sqlite_path

    return SqliteEngine(sqlite_path(database_url), durable)
