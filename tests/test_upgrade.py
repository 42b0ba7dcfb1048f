"""Upgrades: files written by earlier releases open, migrate and serve their agents unchanged.

tests/data/agents-schema-v1.db was written by release 1.0.0 (schema version 1) through its HTTP
API; agents-schema-v1.json beside it holds what that release answered for each agent, with its
ETag, and the webhook secrets it was sent.
"""

import shutil
import sqlite3

import pytest
import requests

import migrations
import models
from app import create_app
from storage.sqlite import SqliteEngine
from store import Store
from testdouble import state
from tests.live_server import LiveServer
from tests.test_cli import RELEASE_1_AGENTS, RELEASE_1_FILE, invoke


@pytest.fixture
def release_1_copy(tmp_path):
    path = tmp_path / "agents.db"
    shutil.copy(RELEASE_1_FILE, path)
    return path


def test_a_release_1_database_is_served_intact_by_this_release(release_1_copy):
    expected = RELEASE_1_AGENTS["agents"]

    with LiveServer(release_1_copy) as server:
        listed = requests.get(f"{server.url}/agents", timeout=10).json()["agents"]
        assert listed == [entry["agent"] for entry in expected]
        for entry in expected:
            response = requests.get(f"{server.url}/agents/{entry['agent']['id']}", timeout=10)
            assert response.json() == {"agent": entry["agent"]}
            assert response.headers["ETag"] == entry["etag"]

        full = next(
            entry for entry in expected if entry["agent"]["name"] == "Customer Support Agent"
        )
        patched = requests.patch(
            f"{server.url}/agents/{full['agent']['id']}",
            json={"first_message": "Hoi!"},
            headers={"If-Match": full["etag"]},
            timeout=10,
        )
        assert patched.status_code == 200, patched.text
        agent = patched.json()["agent"]
        assert agent["llm_config"]["tools"] == full["agent"]["llm_config"]["tools"]
        assert agent["webhook_secret_set"] is True

    with sqlite3.connect(release_1_copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (
            migrations.latest_version(),
        )
        for table in ("agent", "idempotency_record"):
            etags = [etag for (etag,) in connection.execute(f"SELECT etag FROM {table}")]
            assert etags and not any('"' in etag for etag in etags)
    secrets = invoke(release_1_copy, "export", "--include-secrets")
    for agent_id, secret in RELEASE_1_AGENTS["webhook_secrets"].items():
        assert f'"webhook_secret": "{secret}"' in secrets.stdout and agent_id in secrets.stdout


def test_a_later_migration_upgrades_a_release_1_file_once_and_in_order(release_1_copy, monkeypatch):
    added = ('CREATE TABLE "note" ("id" INTEGER PRIMARY KEY, "text" TEXT NOT NULL)',)
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, added))

    # The second start finds the file current: the new table is not created twice.
    for _ in range(2):
        client = create_app({"DATABASE_URL": f"sqlite:///{release_1_copy}"}).test_client()
        assert client.get("/readyz").status_code == 200

    with sqlite3.connect(release_1_copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (len(migrations.STEPS),)
        assert connection.execute("SELECT count(*) FROM note").fetchone() == (0,)
    assert client.get("/agents").get_json()["agents"] == [
        entry["agent"] for entry in RELEASE_1_AGENTS["agents"]
    ]


def test_the_migrations_build_exactly_the_tables_the_models_describe(tmp_path):
    migrated = SqliteEngine(str(tmp_path / "migrated.db"))
    migrated.prepare(migrations.migrate)
    modelled = Store(SqliteEngine(str(tmp_path / "modelled.db")))
    with modelled.activated(), models.db.connection_context():
        models.db.create_tables((*models.TABLES, *state.TABLES))

    def schema(name):
        with sqlite3.connect(tmp_path / name) as connection:
            return sorted(connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))

    assert schema("migrated.db") == schema("modelled.db")


def test_a_database_from_a_later_release_is_refused_with_a_clear_message(release_1_copy):
    with sqlite3.connect(release_1_copy) as connection:
        connection.execute("PRAGMA user_version = 7")

    known = f"schema version 7; this release knows up to {migrations.latest_version()}"
    client = create_app({"DATABASE_URL": f"sqlite:///{release_1_copy}"}).test_client()
    assert client.get("/readyz").status_code == 503
    with pytest.raises(migrations.SchemaTooNew, match=known):
        client.application.extensions["store"].prepare()
    result = invoke(release_1_copy, "init-db")
    assert result.exit_code == 1
    assert "schema version 7" in result.stderr
