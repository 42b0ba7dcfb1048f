"""Export and import a batch at a time: the same file as a whole-document export, all or none."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import export_file
import maintenance
from app import create_app
from tests.test_cli import RELEASE_1_FILE, invoke, served_agents


@pytest.fixture
def populated(tmp_path):
    """A copy of the release 1.0.0 file: five agents with secrets, both tool shapes, unicode."""
    path = tmp_path / "source.db"
    shutil.copy(RELEASE_1_FILE, path)
    return path


@pytest.fixture
def small_steps(monkeypatch):
    """Batches of two agents and reads of a few characters, so every boundary is crossed."""
    monkeypatch.setattr(maintenance, "IMPORT_BATCH", 2)
    monkeypatch.setattr(export_file, "CHUNK_CHARS", 7)


def exported_text(database, *options):
    result = invoke(database, "export", *options)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("options", [(), ("--include-secrets",)])
def test_an_export_is_byte_for_byte_the_whole_document_dumped_at_once(populated, options):
    text = exported_text(populated, *options)
    document = json.loads(text)
    assert len(document["agents"]) == 5
    assert text == json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def test_an_export_to_a_file_is_the_same_text_as_on_standard_output(populated, tmp_path):
    path = tmp_path / "agents.json"
    assert invoke(populated, "export", path, "--include-secrets").exit_code == 0
    written = json.loads(path.read_text(encoding="utf-8"))
    shown = json.loads(exported_text(populated, "--include-secrets"))
    assert {**written, "exported_at": None} == {**shown, "exported_at": None}


def test_an_export_of_no_agents_is_the_whole_document_dumped_at_once(tmp_path):
    database = tmp_path / "empty.db"
    assert invoke(database, "init-db").exit_code == 0
    text = exported_text(database)
    assert text == json.dumps(json.loads(text), ensure_ascii=False, indent=1) + "\n"
    assert json.loads(text)["agents"] == []


def test_an_import_in_batches_gives_back_every_agent(populated, tmp_path, small_steps):
    exported = tmp_path / "agents.json"
    exported.write_text(exported_text(populated, "--include-secrets"), encoding="utf-8")
    target = tmp_path / "target.db"

    result = invoke(target, "import", exported)

    assert result.exit_code == 0, result.output
    assert "Imported 5 agent(s)." in result.stdout
    assert served_agents(target) == served_agents(populated)
    assert (
        exported_text(target, "--include-secrets").split("\n")[5:]
        == (exported.read_text(encoding="utf-8").split("\n")[5:])
    )


def test_an_envelope_written_after_the_agents_is_read_as_well(populated, tmp_path, small_steps):
    document = json.loads(exported_text(populated, "--include-secrets"))
    reordered = {"agents": document.pop("agents"), **document}
    path = tmp_path / "reordered.json"
    path.write_text(json.dumps(reordered), encoding="utf-8")
    target = tmp_path / "target.db"
    assert invoke(target, "import", path).exit_code == 0
    assert served_agents(target) == served_agents(populated)

    reordered["format"] = "something-else"
    path.write_text(json.dumps(reordered), encoding="utf-8")
    refused = invoke(tmp_path / "other.db", "import", path)
    assert refused.exit_code == 1
    assert "format must be one of: agents-api-export." in refused.stderr


def bad_import(populated, tmp_path, change):
    """Import the populated file's export, changed by `change`, into a file with one agent."""
    document = json.loads(exported_text(populated, "--include-secrets"))
    change(document["agents"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    target = tmp_path / "target.db"
    assert invoke(tmp_path / "seed.db", "init-db").exit_code == 0
    agent = json.loads(exported_text(populated, "--include-secrets"))["agents"][0]
    agent["id"] = "0b7e8f7e-1f7e-4e4e-8e8e-000000000001"
    seed = {**document, "agents": [agent]}
    (tmp_path / "seed.json").write_text(json.dumps(seed), encoding="utf-8")
    assert invoke(target, "import", tmp_path / "seed.json").exit_code == 0
    before = served_agents(target)
    result = invoke(target, "import", path)
    assert result.exit_code == 1
    assert served_agents(target) == before
    return result.stderr


def test_a_bad_agent_in_a_later_batch_imports_nothing(populated, tmp_path, small_steps):
    def drop_a_name(agents):
        del agents[3]["name"]

    stderr = bad_import(populated, tmp_path, drop_a_name)
    assert "nothing was imported" in stderr
    assert "agents.3.name is required." in stderr


def test_an_id_repeated_in_a_later_batch_imports_nothing(populated, tmp_path, small_steps):
    def repeat_an_id(agents):
        agents[4]["id"] = agents[1]["id"]

    stderr = bad_import(populated, tmp_path, repeat_an_id)
    assert "agents.4.id must be unique; agents.1 has it too." in stderr


def test_an_id_already_stored_in_a_later_batch_imports_nothing(populated, tmp_path, small_steps):
    def take_the_stored_id(agents):
        agents[4]["id"] = "0b7e8f7e-1f7e-4e4e-8e8e-000000000001"

    stderr = bad_import(populated, tmp_path, take_the_stored_id)
    assert "1 agent(s) in" in stderr
    assert "(first: 0b7e8f7e-1f7e-4e4e-8e8e-000000000001)" in stderr


def test_errors_of_every_batch_are_told_with_the_files_indexes(populated, tmp_path, small_steps):
    def break_two(agents):
        agents[0]["max_duration_seconds"] = "long"
        agents[4]["is_active"] = "yes"

    stderr = bad_import(populated, tmp_path, break_two)
    assert "agents.0.max_duration_seconds" in stderr
    assert "agents.4.is_active" in stderr


def exported_file(populated, tmp_path):
    exported = tmp_path / "agents.json"
    exported.write_text(exported_text(populated, "--include-secrets"), encoding="utf-8")
    return exported


def many_agents_file(populated, path, count):
    """An export of `count` agents: the populated file's, over and over with their own ids,
    names and timestamps."""
    document = json.loads(exported_text(populated, "--include-secrets"))
    originals = document["agents"]
    agents = []
    for number in range(count):
        stamp = f"2026-01-01T{number // 3_600_000:02d}:{number // 60_000 % 60:02d}:"
        stamp += f"{number // 1000 % 60:02d}.{number % 1000:03d}Z"
        agent = {**originals[number % len(originals)], "name": f"Crowd member {number}"}
        agent.update(id=str(uuid.UUID(int=number + 1, version=4)), created_at=stamp)
        agents.append({**agent, "updated_at": stamp})
    path.write_text(json.dumps({**document, "agents": agents}), encoding="utf-8")
    return path


@pytest.mark.sqlite_only("about the file an import killed mid-way leaves")
def test_an_import_killed_mid_way_leaves_the_file_checked_and_searched_as_before(
    populated, tmp_path
):
    target = tmp_path / "target.db"
    assert invoke(target, "import", exported_file(populated, tmp_path)).exit_code == 0
    before = served_agents(target)
    many = many_agents_file(populated, tmp_path / "many.json", 6000)
    importing = subprocess.Popen(
        [Path(sys.executable).with_name("agents-api"), "import", many],
        env={**os.environ, "AGENTS_DATABASE_URL": f"sqlite:///{target}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Killed once it has written agents, inside its transaction and without the index trigger.
    wal = Path(f"{target}-wal")
    deadline = time.monotonic() + 60
    while not (wal.exists() and wal.stat().st_size > 4_000_000) and time.monotonic() < deadline:
        assert importing.poll() is None, "the import ended before it could be killed"
        time.sleep(0.01)
    importing.send_signal(signal.SIGKILL)
    assert importing.wait() == -signal.SIGKILL

    checked = invoke(target, "check")
    assert checked.exit_code == 0, checked.output
    assert "integrity: ok" in checked.stdout
    assert served_agents(target) == before
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{target}"}).test_client()
    assert client.get("/agents?q=crowd member").get_json()["agents"] == []
    name = before[0][1]["name"]
    assert [agent["name"] for agent in client.get(f"/agents?q={name}").get_json()["agents"]] == [
        name
    ]
    created = client.post("/agents", json={"name": "Crowd member after the crash"})
    assert [agent["id"] for agent in client.get("/agents?q=crowd member").get_json()["agents"]] == [
        created.get_json()["agent"]["id"]
    ]
