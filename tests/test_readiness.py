"""Readiness reports the database as it is now, not as the open connection remembers it."""


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
