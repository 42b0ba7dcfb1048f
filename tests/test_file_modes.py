"""Every file that can hold a webhook secret is readable and writable by its owner only."""

import os
import stat

import pytest

from app import create_app
from tests.conftest import VALID_AGENT
from tests.live_server import LiveServer
from tests.test_cli import invoke

SECRET = "whsec-Correct-Horse-Battery-9731"


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask 022", "umask 002", "umask 000"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode_of(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def database_files(database):
    return [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm", ".lock")]


def test_the_database_its_wal_shm_lock_backups_and_secret_exports_are_owner_only(tmp_path, umask):
    database = tmp_path / "data" / "agents.db"
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}"}).test_client()
    assert client.post("/agents", json={**VALID_AGENT, "webhook_secret": SECRET}).status_code == 201
    assert invoke(database, "backup", tmp_path / "backup.db").exit_code == 0
    export = invoke(database, "export", tmp_path / "export.json", "--include-secrets")
    assert export.exit_code == 0, export.output

    files = [*database_files(database), tmp_path / "backup.db", tmp_path / "export.json"]

    assert {path.name: mode_of(path) for path in files} == {path.name: "0o600" for path in files}


def test_a_database_made_readable_by_others_is_made_owner_only_again(tmp_path, umask):
    database = tmp_path / "agents.db"
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}"}).test_client()
    assert client.post("/agents", json={**VALID_AGENT, "webhook_secret": SECRET}).status_code == 201
    for path in database_files(database)[:3]:
        path.chmod(0o644)

    fresh = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}"}).test_client()
    assert fresh.get("/agents").status_code == 200

    assert [mode_of(path) for path in database_files(database)[:3]] == ["0o600"] * 3


def test_a_served_database_is_owner_only_from_its_first_write(tmp_path):
    previous = os.umask(0o022)
    try:
        with LiveServer(tmp_path / "agents.db") as server:
            import requests

            created = requests.post(
                f"{server.url}/agents", json={**VALID_AGENT, "webhook_secret": SECRET}, timeout=30
            )
            assert created.status_code == 201
            modes = {path.name: mode_of(path) for path in database_files(server.database_path)}
    finally:
        os.umask(previous)

    assert modes == {name: "0o600" for name in modes}
