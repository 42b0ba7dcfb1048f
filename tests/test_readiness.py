"""Readiness reports the database as it is now, not as the open connection remembers it."""

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import VALID_AGENT, answered_within, holding_the_write_lock, read_only


def test_ready_while_the_database_can_be_read(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_not_ready_once_the_database_file_is_gone(client, create_agent, database_path):
    create_agent()  # the worker's connection is open from here on
    for suffix in ("", "-wal", "-shm"):
        database_path.with_name(database_path.name + suffix).unlink(missing_ok=True)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["code"] == "not_ready"


def test_not_ready_while_the_database_file_is_read_only(client, create_agent, database_path):
    create_agent()  # the worker's connection is open from here on
    # SQLite keeps a closed connection's descriptor open while another one holds locks on the
    # file, and hands it to the next connection that asks: the probe must not write through it.
    assert client.get("/readyz").status_code == 200
    with read_only(database_path):
        response = client.get("/readyz")
        refused = client.post("/agents", json=VALID_AGENT)

    assert response.status_code == 503
    assert response.get_json()["code"] == "not_ready"
    assert refused.status_code == 503
    assert client.get("/readyz").status_code == 200


def test_readiness_answers_at_once_while_a_writer_holds_the_write_lock(
    client, create_agent, database_path
):
    """A flood of probes must not queue on the lock every writer needs, nor wait behind one."""
    create_agent()
    with holding_the_write_lock(database_path):
        responses = [answered_within(2, lambda: client.get("/readyz")) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]


def test_readiness_notices_a_database_replaced_by_another_schema_at_once(
    client, create_agent, database_path, tmp_path
):
    create_agent()
    assert client.get("/readyz").status_code == 200
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as connection:
        connection.execute("PRAGMA user_version = 99")
    for suffix in ("-wal", "-shm"):
        database_path.with_name(database_path.name + suffix).unlink(missing_ok=True)
    os.replace(other, database_path)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["code"] == "not_ready"


@pytest.mark.sqlite_only("the folder must take SQLite's WAL file")
def test_not_ready_while_the_folder_cannot_take_the_wal_it_needs(app, client, create_agent):
    """Once the last connection closes, SQLite removes the WAL and must make it again to write."""
    create_agent()
    app.extensions["store"].engine.database.close()
    database_path = Path(app.extensions["store"].engine.path)
    assert not database_path.with_name(database_path.name + "-wal").exists()

    with read_only(database_path.parent):
        refused = client.get("/readyz")
    assert refused.status_code == 503
    assert client.get("/readyz").status_code == 200
