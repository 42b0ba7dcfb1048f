"""End to end through a real gunicorn process with two workers."""

import sqlite3

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


def test_agents_written_through_gunicorn_are_on_disk_in_sqlite(live_server):
    created = requests.post(f"{live_server.url}/agents", json={"name": "On disk"}, timeout=5)
    agent_id = created.json()["agent"]["id"]

    with sqlite3.connect(live_server.database_path) as connection:
        row = connection.execute("SELECT id FROM agent WHERE id = ?", (agent_id,)).fetchone()
    assert row == (agent_id,)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
