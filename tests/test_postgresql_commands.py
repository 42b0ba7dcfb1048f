"""The operator's commands and an upgrade on PostgreSQL: init-db, check, export, import, and a
backup that names pg_dump instead of pretending."""

import json

import psycopg
import pytest
from click.testing import CliRunner

import migrations
from app import create_app
from cli import main
from storage import open_engine
from tests.conftest import VALID_AGENT
from tests.test_cli import RELEASE_1_AGENTS
from tests.test_upgrade import with_new_fields

pytestmark = pytest.mark.postgresql_only("what the commands do on PostgreSQL")


def invoke(url, *args):
    return CliRunner().invoke(
        main, list(map(str, args)), prog_name="agents-api", env={"AGENTS_DATABASE_URL": url}
    )


def with_password(url):
    """The same server reached with a password in the URL (trust auth ignores it)."""
    return url.replace("postgresql://root@", "postgresql://root:pg-s3cret@", 1)


def test_init_db_migrates_and_names_the_database_without_its_password(database_url):
    result = invoke(with_password(database_url), "init-db")

    assert result.exit_code == 0, result.output
    assert f"(schema version {migrations.latest_version()})" in result.stdout
    assert "pg-s3cret" not in result.output


def test_check_reports_the_schema_version_and_counts(client, database_url):
    client.post("/agents", json=VALID_AGENT)
    client.post("/agents", json={**VALID_AGENT, "is_active": False})

    result = invoke(with_password(database_url), "check")

    assert result.exit_code == 0, result.output
    latest = migrations.latest_version()
    assert f"schema version: {latest} (this release: {latest})" in result.stdout
    assert "agents: 2" in result.stdout and "active agents: 1" in result.stdout
    assert "journal mode" not in result.stdout
    assert "pg-s3cret" not in result.output


def test_check_on_a_server_out_of_reach_fails_and_says_so():
    result = invoke("postgresql://root:pg-s3cret@127.0.0.1:1/test?connect_timeout=2", "check")

    assert result.exit_code == 1
    assert "cannot read the database at postgresql://root@127.0.0.1:1/test" in result.stderr
    assert "pg-s3cret" not in result.output and "Traceback" not in result.output


def test_export_and_import_carry_every_agent_between_the_engines(client, tmp_path):
    for name in ("One", "Two", "Three"):
        client.post(
            "/agents", json={**VALID_AGENT, "name": name, "webhook_secret": f"whsec-{name}"}
        )
    exported = tmp_path / "agents.json"
    assert (
        invoke(
            client.application.config["DATABASE_URL"], "export", exported, "--include-secrets"
        ).exit_code
        == 0
    )

    sqlite_url = f"sqlite:///{tmp_path / 'agents.db'}"
    assert invoke(sqlite_url, "import", exported).exit_code == 0
    again = tmp_path / "again.json"
    assert invoke(sqlite_url, "export", again, "--include-secrets").exit_code == 0

    assert json.loads(again.read_text())["agents"] == json.loads(exported.read_text())["agents"]
    listed = client.get("/agents").get_json()["agents"]
    served = create_app({"TESTING": True, "DATABASE_URL": sqlite_url}).test_client()
    assert served.get("/agents").get_json()["agents"] == listed


def test_import_into_postgresql_is_all_or_nothing(client, database_url, tmp_path):
    stored = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    exported = tmp_path / "agents.json"
    assert invoke(database_url, "export", exported, "--include-secrets").exit_code == 0

    refused = invoke(database_url, "import", exported)
    replaced = invoke(database_url, "import", exported, "--replace")

    assert refused.exit_code == 1 and "already stored" in refused.stderr
    assert replaced.exit_code == 0, replaced.output
    assert client.get("/agents").get_json()["agents"] == [stored]


def test_backup_names_pg_dump_and_backs_nothing_up(database_url, tmp_path):
    invoke(database_url, "init-db")
    target = tmp_path / "agents.dump"

    result = invoke(with_password(database_url), "backup", target)

    assert result.exit_code == 1
    assert "pg_dump --format=custom" in result.stderr and "nothing was backed up" in result.stderr
    assert str(target) in result.stderr
    assert "pg-s3cret" not in result.output
    assert not target.exists()


def test_a_release_1_1_database_upgrades_with_its_agents(database_url, monkeypatch):
    with monkeypatch.context() as release_1_1:
        release_1_1.setattr(migrations, "STEPS", migrations.STEPS[:3])
        engine = open_engine(database_url)
        engine.prepare(migrations.migrate)
        engine.close()
    entry = RELEASE_1_AGENTS["agents"][0]
    agent = entry["agent"]
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            'INSERT INTO "agent" VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s)',
            (
                "default",
                agent["id"],
                agent["created_at"],
                agent["updated_at"],
                agent["is_active"],
                agent["name"].casefold(),
                json.dumps(agent, separators=(",", ":")),
                entry["etag"],
            ),
        )

    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    served = app.test_client().get(f"/agents/{agent['id']}").get_json()
    app.extensions["store"].engine.close()

    assert served == {"agent": with_new_fields(agent)}
    with psycopg.connect(database_url) as connection:
        version = connection.execute('SELECT "version" FROM "schema_version"').fetchone()
    assert version == (migrations.latest_version(),)


def test_an_id_repeated_after_a_refused_import_names_the_files_own_index(
    client, database_url, tmp_path, monkeypatch
):
    """A refused import rolls back, but its inserts took identity numbers that are never
    handed out again: the next import still names its agents by their place in its own file."""
    import maintenance

    monkeypatch.setattr(maintenance, "IMPORT_BATCH", 2)
    for n in range(5):
        assert (
            client.post("/agents", json={**VALID_AGENT, "name": f"Imported {n}"}).status_code == 201
        )
    exported = tmp_path / "agents.json"
    assert invoke(database_url, "export", exported, "--include-secrets").exit_code == 0
    document = json.loads(exported.read_text())
    for agent in document["agents"]:
        assert client.delete(f"/agents/{agent['id']}").status_code == 200
    agents = document["agents"]
    refused_late = tmp_path / "refused-late.json"
    refused_late.write_text(json.dumps({**document, "agents": [*agents[:4], {}]}))
    repeated = tmp_path / "repeated.json"
    twice = [*agents[:4], {**agents[4], "id": agents[1]["id"]}]
    repeated.write_text(json.dumps({**document, "agents": twice}))

    first = invoke(database_url, "import", refused_late)
    second = invoke(database_url, "import", repeated)

    assert first.exit_code == 1 and "agents.4.name is required." in first.stderr
    assert second.exit_code == 1
    assert "agents.4.id must be unique; agents.1 has it too." in second.stderr
