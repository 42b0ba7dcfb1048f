"""Upgrades: files written by earlier releases open, migrate and serve their agents.

tests/data/agents-schema-v1.db was written by release 1.0.0 (schema version 1) through its HTTP
API; agents-schema-v1.json beside it holds what that release answered for each agent, with its
ETag, and the webhook secrets it was sent. This release serves each of them as that release did,
plus the fields added since at their defaults (so under a new ETag), as a new agent shows them.
"""

import json
import shutil
import sqlite3

import pytest
import requests

import migrations
import models
import ratelimit
from app import create_app
from storage.sqlite import PAGE_SIZE as SQLITE_PAGE_SIZE
from storage.sqlite import SqliteEngine
from store import Store
from testdouble import state
from tests.conftest import LLM_UNSET, STT_UNSET, TTS_UNSET
from tests.live_server import LiveServer
from tests.test_cli import RELEASE_1_AGENTS, RELEASE_1_FILE, invoke


def with_new_fields(agent):
    """A release-1 agent as this release shows it: every field added since, unset."""
    agent = {**agent, "silence_timeout_seconds": None, "gdpr_mode": False}
    for name, unset in (
        ("stt_config", STT_UNSET),
        ("llm_config", LLM_UNSET),
        ("tts_config", TTS_UNSET),
    ):
        if agent[name] is not None:
            agent[name] = {**agent[name], **unset}
    for tool in (agent["llm_config"] or {}).get("tools", ()):
        if "server" in tool:
            tool["server"] = {**tool["server"], "secret_set": False}
    plan = (agent["analysis_plan"] or {}).get("structured_data_plan")
    if plan is not None:
        agent["analysis_plan"] = {
            **agent["analysis_plan"],
            "structured_data_plan": {**plan, "template_id": None},
        }
    return agent


@pytest.fixture
def release_1_copy(tmp_path):
    path = tmp_path / "agents.db"
    shutil.copy(RELEASE_1_FILE, path)
    return path


def test_a_release_1_database_is_served_intact_by_this_release(release_1_copy):
    expected = RELEASE_1_AGENTS["agents"]

    with LiveServer(release_1_copy) as server:
        listed = requests.get(f"{server.url}/agents", timeout=10).json()["agents"]
        assert listed == [with_new_fields(entry["agent"]) for entry in expected]
        etags = {}
        for entry in expected:
            response = requests.get(f"{server.url}/agents/{entry['agent']['id']}", timeout=10)
            assert response.json() == {"agent": with_new_fields(entry["agent"])}
            assert response.headers["ETag"] != entry["etag"]
            etags[entry["agent"]["id"]] = response.headers["ETag"]
        # In the order a new agent shows its fields.
        fresh = requests.post(f"{server.url}/agents", json={"name": "New"}, timeout=10).json()
        assert all(list(agent) == list(fresh["agent"]) for agent in listed)
        # A patch that changes nothing finds nothing changed.
        for agent in listed:
            unchanged = requests.patch(f"{server.url}/agents/{agent['id']}", json={}, timeout=10)
            assert unchanged.json()["agent"]["updated_at"] == agent["updated_at"]
            assert unchanged.headers["ETag"] == etags[agent["id"]]

        full = next(
            entry for entry in expected if entry["agent"]["name"] == "Customer Support Agent"
        )
        patched = requests.patch(
            f"{server.url}/agents/{full['agent']['id']}",
            json={"first_message": "Hoi!"},
            headers={"If-Match": etags[full["agent"]["id"]]},
            timeout=10,
        )
        assert patched.status_code == 200, patched.text
        agent = patched.json()["agent"]
        assert agent["llm_config"]["tools"] == with_new_fields(full["agent"])["llm_config"]["tools"]
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
    added = migrations.Step(
        sqlite=('CREATE TABLE "note" ("id" INTEGER PRIMARY KEY, "text" TEXT NOT NULL)',),
        postgresql=('CREATE TABLE "note" ("id" BIGINT PRIMARY KEY, "text" TEXT NOT NULL)',),
    )
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, added))

    # The second start finds the file current: the new table is not created twice.
    for _ in range(2):
        client = create_app({"DATABASE_URL": f"sqlite:///{release_1_copy}"}).test_client()
        assert client.get("/readyz").status_code == 200

    with sqlite3.connect(release_1_copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (len(migrations.STEPS),)
        assert connection.execute("SELECT count(*) FROM note").fetchone() == (0,)
    assert client.get("/agents").get_json()["agents"] == [
        with_new_fields(entry["agent"]) for entry in RELEASE_1_AGENTS["agents"]
    ]


def test_the_migrations_build_exactly_the_tables_the_models_describe(tmp_path):
    migrated = SqliteEngine(str(tmp_path / "migrated.db"))
    migrated.prepare(migrations.migrate)
    modelled = Store(SqliteEngine(str(tmp_path / "modelled.db")))
    with modelled.activated(), models.db.connection_context():
        models.db.create_tables((*models.TABLES, *state.TABLES, ratelimit.RateLimitWindow))
        # The search index is SQLite's own, beyond what a model can describe.
        for statement in (*migrations.SEARCH_INDEX_TABLES, *migrations.PENDING_SEARCHES):
            models.db.execute_sql(statement)

    def schema(name):
        with sqlite3.connect(tmp_path / name) as connection:
            return sorted(connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))

    assert schema("migrated.db") == schema("modelled.db")


def test_a_database_from_a_later_release_is_refused_with_a_clear_message(release_1_copy):
    later = migrations.latest_version() + 1
    with sqlite3.connect(release_1_copy) as connection:
        connection.execute(f"PRAGMA user_version = {later}")

    known = f"schema version {later}; this release knows up to {migrations.latest_version()}"
    client = create_app({"DATABASE_URL": f"sqlite:///{release_1_copy}"}).test_client()
    assert client.get("/readyz").status_code == 503
    with pytest.raises(migrations.SchemaTooNew, match=known):
        client.application.extensions["store"].prepare()
    result = invoke(release_1_copy, "init-db")
    assert result.exit_code == 1
    assert f"schema version {later}" in result.stderr


def test_a_snapshot_saved_before_the_platform_fields_restores_with_them(
    release_1_copy, monkeypatch
):
    # The file as release 1.1.0 left it (schema version 3), with a test-mode snapshot of its
    # agents written as that release stored them.
    with monkeypatch.context() as patched:
        patched.setattr(migrations, "STEPS", migrations.STEPS[:3])
        SqliteEngine(str(release_1_copy)).prepare(migrations.migrate)
    with sqlite3.connect(release_1_copy) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute("SELECT * FROM agent")]
        state = {"agent": rows, "idempotency_record": [], "frozen_clock": [], "id_sequence": []}
        connection.execute(
            "INSERT INTO snapshot VALUES ('default', 'before', ?, '2026-11-27T10:00:00.000Z')",
            (json.dumps(state),),
        )

    client = create_app({"DATABASE_URL": f"sqlite:///{release_1_copy}", "TEST_MODE": True})
    client = client.test_client()
    client.delete(f"/agents/{rows[0]['id']}")
    assert client.post("/_test/snapshots/before/restore").status_code == 200

    restored = client.get("/agents").get_json()["agents"]
    assert restored == [with_new_fields(entry["agent"]) for entry in RELEASE_1_AGENTS["agents"]]
    for agent in restored:
        unchanged = client.patch(f"/agents/{agent['id']}", json={})
        assert unchanged.get_json()["agent"]["updated_at"] == agent["updated_at"]


def test_a_release_1_file_is_rebuilt_with_larger_pages_and_keeps_every_agent(release_1_copy):
    with sqlite3.connect(release_1_copy) as connection:
        assert connection.execute("PRAGMA page_size").fetchone() == (4096,)

    client = create_app({"DATABASE_URL": f"sqlite:///{release_1_copy}"}).test_client()
    listed = client.get("/agents").get_json()["agents"]
    searched = client.get("/agents?q=" + listed[0]["name"][:5]).get_json()["agents"]

    assert [agent["id"] for agent in listed] == [
        entry["agent"]["id"] for entry in RELEASE_1_AGENTS["agents"]
    ]
    assert listed[0] in searched
    with sqlite3.connect(release_1_copy) as connection:
        assert connection.execute("PRAGMA page_size").fetchone() == (SQLITE_PAGE_SIZE,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_new_file_starts_with_larger_pages(tmp_path):
    database = tmp_path / "new.db"
    assert (
        create_app({"DATABASE_URL": f"sqlite:///{database}"})
        .test_client()
        .get("/agents")
        .status_code
        == 200
    )
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA page_size").fetchone() == (SQLITE_PAGE_SIZE,)
