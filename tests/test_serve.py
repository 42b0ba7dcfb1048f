"""`agents-api serve` and gunicorn.conf.py: where it listens, what it logs, how it stops."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from config import exposure_refusal
from testdouble.state import seeded_id
from tests.conftest import VALID_AGENT, check_file
from tests.live_server import ROOT, LiveServer

AGENTS_API = Path(sys.executable).with_name("agents-api")


def run(command, tmp_path, **environment):
    env = {**os.environ, "AGENTS_DATABASE_URL": f"sqlite:///{tmp_path}/agents.db", **environment}
    env.pop("AGENTS_API_KEYS", None)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command, environment",
    [
        ([AGENTS_API, "serve", "--bind", "0.0.0.0:0"], {}),
        ([AGENTS_API, "serve"], {"AGENTS_BIND": "[::]:0"}),
        ([sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", "0.0.0.0:0"], {}),
    ],
    ids=["serve --bind", "serve with AGENTS_BIND", "plain gunicorn"],
)
def test_without_an_api_key_only_loopback_addresses_are_allowed(command, environment, tmp_path):
    result = run(command, tmp_path, **environment)

    assert result.returncode != 0
    assert "Refusing to listen on" in result.stderr
    assert "ALLOW_UNAUTHENTICATED" in result.stderr
    assert "Listening at" not in result.stderr
    assert not (tmp_path / "agents.db").exists()


@pytest.mark.parametrize(
    "address, keys, allowed, refused",
    [
        ("127.0.0.1:8000", (), False, False),
        ("127.8.9.10:8000", (), False, False),
        ("localhost:8000", (), False, False),
        ("[::1]:8000", (), False, False),
        ("unix:/run/agents.sock", (), False, False),
        ("0.0.0.0:8000", (), False, True),
        ("[::]:8000", (), False, True),
        ("192.168.1.20:8000", (), False, True),
        ("agents.example.com:8000", (), False, True),
        ("0.0.0.0:8000", ("a-key",), False, False),
        ("0.0.0.0:8000", (), True, False),
    ],
)
def test_which_addresses_are_refused_without_an_api_key(address, keys, allowed, refused):
    assert (exposure_refusal([address], keys, allowed) is not None) == refused


def test_serve_logs_json_lines_and_answers_with_the_request_id(tmp_path):
    with LiveServer(tmp_path / "agents.db", console=True) as server:
        response = requests.post(
            f"{server.url}/agents",
            json=VALID_AGENT,
            headers={"X-Request-ID": "deploy-check-1"},
            timeout=10,
        )
        generated = requests.get(f"{server.url}/readyz", timeout=10).headers["X-Request-ID"]
        assert server.terminate() == 0

    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "deploy-check-1"
    lines = server.log_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses: nothing but JSON
    access = [
        record
        for record in records
        if record["logger"] == "agents.access" and record["path"] != "/healthz"  # start-up probes
    ]
    assert [
        (line["request_id"], line["method"], line["path"], line["status"]) for line in access
    ] == [
        ("deploy-check-1", "POST", "/agents", 201),
        (generated, "GET", "/readyz", 200),
    ]
    assert any(
        record["logger"] == "gunicorn.error" and "Listening at" in record["message"]
        for record in records
    )


def test_sigterm_lets_a_request_in_flight_finish_before_the_server_exits(tmp_path):
    body = json.dumps({**VALID_AGENT, "name": "Arrived during shutdown"}).encode()
    with LiveServer(tmp_path / "agents.db", console=True, workers=1) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=15) as connection:
            connection.sendall(
                b"POST /agents HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.5)
            server.process.send_signal(15)
            time.sleep(0.5)
            assert server.process.poll() is None, "the server quit with a request in flight"
            connection.sendall(body[10:])
            response = b""
            while chunk := connection.recv(65536):
                response += chunk
        assert server.process.wait(timeout=30) == 0

    assert response.startswith(b"HTTP/1.1 201 ")
    with sqlite3.connect(tmp_path / "agents.db") as database:
        assert database.execute("SELECT count(*) FROM agent").fetchone() == (1,)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/healthz", timeout=2)


def test_a_backup_taken_while_agents_are_being_written_is_whole_and_consistent(tmp_path):
    backup = tmp_path / "backup.db"
    acknowledged = []
    stop = threading.Event()

    def write():
        session = requests.Session()
        while not stop.is_set():
            response = session.post(f"{server.url}/agents", json=VALID_AGENT, timeout=30)
            assert response.status_code == 201
            acknowledged.append(response.json()["agent"]["id"])

    with LiveServer(tmp_path / "agents.db") as server:
        writer = threading.Thread(target=write)
        writer.start()
        try:
            while len(acknowledged) < 20 and writer.is_alive():
                stop.wait(0.01)
            before_backup = list(acknowledged)
            result = run([AGENTS_API, "backup", backup], tmp_path)
            during_backup = len(acknowledged) - len(before_backup)
        finally:
            stop.set()
            writer.join(timeout=60)

    assert result.returncode == 0, result.stderr
    assert "integrity ok" in result.stdout
    assert check_file(backup)["integrity"] == ["ok"]
    with sqlite3.connect(backup) as copy:
        saved = {agent_id for (agent_id,) in copy.execute("SELECT id FROM agent")}
    assert set(before_backup) <= saved <= set(acknowledged)
    print(f"{len(saved)} agents in the backup; {during_backup} written while it ran")


def test_serve_with_the_test_mode_flag_serves_the_test_routes(tmp_path):
    with LiveServer(
        tmp_path / "agents.db", console=True, workers=1, arguments=["--test-mode"]
    ) as server:
        reset = requests.post(f"{server.url}/_test/reset", json={"seed": 7}, timeout=5)
        created = requests.post(f"{server.url}/agents", json={"name": "Seeded"}, timeout=5)

    assert reset.status_code == 200
    assert created.json()["agent"]["id"] == seeded_id(7, 0)


def _can_bind(port):
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_workers_leave_at_once_when_their_master_is_killed(tmp_path):
    """Else an orphaned worker goes on serving and holds the port, and a restart cannot bind it."""
    with LiveServer(tmp_path / "agents.db") as server:
        port = int(server.url.rsplit(":", 1)[1])
        workers = server.worker_pids()
        # What keeps an orphaned gunicorn worker busy the longest: a request still arriving.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(
            b"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        idle = socket.create_connection(("127.0.0.1", port))
        try:
            time.sleep(0.5)
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
            deadline = time.monotonic() + 3
            while not _can_bind(port) and time.monotonic() < deadline:
                time.sleep(0.02)

            assert _can_bind(port), "the port is still held 3 s after the master died"
            assert not [pid for pid in workers if _alive(pid)]
        finally:
            slow.close()
            idle.close()
            server.kill()  # whatever is left of its process group
