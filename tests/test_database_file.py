"""Workers keep their connection open, yet always serve the file that the path names now.

One worker each: /healthz answering proves only that one worker is up, and a second one
still starting would open (and create) the database at the path whatever the test does to it.
"""

import contextlib
import os
import sqlite3

import requests

from tests.conftest import VALID_AGENT, read_only
from tests.live_server import LiveServer


def create(url, name):
    response = requests.post(f"{url}/agents", json={**VALID_AGENT, "name": name}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["agent"]


def status_of(url, agent):
    return requests.get(f"{url}/agents/{agent['id']}", timeout=30).status_code


def copy_database(source, target):
    with (
        contextlib.closing(sqlite3.connect(source)) as original,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        original.backup(copy)


def test_a_database_file_replaced_while_serving_is_the_one_served_next(tmp_path):
    path = tmp_path / "agents.db"
    with LiveServer(path, workers=1) as server:
        kept = create(server.url, "In the backup")
        copy_database(path, tmp_path / "backup.db")
        dropped = create(server.url, "Only in the replaced file")
        # The worker holds its connection to the old file from here on.
        assert status_of(server.url, dropped) == 200

        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        os.replace(tmp_path / "backup.db", path)

        assert all(status_of(server.url, dropped) == 404 for _ in range(6))
        assert all(status_of(server.url, kept) == 200 for _ in range(6))
        create(server.url, "Written to the restored file")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        names = {
            row[0]
            for row in connection.execute("SELECT json_extract(document, '$.name') FROM agent")
        }
    assert names == {"In the backup", "Written to the restored file"}


def test_a_moved_database_folder_is_not_served_and_is_served_again_once_back(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    with LiveServer(folder / "agents.db", workers=1) as server:
        agent = create(server.url, "Before the move")
        assert all(status_of(server.url, agent) == 200 for _ in range(6))

        folder.rename(tmp_path / "moved-away")
        try:
            assert all(status_of(server.url, agent) != 200 for _ in range(6))
            assert not folder.exists()
        finally:
            (tmp_path / "moved-away").rename(folder)

        assert all(status_of(server.url, agent) == 200 for _ in range(6))
        create(server.url, "After the move")


def test_writes_refused_by_a_read_only_file_succeed_again_once_it_is_writable(tmp_path):
    with LiveServer(tmp_path / "agents.db", workers=1) as server:
        agent = create(server.url, "Before the fault")
        with read_only(server.database_path):
            for _ in range(6):
                refused = requests.post(f"{server.url}/agents", json=VALID_AGENT, timeout=30)
                assert refused.status_code != 201
            assert status_of(server.url, agent) == 200

        # The worker's connection was opened again while the file was read-only.
        for number in range(6):
            create(server.url, f"After the fault {number}")


def test_a_read_only_file_refuses_writes_though_other_connections_keep_it_open(
    client, create_agent, database_path
):
    # Another connection of the process holds the file: SQLite then keeps the worker's closed
    # read-write descriptor open, and offers it to the worker's next connection.
    create_agent()
    with contextlib.closing(sqlite3.connect(database_path)) as other:
        other.execute('SELECT count(*) FROM "agent"').fetchone()
        with read_only(database_path):
            refused = client.post("/agents", json={**VALID_AGENT, "name": "Never stored"})
        assert other.execute('SELECT count(*) FROM "agent"').fetchone() == (1,)
    assert refused.status_code == 503
    assert refused.get_json()["code"] == "database_unavailable"


def test_write_access_is_asked_again_only_once_the_file_changes(
    client, create_agent, database_path, monkeypatch
):
    agent = create_agent()
    asked = []
    real_access = os.access

    def counting(path, mode, **options):
        asked.append(os.fspath(path))
        return real_access(path, mode, **options)

    monkeypatch.setattr(os, "access", counting)
    for _ in range(5):
        assert client.get(f"/agents/{agent['id']}").status_code == 200
    assert str(database_path) not in asked

    with read_only(database_path):
        refused = client.post("/agents", json={**VALID_AGENT, "name": "Never stored"})
    assert refused.status_code == 503
    assert str(database_path) in asked
