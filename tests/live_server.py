"""A real gunicorn serving the app on 127.0.0.1, for tests that need a live server."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


class LiveServer:
    """Starts `gunicorn 'app:create_app()'` from the repository root, as users do.

    `app` names another application to serve under the same gunicorn configuration.
    """

    def __init__(self, database_path, workers=2, app="app:create_app()", **environment):
        self.database_path = Path(database_path)
        self.workers = workers
        self.app = app
        self.environment = environment
        self.process = None
        self.url = None

    def start(self, timeout=20):
        env = {
            **os.environ,
            "AGENTS_DATABASE_URL": f"sqlite:///{self.database_path}",
            **self.environment,
        }
        self.log_path = self.database_path.with_suffix(".log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", self.app,
             "--bind", "127.0.0.1:0", "--workers", str(self.workers)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text())
            if match and self._healthy(match.group(1)):
                self.url = match.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()}")

    def _healthy(self, url):
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
