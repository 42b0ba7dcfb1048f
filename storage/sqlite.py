"""SQLite, the embedded engine: the file and its folder, the writers' lock, the WAL flush, the
identity of the file each connection has open, its modes, and the file tools that only a file
has. Readiness has a module of its own (sqlite_readiness.py).
"""

import fcntl
import logging
import os
import sqlite3
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from peewee import DatabaseError, SqliteDatabase
from peewee import __exception_wrapper__ as peewee_errors

from storage import DatabaseUnavailable, WriteNotFlushed
from storage.sqlite_readiness import ReadinessProbe

# WAL lets readers run beside the one writer. Each write is flushed to the disk before it is
# answered, so an agent acknowledged with 201 survives a power cut, not only a crash of the process:
# write_transaction fsyncs the WAL itself once the write lock is released (SQLite's own per-commit
# fsync, synchronous=FULL, would hold every other writer waiting on the disk meanwhile).
# synchronous=NORMAL still fsyncs around every checkpoint, so nothing moves from the WAL into the
# database file unflushed.
# Pages of 8 KB hold two agents each where 4 KB pages split each over two with room wasted: at
# 100,000 agents 3,118 bytes an agent rather than 4,481 (bench/results-scale.md). A new file
# takes it as its first pragma, before WAL fixes it; an older file is rebuilt once (`prepare`).
PAGE_SIZE = 8192
PRAGMAS = {
    "page_size": PAGE_SIZE,
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
}
# SQLite's primary result codes that describe the file or the disk rather than the statement:
# busy or locked past the timeout, out of memory, read-only, I/O error, damaged, full, cannot be
# opened, a broken lock protocol, not a database.
UNAVAILABLE_CODES = {5, 6, 7, 8, 10, 11, 13, 14, 15, 26}
# The database, its WAL and its backups hold webhook secrets in plain text.
PRIVATE_MODE = 0o600

log = logging.getLogger("agents.storage")


class FileIdentity(NamedTuple):
    device: int
    inode: int
    writable: bool


class SqliteEngine:
    """One SQLite file, opened with PRAGMAS, kept open per thread while it stays the same file."""

    # How a statement reads the TEXT column "document" as its UTF-8 bytes (models.py), so a list
    # page splices stored documents without decoding them. SQLite's CAST to BLOB hands over the
    # stored text as it is; every engine supplies its own form.
    document_as_bytes = 'CAST("document" AS BLOB)'
    # Searches are answered from the FTS5 trigram table agent_search (listing.py).
    has_trigram_table = True

    def __init__(self, path, durable=True):
        self.path = path
        self.location = path
        self.durable = durable
        self.database = SqliteDatabase(
            path, pragmas=PRAGMAS, autoconnect=False, check_same_thread=False
        )
        # Per thread: the FileIdentity of the file its connection was opened on, and the
        # descriptors its writes use with that connection (_WriteFiles).
        self._connected_file = threading.local()
        # The inode the file was last found writable or not in, and what it was (_writable).
        self._write_access = None
        self._readiness = ReadinessProbe(path)

    def prepare(self, migrate):
        """Create the file and its folder if need be, then migrate it, one process at a time."""
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            # Several gunicorn workers may start at once; only one may switch a new file to WAL
            # and create its tables, so they take turns on the lock file beside the database.
            with self._lock_file():
                self._keep_private()
                with self.database.connection_context():
                    migrate(self.database)
                    self._enlarge_pages()
        except OSError as error:
            raise DatabaseUnavailable(
                f"cannot create or open the database at {self.path}: {_reason(error)}"
            ) from None
        except DatabaseError as error:
            cause = self.unavailability(error)
            if cause is None:
                raise
            raise DatabaseUnavailable(f"cannot open the database at {self.path}: {cause}") from None

    def _enlarge_pages(self):
        """Rebuild a file of smaller pages (made before release 1.3.0) with PAGE_SIZE ones.

        Only VACUUM changes the page size, outside a transaction and out of WAL mode, which takes
        the file for itself: a file another process has open keeps its pages until a later start.
        """
        database = self.database
        if database.execute_sql("PRAGMA page_size").fetchone()[0] >= PAGE_SIZE:
            return
        log.warning("rebuilding %s with %d-byte pages; this takes a while", self.path, PAGE_SIZE)
        try:
            database.execute_sql("PRAGMA journal_mode = delete")
            database.execute_sql(f"PRAGMA page_size = {PAGE_SIZE}")
            database.execute_sql("VACUUM")
        except DatabaseError as error:
            log.warning("%s keeps its pages for now: %s", self.path, error)
        finally:
            database.execute_sql("PRAGMA journal_mode = wal")

    def _keep_private(self):
        """Create the file readable and writable by its owner only, and make it so if it is not.

        It holds webhook secrets in plain text. SQLite would create it 0644 whatever the umask,
        and creates the -wal and -shm files with the mode of the database file, so a file made
        0600 before SQLite first opens it keeps all three private.
        """
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            descriptor = os.open(self.path, flags, PRIVATE_MODE)
        except FileExistsError:
            pass
        else:
            try:
                os.fchmod(descriptor, PRIVATE_MODE)  # whatever the umask left of it
            finally:
                os.close(descriptor)
        for name in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
            try:
                mode = stat.S_IMODE(os.stat(name).st_mode)
                if mode & 0o077:
                    os.chmod(name, mode & 0o700)
                    log.warning(
                        "%s was open to other users (mode %s); it is now its owner's only",
                        name,
                        oct(mode),
                    )
            except FileNotFoundError:
                continue
            except PermissionError:  # another user's file: say so, but serve
                log.warning("%s is open to other users, and cannot be made private", name)

    def open(self):
        """Give this thread an open connection to the file, kept from request to request.

        Opening one costs more than most requests, and closing the last connection to a WAL file
        checkpoints it, so it stays open; but once the path no longer names the file it was
        opened on (moved, deleted or replaced), or the file has become read-only or writable
        since, it is closed and the path opened again, as a connection opened for this request
        would be.
        """
        database = self.database
        if not database.is_closed():
            if self._file_identity() == getattr(self._connected_file, "identity", None):
                return
            self.close()
        database.connect()
        identity = self._connected_file.identity = self._file_identity()
        if identity and not identity.writable:
            # SQLite keeps a closed connection's descriptor open while other connections of this
            # process hold locks on the file, and hands it to the next one that opens the file: a
            # read-write descriptor from before the file became read-only would let it write.
            database.execute_sql("PRAGMA query_only = ON")

    def execute_many(self, sql, rows):
        """Run one statement for each row of parameters, prepared once."""
        with peewee_errors:  # the driver's errors as peewee's, as every other statement raises them
            self.database.cursor().executemany(sql, rows)

    def change_stamp(self):
        """A value that differs whenever what this thread's connection reads may have changed.

        SQLite's data_version moves with every commit of any other connection, in this process
        or another; total_changes counts the rows this connection itself has written.
        """
        connection = self.database.connection()
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        return connection, version, connection.total_changes

    def _file_identity(self):
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return FileIdentity(status.st_dev, status.st_ino, self._writable(status))

    def _writable(self, status):
        """Whether this process may write the file of `status`, asked only once its inode changes.

        A change of mode or owner shows in `status`, and one of flags (chattr +i) in its ctime,
        which every other change moves too: one system call fewer for every request.
        """
        inode = (
            status.st_dev,
            status.st_ino,
            status.st_mode,
            status.st_uid,
            status.st_gid,
            status.st_ctime_ns,
        )
        known = self._write_access
        if known is None or known[0] != inode:
            known = self._write_access = (inode, os.access(self.path, os.W_OK))
        return known[1]

    @contextmanager
    def write_transaction(self, flush=True):
        """A transaction that takes SQLite's write lock up front, so it never fails half-way,
        and is on the disk when the block is left (unless not asked to `flush`).

        Writers first queue on the lock file beside the database. SQLite makes a writer that
        finds the database locked sleep and retry (1, 2, 5, 10 ms and longer), so workers writing
        at once would spend most of their time asleep; a blocked flock wakes the moment it is
        released.

        The commit is flushed after the lock is released, so the next writer commits while this
        one waits on the disk, and writers flushing together share the disk's work. Until the
        flush returns, other requests can already read the write; were the power to fail
        meanwhile, it would be lost, but nobody would have been told it was stored. A later
        write's flush covers every commit before it in the WAL, so no write that builds on it is
        ever kept without it.
        """
        database = self.database
        if database.in_transaction():
            with database.atomic() as savepoint:
                yield savepoint
            return
        try:
            files = self._write_files()
            with files.write_lock(), _keeping_the_first_error(database.atomic("IMMEDIATE")) as txn:
                yield txn
        except OSError as error:  # the lock file: its folder gone, read-only or full
            raise DatabaseUnavailable(f"cannot take the write lock: {_reason(error)}") from error
        # A test double needs no power-cut durability, and its callers' suites wait on every write.
        if self.durable and flush:
            self._flush_to_disk(files)

    def _write_files(self):
        """The calling thread's _WriteFiles for the connection it has open, opened once for it."""
        connection = self.database.connection()
        files = getattr(self._connected_file, "write_files", None)
        if files is None or files.connection is not connection:
            if files is not None:
                files.close()
            files = self._connected_file.write_files = _WriteFiles(self.path, connection)
        return files

    def _flush_to_disk(self, files):
        """fsync the WAL: every commit written to it so far, by any connection, is then durable."""
        try:
            fdatasync(files.flushed())
        except OSError as error:
            raise WriteNotFlushed(
                f"could not flush a committed write to the disk: {error}"
            ) from error

    @contextmanager
    def _lock_file(self):
        """Hold the exclusive lock on `<database>.lock`; closing the descriptor releases it."""
        descriptor = _open_lock_file(self.path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def close(self):
        """Close the calling thread's connection."""
        self.database.close()
        files = getattr(self._connected_file, "write_files", None)
        if files is not None:
            self._connected_file.write_files = None
            files.close()

    def exists(self):
        """Whether the file is there (a command that reads it must not create it)."""
        return os.path.isfile(self.path)

    def backup_advice(self, target):
        """None: `backup` copies the file itself."""
        return None

    def is_ready(self, schema_version):
        """True when the file can be opened, read and written, at `schema_version`, with room."""
        return self._readiness.is_ready(schema_version)

    def unavailability(self, error):
        """SQLite's own words when `error` is a state of the file or disk, else None."""
        if isinstance(error, DatabaseUnavailable):
            return str(error)
        if isinstance(error, DatabaseError):
            # Peewee keeps the sqlite3 exception it wraps, with SQLite's result code, as `orig`.
            cause = getattr(error, "orig", None) or error.__context__
            code = getattr(cause, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in UNAVAILABLE_CODES:
                return str(cause)
        return None

    def backup(self, target):
        """Copy the database to `target` with SQLite's online backup; returns its integrity check.

        The copy is one consistent snapshot taken while the service goes on reading and writing.
        It is written beside the target, readable by its owner only (it holds webhook secrets),
        and renamed into place only once complete and checked.
        """
        refusal = self.backup_refusal(target)
        if refusal is not None:
            raise ValueError(refusal)
        partial = f"{target}.partial"
        try:
            _remove(partial)
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
            copy = sqlite3.connect(partial)
            try:
                with self.database.connection_context():
                    self.database.connection().backup(copy)
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

    def files(self):
        """The paths the live database consists of: the file, its WAL, shared memory and lock."""
        return [self.path, *(f"{self.path}{suffix}" for suffix in ("-wal", "-shm", ".lock"))]

    def backup_refusal(self, target):
        """Why a backup may not be written to `target`, or None.

        None of the names a backup writes or removes (the target, and its partial copy and that
        copy's journal) may be a file of the live database, whatever it is called: replacing the
        WAL under a running service loses acknowledged writes.
        """
        for path in (str(target), f"{target}.partial", f"{target}.partial-journal"):
            if self._is_live_file(path):
                return f"{path} is a file of the live database at {self.path}"
        return None

    def _is_live_file(self, path):
        """Whether `path` names one of `files()`: by its resolved path, or as a hard link."""
        live = self.files()
        if os.path.realpath(path) in {os.path.realpath(name) for name in live}:
            return True
        try:
            target = os.stat(path)
        except OSError:
            return False
        for name in live:
            try:
                status = os.stat(name)
            except OSError:
                continue
            if (status.st_dev, status.st_ino) == (target.st_dev, target.st_ino):
                return True
        return False

    def check(self):
        """Integrity, schema version, journal mode and counts of the file, opened read-only."""
        if not os.path.isfile(self.path):
            raise FileNotFoundError(self.path)
        uri = f"{Path(self.path).as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True)
        try:
            report = {
                "integrity": [row[0] for row in connection.execute("PRAGMA integrity_check")],
                "schema_version": connection.execute("PRAGMA user_version").fetchone()[0],
                "journal_mode": connection.execute("PRAGMA journal_mode").fetchone()[0],
            }
            if report["schema_version"] >= 1:
                for name, sql in COUNTS:
                    report[name] = connection.execute(sql).fetchone()[0]
        except sqlite3.DatabaseError as error:
            report = {"integrity": [f"unreadable: {error}"], "schema_version": None}
        finally:
            connection.close()
        return report


COUNTS = (
    ("agents", "SELECT count(*) FROM agent"),
    ("active_agents", "SELECT count(*) FROM agent WHERE is_active"),
    ("idempotency_records", "SELECT count(*) FROM idempotency_record"),
)


def _open_lock_file(path):
    """A descriptor of `<path>.lock`, the writers' lock file, made private if it is new. A bare
    descriptor: a Python file object cost a write about 70 µs to build."""
    return os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)


class _WriteFiles:
    """The descriptors one connection's writes use: the lock file's, and that of the file its
    commits are flushed from. Opening and closing them for each write cost it four system calls,
    each of which let the process's other threads take the interpreter.

    The WAL a connection writes to stays the same file while it is open (SQLite deletes it only
    when the last connection closes), so flushing the descriptor opened after its first commit
    flushes every later one too, even once the path names another file.
    """

    def __init__(self, path, connection):
        self.path = path
        self.connection = connection
        self._lock = _open_lock_file(path)
        self._flushed = None

    @contextmanager
    def write_lock(self):
        """Hold the exclusive lock on `<database>.lock`."""
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def flushed(self):
        """The descriptor to fsync for the connection's commits: its WAL's."""
        if self._flushed is None:
            try:
                self._flushed = os.open(f"{self.path}-wal", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                # No WAL: the file's system could not switch it to WAL, and commits went straight
                # into the database file.
                self._flushed = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return self._flushed

    def close(self):
        for descriptor in (self._lock, self._flushed):
            if descriptor is not None:
                os.close(descriptor)
        self._lock = self._flushed = None


# fdatasync skips the file's timestamps, which recovery does not need; macOS has only fsync.
fdatasync = getattr(os, "fdatasync", os.fsync)


# What SQLite says of a rollback, to a savepoint or of the transaction, that follows a failure it
# has already rolled back itself (a full disk does that to the whole transaction).
_FAILED_ROLLBACKS = ("cannot rollback", "no such savepoint")


@contextmanager
def _keeping_the_first_error(transaction):
    """Leave `transaction`, but let a failed rollback never hide the error that caused it.

    When a write fails because the disk is full, SQLite has already rolled back, so what follows
    fails too: a savepoint's "no such savepoint: ...", then "cannot rollback - no transaction is
    active". The error raised is the one they followed.
    """
    try:
        with transaction as txn:
            yield txn
    except DatabaseError as error:
        first = error
        while first is not None and any(words in str(first) for words in _FAILED_ROLLBACKS):
            first = first.__context__
        if first is None or first is error:
            raise
        raise first from None


def _reason(error):
    return (error.strerror or str(error)).rstrip(".").lower()


def _remove(path):
    for name in (path, f"{path}-journal"):
        if os.path.exists(name):
            os.remove(name)
