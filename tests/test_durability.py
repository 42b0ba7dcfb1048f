"""Every write is on the disk before it is answered, without holding other writers back meanwhile.

A power cut cannot be staged in a test, so these tests watch the flush itself: which file is
fsynced, whether the write is already committed when it is, and whether the write lock is free by
then, so that the next writer can commit while this one waits on the disk.
"""

import contextlib
import errno
import fcntl
import os
import sqlite3

import pytest

import storage.sqlite
from tests.conftest import VALID_AGENT

pytestmark = pytest.mark.sqlite_only(
    "watches SQLite's fsync of its WAL; PostgreSQL's server flushes its own commits"
)


@pytest.fixture
def flushes(database_path, monkeypatch):
    """Each fsync of a write's flush, as seen at that moment: the file, the lock, the agents."""
    seen = []
    fdatasync = storage.sqlite.fdatasync

    def watched(descriptor):
        seen.append(
            {
                "file": os.readlink(f"/proc/self/fd/{descriptor}"),
                "write_lock_free": write_lock_is_free(database_path),
                "committed_names": committed_names(database_path),
            }
        )
        fdatasync(descriptor)

    monkeypatch.setattr(storage.sqlite, "fdatasync", watched)
    return seen


def write_lock_is_free(database_path):
    descriptor = os.open(f"{database_path}.lock", os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def committed_names(database_path):
    """What another connection reads: only what has been committed."""
    with contextlib.closing(sqlite3.connect(database_path)) as connection:
        return sorted(name for (name,) in connection.execute('SELECT search_text FROM "agent"'))


def flush_of(database_path, *names):
    return {
        "file": os.path.realpath(f"{database_path}-wal"),
        "write_lock_free": True,
        "committed_names": sorted(name.casefold() for name in names),
    }


def test_each_write_is_flushed_once_committed_and_once_the_write_lock_is_free(
    client, database_path, flushes
):
    created = client.post("/agents", json={**VALID_AGENT, "business_name": None, "name": "First"})
    assert created.status_code == 201
    assert flushes == [flush_of(database_path, "First")]

    url = f"/agents/{created.get_json()['agent']['id']}"
    assert client.patch(url, json={"name": "Renamed"}).status_code == 200
    assert flushes[1:] == [flush_of(database_path, "Renamed")]

    assert client.delete(url).status_code == 200
    assert flushes[2:] == [flush_of(database_path)]


def test_a_request_that_writes_nothing_flushes_nothing(client, create_agent, flushes):
    agent = create_agent()
    flushes.clear()
    assert client.get(f"/agents/{agent['id']}").status_code == 200
    assert client.patch(f"/agents/{agent['id']}", json={"name": agent["name"]}).status_code == 200
    assert client.post("/agents", json={**VALID_AGENT, "name": ""}).status_code == 400
    assert flushes == []


def test_a_write_the_disk_cannot_flush_is_not_acknowledged(client, monkeypatch, caplog):
    def failing(descriptor):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(storage.sqlite, "fdatasync", failing)
    response = client.post("/agents", json={**VALID_AGENT, "webhook_secret": "never-logged-42"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["code"] == "database_unavailable"
    assert "may not survive a power cut" in response.get_json()["error"]
    assert "Input/output" not in response.get_data(as_text=True)
    assert "never-logged-42" not in caplog.text


def test_test_mode_answers_writes_without_waiting_for_the_disk(double, flushes):
    assert double.post("/agents", json=VALID_AGENT).status_code == 201
    assert flushes == []


def test_a_connections_writes_open_the_lock_file_and_the_wal_once(client, monkeypatch):
    assert client.post("/agents", json={**VALID_AGENT, "name": "First"}).status_code == 201
    opened = []
    real_open = os.open

    def counting(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    for index in range(5):
        assert (
            client.post("/agents", json={**VALID_AGENT, "name": f"Agent {index}"}).status_code
            == 201
        )
    assert [path for path in opened if path.endswith((".lock", "-wal"))] == []


def test_once_the_path_names_another_file_writes_are_flushed_in_that_files_wal(
    client, database_path, flushes
):
    unbranded = {**VALID_AGENT, "business_name": None}
    assert client.post("/agents", json={**unbranded, "name": "Before"}).status_code == 201
    copy = database_path.with_name("copy.db")
    with (
        contextlib.closing(sqlite3.connect(database_path)) as live,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        live.backup(target)
    for suffix in ("-wal", "-shm"):
        database_path.with_name(database_path.name + suffix).unlink()
    os.replace(copy, database_path)

    assert client.post("/agents", json={**unbranded, "name": "After"}).status_code == 201
    assert flushes[-1] == flush_of(database_path, "Before", "After")
    assert deleted_files_open(database_path) == []


def deleted_files_open(database_path):
    """What this process still holds open of files beside the database that are gone."""
    names = []
    for descriptor in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own, closed by now
            names.append(os.readlink(f"/proc/self/fd/{descriptor}"))
    return [
        name
        for name in names
        if name.startswith(str(database_path.parent)) and name.endswith("(deleted)")
    ]
