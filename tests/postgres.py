"""PostgreSQL for the tests: fresh databases on the shared server, and a private cluster that a
test may stop and start again.

`AGENTS_TEST_POSTGRES_URL` names the shared server (by default the one on 127.0.0.1:5432). When
it cannot be reached, a test that needs it is skipped with the reason, except under `CI=true`,
where a missing server is a failure: CI must never pass by testing nothing.
"""

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVER_URL = os.environ.get("AGENTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BINARIES = Path("/usr/lib/postgresql/15/bin")


def require(reason):
    """Skip the calling test (fail it under CI=true) when `reason` says what is missing."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed under CI: {reason}")
    pytest.skip(reason)


def server_unreachable():
    """Why the shared server cannot be used, or None."""
    if shutil.which("psql") is None:
        return "psql is not installed"
    answer = psql(SERVER_URL, "SELECT 1", check=False)
    if answer.returncode != 0:
        return f"PostgreSQL at {without_password(SERVER_URL)} is unreachable"
    return None


def psql(url, sql, check=True):
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
        env={**os.environ, "PGCONNECT_TIMEOUT": "3"},
    )


def with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def without_password(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


@contextlib.contextmanager
def fresh_database(prefix, server_url=None):
    """A database of its own on the server, dropped afterwards whoever is still connected; its
    URL."""
    server_url = server_url or SERVER_URL
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    psql(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        psql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateCluster:
    """A PostgreSQL cluster of the tests' own in a temporary folder, on a free port of 127.0.0.1,
    so that stopping it disturbs nobody else. Run as the `postgres` user when the tests run as
    root, since initdb refuses root."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="agents-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")

    @staticmethod
    def unavailable():
        """Why no private cluster can be made here, or None."""
        if not (BINARIES / "initdb").exists():
            return f"no PostgreSQL binaries in {BINARIES}"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "runuser is needed to run PostgreSQL's initdb as the postgres user"
        return None

    def url(self, database="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *command):
        return subprocess.run(
            [*self.as_user, *command], capture_output=True, text=True, timeout=60, check=True
        )

    def initialize(self):
        self.run(
            str(BINARIES / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        return self

    def start(self):
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=60"
        )
        self.run(
            str(BINARIES / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "start",
        )  # fmt: skip

    def stop(self, mode="fast"):
        """Stop the server: `fast` ends every session cleanly, `immediate` as a crash would."""
        self.run(str(BINARIES / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self):
        status = subprocess.run(
            [*self.as_user, str(BINARIES / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )
        return status.returncode == 0

    def remove(self):
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def wait_for(condition, seconds, step=0.1):
    """Whether `condition()` turned true within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
