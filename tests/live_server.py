"""A real gunicorn serving the app on 127.0.0.1, for tests that need a live server."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


class LiveServer:
    """Starts `gunicorn 'app:create_app()'` from the repository root, as users do.

    With `console=True` it starts `agents-api serve` instead; `app` names another application to
    serve under the same gunicorn configuration; `arguments` go to either command. The server
    runs in its own process group, so `kill()` can take down the master and every worker at
    once, as a crash would.

    `database` is a SQLite file's path or any database URL (`postgresql://...`); a URL needs a
    `log_path`, since there is no file to put the log beside.
    """

    def __init__(
        self,
        database,
        workers=2,
        console=False,
        log_path=None,
        arguments=(),
        app="app:create_app()",
        **environment,
    ):
        if "://" in str(database):
            self.database_url = str(database)
            self.database_path = None
        else:
            self.database_path = Path(database)
            self.database_url = f"sqlite:///{self.database_path}"
        self.workers = workers
        self.console = console
        self.arguments = list(arguments)
        self.app = app
        self.environment = environment
        if log_path is None and self.database_path is None:
            raise ValueError("a server on a database URL needs a log_path")
        self.log_path = Path(log_path or self.database_path.with_suffix(".log"))
        self.process = None
        self.url = None

    def command(self):
        if self.console:
            return [
                str(Path(sys.executable).with_name("agents-api")),
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                str(self.workers),
                *self.arguments,
            ]
        return [
            sys.executable,
            "-m",
            "gunicorn",
            self.app,
            "--bind",
            "127.0.0.1:0",
            "--workers",
            str(self.workers),
            *self.arguments,
        ]

    def start(self, timeout=30):
        env = {
            **os.environ,
            "AGENTS_DATABASE_URL": self.database_url,
            **self.environment,
        }
        with open(self.log_path, "a") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_text()[offset:])
            if match and self._healthy(match.group(1)):
                self.url = match.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log_text()[offset:]}")

    def _healthy(self, url):
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_records(self):
        """Every JSON line the server has written, parsed."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def worker_pids(self):
        """The pids of the master's worker processes."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def terminate(self, timeout=30):
        """SIGTERM, as a supervisor stops the service; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self):
        """SIGKILL the master and every worker at once."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
