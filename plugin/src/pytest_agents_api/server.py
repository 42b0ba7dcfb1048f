"""One `agents-api serve --test-mode` per test run, started by whichever process needs it first.

Under pytest-xdist every worker is a process of its own; they share the run's server through a
folder the controlling process makes: the first worker to need the server starts it under a
lock on that folder and writes where it listens, the others read it, and the controlling
process stops it when the run ends.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

COMMAND_VARIABLE = "AGENTS_API_COMMAND"
RUN_FOLDER_VARIABLE = "AGENTS_API_RUN_FOLDER"
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 60
# The servers this process started, kept so that their exit can be waited for.
_started = {}


class ServiceNotStarted(RuntimeError):
    """`agents-api serve` could not be found or did not start; the message says why."""


def service_command():
    """The `agents-api` command: AGENTS_API_COMMAND, else the one on PATH, else the one beside
    this Python."""
    configured = os.environ.get(COMMAND_VARIABLE)
    if configured:
        return configured.split()
    found = shutil.which("agents-api") or shutil.which(
        "agents-api", path=Path(sys.executable).parent
    )
    if found is None:
        raise ServiceNotStarted(
            "agents-api is not on PATH; install the service (pipx install agents-api) or set "
            f"{COMMAND_VARIABLE} to its command."
        )
    return [found]


@contextmanager
def _locked(folder):
    with open(folder / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def shared_server_url(folder):
    """The URL of the run's server, starting it in `folder` if no process has yet."""
    folder = Path(folder)
    with _locked(folder):
        state_file = folder / "server.json"
        if state_file.exists():
            return json.loads(state_file.read_text())["url"]
        url, process = start_server(folder)
        state_file.write_text(json.dumps({"url": url, "pid": process.pid}))
        return url


def start_server(folder):
    """Start the service in test mode on a free loopback port, its database and log in `folder`."""
    environment = {
        **os.environ,
        "AGENTS_DATABASE_URL": f"sqlite:///{folder / 'agents.db'}",
        "AGENTS_TEST_MODE": "1",
        "AGENTS_WORKERS": os.environ.get("AGENTS_WORKERS", "2"),
    }
    environment.pop("AGENTS_API_KEYS", None)
    environment.pop("AGENTS_FIXTURES", None)
    log_path = folder / "server.log"
    command = [*service_command(), "serve", "--bind", "127.0.0.1:0"]
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(
                command,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            raise ServiceNotStarted(f"Cannot run {command[0]}: {error.strerror}.") from None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match and _healthy(match.group(1)):
            _started[process.pid] = process
            return match.group(1), process
        if process.poll() is not None:
            break
        time.sleep(0.02)
    _started[process.pid] = process
    stop_process(process.pid)
    raise ServiceNotStarted(
        f"{' '.join(command)} did not start:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


def _healthy(url):
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def stop_shared_server(folder):
    """Stop the run's server, if one was started in `folder`, and remove the folder."""
    state_file = Path(folder) / "server.json"
    if state_file.exists():
        stop_process(json.loads(state_file.read_text())["pid"])
    shutil.rmtree(folder, ignore_errors=True)


def stop_process(pid, timeout=15):
    """SIGTERM the server's process group, as a supervisor would; SIGKILL it if it lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    process = _started.pop(pid, None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _finished(pid, process):
            return
        time.sleep(0.02)
    os.killpg(pid, signal.SIGKILL)
    if process:
        process.wait()


def _finished(pid, process):
    if process is not None:
        return process.poll() is not None
    # Started by another process of the run, which reaps it: only whether it still runs is known.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
