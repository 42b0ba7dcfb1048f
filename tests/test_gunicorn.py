"""End to end through a real gunicorn process with two workers."""

import sqlite3
from pathlib import Path

import pytest
import requests

from tests.conftest import VALID_AGENT


def test_an_agent_created_through_gunicorn_is_served_by_every_worker(live_server):
    created = requests.post(f"{live_server.url}/agents", json=VALID_AGENT, timeout=5)
    assert created.status_code == 201
    agent = created.json()["agent"]
    assert created.headers["Location"] == f"/agents/{agent['id']}"

    # Many reads spread over both workers; every one sees the committed agent.
    for _ in range(20):
        fetched = requests.get(f"{live_server.url}/agents/{agent['id']}", timeout=5)
        assert fetched.json() == {"agent": agent}


@pytest.mark.sqlite_only("reads the SQLite file under the server")
def test_agents_written_through_gunicorn_are_on_disk_in_sqlite(live_server):
    created = requests.post(f"{live_server.url}/agents", json={"name": "On disk"}, timeout=5)
    agent_id = created.json()["agent"]["id"]

    with sqlite3.connect(live_server.database_path) as connection:
        row = connection.execute("SELECT id FROM agent WHERE id = ?", (agent_id,)).fetchone()
    assert row == (agent_id,)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_every_worker_serves_the_latest_version_after_an_update(live_server):
    created = requests.post(f"{live_server.url}/agents", json=VALID_AGENT, timeout=5).json()
    agent_id = created["agent"]["id"]
    # Both workers hold their connection open from earlier requests; each must still read
    # what the other committed, at once.
    for round_number in range(10):
        name = f"Renamed {round_number}"
        patched = requests.patch(
            f"{live_server.url}/agents/{agent_id}", json={"name": name}, timeout=5
        )
        assert patched.status_code == 200
        for _ in range(4):
            fetched = requests.get(f"{live_server.url}/agents/{agent_id}", timeout=5)
            assert fetched.json()["agent"]["name"] == name
            assert fetched.headers["ETag"] == patched.headers["ETag"]


def test_a_server_loads_the_driver_of_its_own_database_only(live_server):
    """PostgreSQL's driver (with asyncio, libpq and OpenSSL) costs a process about 8 MB, which a
    server on SQLite leaves out: neither its master nor a worker that has written maps it."""
    for _ in range(4):
        assert requests.post(f"{live_server.url}/agents", json=VALID_AGENT, timeout=5).ok
    on_postgresql = live_server.database_path is None
    processes = [live_server.process.pid, *live_server.worker_pids()]
    assert len(processes) == 3
    for pid in processes:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert ("libpq" in maps) == on_postgresql, pid
