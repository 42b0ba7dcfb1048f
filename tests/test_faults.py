"""Disk and file faults under a real gunicorn: a read-only file, a missing folder, a full disk.

Each fault answers 503 in the contract's error shape and changes nothing; when the fault is
mended the same server serves again, and the file passes SQLite's integrity check.
"""

import os
import signal
import subprocess
import time

import pytest
import requests
from peewee import DatabaseError

import migrations
from storage.sqlite import SqliteEngine
from tests.conftest import VALID_AGENT, check_file, read_only
from tests.live_server import LiveServer

UNAVAILABLE = {
    "error": "The database cannot be opened or written right now; nothing was changed. "
    "Try again later.",
    "code": "database_unavailable",
    "type": "database_unavailable",
}


def call(server, method, path, **kwargs):
    return requests.request(method, f"{server.url}{path}", timeout=30, **kwargs)


def create(server, **overrides):
    response = call(server, "POST", "/agents", json={**VALID_AGENT, **overrides})
    assert response.status_code == 201, response.text
    return response.json()["agent"], response.headers["ETag"]


def assert_unavailable(response):
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    assert response.headers["Retry-After"] == "1"


def assert_not_ready(server):
    response = call(server, "GET", "/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"
    assert call(server, "GET", "/healthz").status_code == 200


def assert_sound(server, expected_agents):
    """Serving again: ready, writable, every expected agent as it was, the file intact."""
    assert call(server, "GET", "/readyz").status_code == 200
    listed = call(server, "GET", "/agents").json()["agents"]
    assert sorted(listed, key=lambda agent: agent["id"]) == sorted(
        expected_agents, key=lambda agent: agent["id"]
    )
    create(server, name="After the fault")
    assert check_file(server.database_path)["integrity"] == ["ok"]


def test_a_read_only_database_file_refuses_writes_with_503_and_keeps_serving_reads(tmp_path):
    with LiveServer(tmp_path / "agents.db") as server:
        agent, etag = create(server, name="Before the fault")
        url = f"/agents/{agent['id']}"

        with read_only(server.database_path):
            assert_unavailable(call(server, "POST", "/agents", json=VALID_AGENT))
            assert_unavailable(
                call(server, "PATCH", url, json={"name": "Changed"}, headers={"If-Match": etag})
            )
            assert_unavailable(call(server, "DELETE", url))
            assert call(server, "GET", url).json() == {"agent": agent}
            assert_not_ready(server)

        assert_sound(server, [agent])
    records = server.log_records()
    assert any(
        "readonly database" in record["message"]
        for record in records
        if record["level"] == "WARNING"
    )


def replace_a_worker(server):
    """Kill one worker; returns the pid of the one the master starts in its place."""
    before = server.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        started = set(server.worker_pids()) - set(before)
        if started:
            return started.pop()
        time.sleep(0.05)
    raise AssertionError("no worker replaced the killed one")


def served_by(server, pid):
    """Whether the worker `pid` has answered a request yet (bounded by the test's own timeout)."""
    return any(
        record.get("pid") == pid and record["logger"] == "agents.access"
        for record in server.log_records()
    )


def test_a_missing_database_folder_answers_503_until_it_is_back(tmp_path):
    folder = tmp_path / "data"
    with LiveServer(folder / "agents.db", log_path=tmp_path / "server.log") as server:
        agent, _ = create(server, name="Before the fault")

        folder.rename(tmp_path / "moved-away")
        try:
            assert_unavailable(call(server, "POST", "/agents", json=VALID_AGENT))
            assert_unavailable(call(server, "GET", f"/agents/{agent['id']}"))
            assert_unavailable(call(server, "GET", "/agents"))
            assert_not_ready(server)
            replacement = replace_a_worker(server)
            deadline = time.monotonic() + 30
            while not served_by(server, replacement):
                assert time.monotonic() < deadline, "the new worker never answered"
                assert_unavailable(call(server, "GET", "/agents"))
                assert not folder.exists(), (
                    "the service must not make an empty database in its place"
                )
        finally:
            (tmp_path / "moved-away").rename(folder)

        assert_sound(server, [agent])


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, where this machine lets the test mount one."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            "cannot mount a small tmpfs here to fill up "
            f"({mounted.stderr.strip() or 'mount failed'})"
        )
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(folder):
    """Write a file until the disk says it is full; returns its path."""
    filler = folder / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_refuses_writes_with_503_and_loses_nothing(small_disk, tmp_path):
    with LiveServer(small_disk / "agents.db", log_path=tmp_path / "server.log") as server:
        acknowledged = [create(server, name=f"Before the fault {number}")[0] for number in range(3)]

        filler = fill(small_disk)
        # Each body is larger than whatever room SQLite's log file has left, so it must grow.
        large = [{"role": "user", "content": "x" * 100_000}] * 5
        responses = [
            call(
                server,
                "POST",
                "/agents",
                json={
                    **VALID_AGENT,
                    "name": f"Large {number}",
                    "llm_config": {**VALID_AGENT["llm_config"], "messages": large},
                },
            )
            for number in range(4)
        ]
        assert_not_ready(server)
        for response in responses:
            if response.status_code == 201:
                acknowledged.append(response.json()["agent"])
            else:
                assert_unavailable(response)
        assert any(response.status_code == 503 for response in responses)
        filler.unlink()

        assert_sound(server, acknowledged)
    warnings = [
        record["message"]
        for record in server.log_records()
        if record["level"] == "WARNING" and record["logger"] == "agents.errors"
    ]
    assert warnings
    assert all("database or disk is full" in message for message in warnings), warnings
    assert not any("cannot rollback" in message for message in warnings), warnings


def test_on_a_full_disk_every_warning_logged_gives_sqlites_own_cause(small_disk, tmp_path):
    """Not "cannot rollback - no transaction is active", which SQLite says of the rollback
    that follows a write it has already rolled back itself."""
    with LiveServer(small_disk / "agents.db", log_path=tmp_path / "server.log") as server:
        stored = [create(server, name=f"Before the fault {number}") for number in range(3)]
        filler = fill(small_disk)
        large = {
            **VALID_AGENT["llm_config"],
            "messages": [{"role": "user", "content": "x" * 100_000}] * 5,
        }
        (first, first_etag), (second, _), (third, _) = stored
        statuses = [
            call(server, "POST", "/agents", json={**VALID_AGENT, "llm_config": large}).status_code,
            call(
                server,
                "POST",
                "/agents",
                json={**VALID_AGENT, "llm_config": large},
                headers={"Idempotency-Key": "full-disk"},
            ).status_code,
            call(
                server,
                "PATCH",
                f"/agents/{first['id']}",
                json={"llm_config": large},
                headers={"If-Match": first_etag},
            ).status_code,
            call(
                server, "PATCH", f"/agents/{second['id']}", json={"llm_config": large}
            ).status_code,
            call(server, "DELETE", f"/agents/{third['id']}").status_code,
        ]
        filler.unlink()

    warnings = [
        record["message"]
        for record in server.log_records()
        if record["level"] == "WARNING" and record["logger"] == "agents.errors"
    ]
    assert statuses.count(503) >= 3, statuses
    assert len(warnings) == statuses.count(503), warnings
    assert all(message.endswith(": database or disk is full") for message in warnings), warnings


def test_a_full_disk_inside_a_nested_write_is_reported_as_full(small_disk):
    """A write nested in another (a savepoint) fails twice more on the way out: its rollback to
    the savepoint, and the outer rollback, both after SQLite has rolled back on its own."""
    engine = SqliteEngine(str(small_disk / "agents.db"))
    engine.prepare(migrations.migrate)
    database = engine.database
    with database.connection_context():
        database.execute_sql("CREATE TABLE scratch (data BLOB)")
        filler = fill(small_disk)
        try:
            with pytest.raises(DatabaseError) as raised:
                with engine.write_transaction(), engine.write_transaction():
                    database.execute_sql("INSERT INTO scratch VALUES (?)", (b"x" * 2_000_000,))
        finally:
            filler.unlink()

    assert engine.unavailability(raised.value) == "database or disk is full"
