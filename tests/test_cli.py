"""The `agents-api` commands: init-db, export, import, backup and check, on real SQLite files."""

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import migrations
from app import create_app
from cli import main
from tests.conftest import VALID_AGENT

RELEASE_1_FILE = Path(__file__).parent / "data" / "agents-schema-v1.db"
RELEASE_1_AGENTS = json.loads(RELEASE_1_FILE.with_suffix(".json").read_text())


def invoke(database, *args, input=None, **environment):
    """Run `agents-api ARGS` on the database file `database`."""
    return CliRunner().invoke(
        main,
        list(map(str, args)),
        input=input,
        prog_name="agents-api",
        env={"AGENTS_DATABASE_URL": f"sqlite:///{database}", **environment},
    )


@pytest.fixture
def populated(tmp_path):
    """A copy of the release 1.0.0 file: agents with secrets, both tool shapes, unicode."""
    path = tmp_path / "source.db"
    shutil.copy(RELEASE_1_FILE, path)
    return path


def export_document(database, *options):
    result = invoke(database, "export", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def served_agents(database):
    """Every agent and its ETag as the API serves them from `database`."""
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}"}).test_client()
    agents = client.get("/agents").get_json()["agents"]
    return [(client.get(f"/agents/{agent['id']}").headers["ETag"], agent) for agent in agents]


def test_init_db_creates_the_database_at_this_releases_schema_version(tmp_path):
    database = tmp_path / "new" / "agents.db"

    result = invoke(database, "init-db")

    assert result.exit_code == 0, result.output
    assert f"schema version {migrations.latest_version()}" in result.stdout
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (
            migrations.latest_version(),
        )
        assert connection.execute("SELECT count(*) FROM agent").fetchone() == (0,)


def test_export_then_import_with_secrets_gives_back_every_agent_byte_for_byte(populated, tmp_path):
    exported = tmp_path / "agents.json"
    target = tmp_path / "target.db"

    assert invoke(populated, "export", exported, "--include-secrets").exit_code == 0
    result = invoke(target, "import", exported)

    assert result.exit_code == 0, result.output
    assert "Imported 5 agent(s)." in result.stdout
    assert served_agents(target) == served_agents(populated)
    again = export_document(target, "--include-secrets")
    assert again["agents"] == json.loads(exported.read_text())["agents"]
    secrets = {
        agent["id"]: agent["webhook_secret"]
        for agent in again["agents"]
        if "webhook_secret" in agent
    }
    assert secrets == RELEASE_1_AGENTS["webhook_secrets"]


def test_an_export_carries_no_secret_unless_asked_for(populated):
    result = invoke(populated, "export")

    assert result.exit_code == 0
    for secret in RELEASE_1_AGENTS["webhook_secrets"].values():
        assert secret not in result.output
    agents = json.loads(result.stdout)["agents"]
    assert [agent["webhook_secret_set"] for agent in agents].count(True) == 2
    assert all("webhook_secret" not in agent for agent in agents)


def test_an_export_file_with_secrets_is_readable_by_its_owner_only(populated, tmp_path):
    exported = tmp_path / "agents.json"
    exported.write_text("an older export, readable by all")
    exported.chmod(0o644)

    assert invoke(populated, "export", exported, "--include-secrets").exit_code == 0

    assert exported.stat().st_mode & 0o077 == 0
    assert json.loads(exported.read_text())["format"] == "agents-api-export"
    assert list(tmp_path.glob("*.partial")) == []


def test_an_export_into_a_missing_folder_fails_and_writes_nothing(populated, tmp_path):
    result = invoke(populated, "export", tmp_path / "nowhere" / "agents.json")

    assert result.exit_code == 1
    assert "Cannot write" in result.stderr and "No such file or directory" in result.stderr


def test_importing_an_export_without_secrets_needs_to_be_asked_for(populated, tmp_path):
    exported = tmp_path / "agents.json"
    target = tmp_path / "target.db"
    invoke(populated, "export", exported)

    refused = invoke(target, "import", exported)
    assert refused.exit_code == 1
    assert "webhook_secret is missing though webhook_secret_set is true" in refused.stderr
    assert "--allow-missing-secrets" in refused.stderr

    allowed = invoke(target, "import", exported, "--allow-missing-secrets")
    assert allowed.exit_code == 0, allowed.output
    assert not any(agent["webhook_secret_set"] for _, agent in served_agents(target))


def test_import_with_replace_swaps_every_stored_agent_for_the_files(populated, tmp_path):
    exported = tmp_path / "agents.json"
    invoke(populated, "export", exported, "--include-secrets")
    target = tmp_path / "target.db"
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{target}"}).test_client()
    client.post("/agents", json=VALID_AGENT)

    result = invoke(target, "import", exported, "--replace")

    assert result.exit_code == 0, result.output
    assert served_agents(target) == served_agents(populated)


def _file_with(document_change):
    def make(document):
        document_change(document)
        return json.dumps(document)

    return make


def _drop_name(document):
    del document["agents"][2]["name"]


def _repeat_id(document):
    document["agents"][3]["id"] = document["agents"][1]["id"]


def _bad_provider(document):
    document["agents"][4]["llm_config"] = {"provider": "nobody", "model": "x"}


def _wrong_format(document):
    document["format"] = "something-else"


def _time_travel(document):
    document["agents"][0]["updated_at"] = "2000-01-01T00:00:00.000Z"


BAD_FILES = {
    "not JSON": lambda document: "{not json",
    "NaN": lambda document: json.dumps(document).replace(
        '"max_duration_seconds": 600', '"max_duration_seconds": NaN', 1
    ),
    "number beyond a double": lambda document: json.dumps(document).replace("600", "1e999", 1),
    "lone surrogate": lambda document: json.dumps(document).replace('"Minimal"', '"\\ud800"'),
    "invalid UTF-8": lambda document: (
        json.dumps(document).encode().replace(b"Minimal", b"Mi\xffnimal")
    ),
    "an agent without a name": _file_with(_drop_name),
    "two agents with one id": _file_with(_repeat_id),
    "an unknown llm provider": _file_with(_bad_provider),
    "another format": _file_with(_wrong_format),
    "updated before created": _file_with(_time_travel),
    "an array": lambda document: "[]",
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_import_file_is_refused_with_a_message_and_changes_nothing(case, populated, tmp_path):
    document = export_document(populated, "--include-secrets")
    content = BAD_FILES[case](document)
    bad_file = tmp_path / "bad.json"
    bad_file.write_bytes(
        content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    )
    target = tmp_path / "target.db"
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{target}"}).test_client()
    client.post("/agents", json=VALID_AGENT)
    before = served_agents(target)

    result = invoke(target, "import", bad_file)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output
    assert served_agents(target) == before


def test_an_import_that_would_overwrite_stored_agents_changes_nothing(populated, tmp_path):
    exported = tmp_path / "agents.json"
    invoke(populated, "export", exported, "--include-secrets")
    before = served_agents(populated)

    result = invoke(populated, "import", exported)

    assert result.exit_code == 1
    assert "5 agent(s) in" in result.stderr and "--replace" in result.stderr
    assert served_agents(populated) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["import", "no-such-file.json"], "No such file or directory"),
        (["import"], "Missing argument"),
        (["backup"], "Missing argument"),
        (["serve", "--workers", "0"], "0 is not in the range"),
        (["serve", "--bind", "0.0.0.0:8000"], "Refusing to listen on 0.0.0.0:8000"),
        (["export", "--secrets"], "No such option"),
        (["vacuum"], "No such command"),
    ],
)
def test_bad_arguments_exit_with_status_2_and_say_why(args, message, tmp_path):
    result = invoke(tmp_path / "agents.db", *args)

    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    "command, setting, message",
    [
        (
            ["check"],
            {"AGENTS_LOG_LEVEL": "loud"},
            "AGENTS_LOG_LEVEL must be one of debug, info, warning",
        ),
        (["check"], {"AGENTS_DATABASE_URL": "mysql://db"}, "AGENTS_DATABASE_URL must look like"),
        (
            ["serve"],
            {"AGENTS_WORKERS": "many"},
            "AGENTS_WORKERS must be a whole number, not 'many'.",
        ),
        (
            ["serve"],
            {"AGENTS_ALLOW_UNAUTHENTICATED": "maybe"},
            "AGENTS_ALLOW_UNAUTHENTICATED must be",
        ),
    ],
)
def test_a_bad_setting_is_named_on_stderr_with_status_1(command, setting, message, tmp_path):
    result = invoke(tmp_path / "agents.db", *command, **setting)

    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["check"], ["export"], ["backup", "copy.db"]])
def test_commands_that_read_the_database_refuse_a_missing_file_and_create_none(command, tmp_path):
    database = tmp_path / "missing" / "agents.db"

    result = invoke(database, *command)

    assert result.exit_code == 1
    assert f"No database at {database}" in result.stderr
    assert not database.parent.exists()


def test_check_reports_integrity_schema_version_and_counts(populated):
    result = invoke(populated, "check")

    assert result.exit_code == 0, result.output
    assert "integrity: ok" in result.stdout
    # check reads the file as it is: a release 1.0.0 file is migrated when it is next opened.
    assert f"schema version: 1 (this release: {migrations.latest_version()})" in result.stdout
    assert "agents: 5" in result.stdout
    assert "active agents: 4" in result.stdout


def test_check_fails_on_a_damaged_file(populated):
    data = bytearray(populated.read_bytes())
    data[4096 * 2 : 4096 * 2 + 512] = b"\xa5" * 512
    populated.write_bytes(bytes(data))

    result = invoke(populated, "check")

    assert result.exit_code == 1
    assert "integrity check failed" in result.stderr


def test_check_fails_on_a_file_that_is_not_a_database(tmp_path):
    database = tmp_path / "agents.db"
    database.write_text("hello, I am a text file" * 100)

    result = invoke(database, "check")

    assert result.exit_code == 1
    assert "integrity: unreadable: file is not a database" in result.stdout
    assert "schema version" not in result.stdout
    assert "integrity check failed" in result.stderr


def test_check_fails_on_a_file_from_a_later_release(populated):
    with sqlite3.connect(populated) as connection:
        connection.execute("PRAGMA user_version = 99")

    result = invoke(populated, "check")

    assert result.exit_code == 1
    assert f"schema version: 99 (this release: {migrations.latest_version()})" in result.stdout
    assert "later release" in result.stderr


def test_backup_writes_a_checked_self_contained_copy(populated, tmp_path):
    target = tmp_path / "backup.db"

    result = invoke(populated, "backup", target)

    assert result.exit_code == 0, result.output
    assert "integrity ok" in result.stdout
    assert list(tmp_path.glob("backup.db*")) == [target]
    with sqlite3.connect(target) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert served_agents(target) == served_agents(populated)


def test_backup_replaces_an_existing_file_only_when_forced_and_never_the_database(
    populated, tmp_path
):
    target = tmp_path / "backup.db"
    target.write_text("yesterday's backup")

    refused = invoke(populated, "backup", target)
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert target.read_text() == "yesterday's backup"

    assert invoke(populated, "backup", target, "--force").exit_code == 0
    assert invoke(target, "check").exit_code == 0

    itself = invoke(populated, "backup", populated, "--force")
    assert itself.exit_code == 1 and "is a file of the live database" in itself.stderr


def digests(paths):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


LIVE_FILE_TARGETS = {
    "the database": lambda live: live,
    "its WAL": lambda live: live.with_name(live.name + "-wal"),
    "its shared memory": lambda live: live.with_name(live.name + "-shm"),
    "its lock file": lambda live: live.with_name(live.name + ".lock"),
    "the database by another spelling": lambda live: (
        live.parent / "." / ".." / live.parent.name / live.name
    ),
}


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["", "forced"])
@pytest.mark.parametrize("target", LIVE_FILE_TARGETS.values(), ids=LIVE_FILE_TARGETS.keys())
def test_backup_refuses_every_file_of_the_live_database_whatever_the_flags(
    populated, tmp_path, target, force
):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{populated}"})
    client = app.test_client()
    assert client.post("/agents", json=VALID_AGENT).status_code == 201  # WAL, SHM and lock exist
    live = [
        populated.with_name(populated.name + suffix) for suffix in ("", "-wal", "-shm", ".lock")
    ]
    before = digests(live)

    result = invoke(populated, "backup", target(populated), *force)

    assert result.exit_code == 1
    assert "is a file of the live database" in result.stderr
    assert digests(live) == before
    assert client.get("/readyz").status_code == 200
    assert client.post("/agents", json=VALID_AGENT).status_code == 201


@pytest.mark.parametrize("link", ["symlink_to", "hardlink_to"])
@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_backup_refuses_a_link_to_a_file_of_the_live_database(populated, tmp_path, link, suffix):
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{populated}"}).test_client()
    assert client.post("/agents", json=VALID_AGENT).status_code == 201
    live_file = populated.with_name(populated.name + suffix)
    alias = tmp_path / "elsewhere" / "backup.db"
    alias.parent.mkdir()
    getattr(alias, link)(live_file)
    before = digests([live_file])

    result = invoke(populated, "backup", alias, "--force")

    assert result.exit_code == 1
    assert "is a file of the live database" in result.stderr
    assert digests([live_file]) == before


def test_backup_refuses_a_target_whose_partial_copy_would_be_the_database(tmp_path):
    """The copy is written to <target>.partial first, and that name is removed afterwards."""
    live = tmp_path / "agents.db.partial"
    assert invoke(live, "init-db").exit_code == 0
    before = digests([live])

    result = invoke(live, "backup", tmp_path / "agents.db")

    assert result.exit_code == 1
    assert "is a file of the live database" in result.stderr
    assert digests([live]) == before


def test_backup_into_a_missing_folder_says_so(populated, tmp_path):
    result = invoke(populated, "backup", tmp_path / "nowhere" / "backup.db")

    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_the_commands_are_registered_on_the_apps_flask_cli_too(client, runner, database_path):
    client.post("/agents", json=VALID_AGENT)

    result = runner.invoke(args=["check"])

    assert result.exit_code == 0, result.output
    assert "integrity: ok" in result.output
    assert result.output == invoke(database_path, "check").stdout


def test_check_through_either_entry_point_creates_and_migrates_nothing(runner, database_path):
    shutil.copy(RELEASE_1_FILE, database_path)
    before = database_path.read_bytes()

    flask_check = runner.invoke(args=["check"])
    console_check = invoke(database_path, "check")

    assert flask_check.output == console_check.stdout
    assert f"schema version: 1 (this release: {migrations.latest_version()})" in flask_check.output
    assert database_path.read_bytes() == before
    # No lock file, so nothing was written through the service's own write path either.
    made = {path.name for path in database_path.parent.iterdir()} - {"agents.db"}
    assert made <= {"agents.db-wal", "agents.db-shm"}


def test_the_installed_console_command_runs(populated):
    command = Path(sys.executable).with_name("agents-api")
    run = subprocess.run(
        [command, "check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AGENTS_DATABASE_URL": f"sqlite:///{populated}"},
    )

    assert run.returncode == 0, run.stderr
    assert "agents: 5" in run.stdout
