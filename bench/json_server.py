"""json-server 0.17, the benchmark's peer: a Node.js REST server over one JSON file.

It is installed from the npm registry into bench/peers/ (package.json and package-lock.json pin
it; node_modules is not kept in git) and serves the same agents as the service, from a file
written before it starts. It runs as one process, where gunicorn runs a master and workers.
"""

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

PEERS = Path(__file__).with_name("peers")
EXECUTABLE = PEERS / "node_modules" / "json-server" / "lib" / "cli" / "bin.js"
LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)")


def install():
    """Install json-server into bench/peers/ from its lock file, unless it is there already."""
    if EXECUTABLE.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed: it installs json-server, the benchmark's peer.")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS, check=True
    )


class JsonServer:
    """`json-server --quiet db.json` on 127.0.0.1, holding `agents` as its "agents" collection."""

    def __init__(self, folder, agents, port):
        self.database_path = Path(folder) / "json-server.json"
        self.database_path.write_text(json.dumps({"agents": agents}))
        self.log_path = self.database_path.with_suffix(".log")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = None

    def start(self, timeout=30):
        node = shutil.which("node")
        if node is None:
            raise SystemExit("node is not installed: it runs json-server, the benchmark's peer.")
        command = [
            node,
            str(EXECUTABLE),
            "--quiet",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            str(self.database_path),
        ]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/agents?_limit=1", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"json-server did not start:\n{self.log_path.read_text()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
