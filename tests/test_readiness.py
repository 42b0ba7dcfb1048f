"""Readiness reports the database as it is now, not as the open connection remembers it."""

from tests.conftest import VALID_AGENT, read_only


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
