"""A PostgreSQL cluster of the tests' own, which a test may stop and start again under a running
service without disturbing the shared server (tests/postgresql.py)."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BINARIES = Path("/usr/lib/postgresql/15/bin")


def execute(url, sql):
    """Run one statement outside any transaction (CREATE DATABASE, CREATE ROLE)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)


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
