"""Whether a SQLite file can serve now: what /readyz asks of the SQLite engine.

Readiness is asked often (every probe of every load balancer), so it never takes the write lock
that writers queue on. What a write needs of the files and the disk is looked at on every call
(a few stat calls); whether SQLite opens the file at the expected schema version is asked of it
at most once a second per process, and again at once when the file is replaced or changes.
"""

import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

# Below this much free space on the database's disk the service reports itself not ready.
MIN_FREE_BYTES = 1024 * 1024
# How long, in seconds, readiness trusts that SQLite opened an unchanged file at the expected
# version; and how long the probe waits on a lock to read it (in WAL mode reads rarely wait).
PROBE_TTL = 1.0
PROBE_TIMEOUT_SECONDS = 2.0


class ReadinessProbe:
    """Answers whether the SQLite file at `path` can be opened, read and written now."""

    def __init__(self, path):
        self.path = path
        # (content identity, when it expires, whether SQLite answered) of the last probe.
        self._last_probe = None
        self._probing = threading.Lock()

    def is_ready(self, schema_version):
        """True when the file can be opened, read and written, at `schema_version`, with room.

        The probe opens a connection of its own, so no thread's kept connection is touched.
        """
        if not (self._is_writable() and self._has_room()):
            return False
        identity = self._content_identity()
        if identity is None:
            return False
        cached = self._last_probe
        if cached is None or cached[0] != identity or time.monotonic() >= cached[1]:
            with self._probing:  # one probe at a time; those waiting take its answer
                cached = self._last_probe
                if cached is None or cached[0] != identity or time.monotonic() >= cached[1]:
                    answers = self._answers_at(schema_version)
                    cached = self._last_probe = (identity, time.monotonic() + PROBE_TTL, answers)
        return cached[2]

    def _is_writable(self):
        """Whether the file, and the WAL, index and lock file a write needs, can be written.

        SQLite makes the -wal and -shm files when they are missing, so then the folder must take
        new files. (The file's own permission is asked, not found out by writing: a write may be
        given a read-write descriptor that outlived it; see SqliteEngine.open.)
        """
        if not os.access(self.path, os.W_OK):
            return False
        folder = os.path.dirname(self.path)
        for suffix in ("-wal", "-shm", ".lock"):
            name = f"{self.path}{suffix}"
            if not os.access(name, os.W_OK) and (
                os.path.exists(name) or not os.access(folder, os.W_OK | os.X_OK)
            ):
                return False
        return True

    def _has_room(self):
        # Nothing is written to find out, so a full disk is asked about directly.
        return shutil.disk_usage(os.path.dirname(self.path)).free >= MIN_FREE_BYTES

    def _content_identity(self):
        """The file's identity and last change, so a cached probe never outlives what it saw."""
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return (
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            status.st_ctime_ns,
        )

    def _answers_at(self, schema_version):
        """Whether SQLite opens and reads the file, and finds it at `schema_version`."""
        uri = f"{Path(self.path).as_uri()}?mode=rw"
        try:
            probe = sqlite3.connect(uri, uri=True, timeout=PROBE_TIMEOUT_SECONDS)
            try:
                version = probe.execute("PRAGMA user_version").fetchone()[0]
            finally:
                probe.close()
        except sqlite3.Error:
            return False
        return version == schema_version
