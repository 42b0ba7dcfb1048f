"""The factory builds independent apps: nothing at import, nothing global between two apps."""

import sqlite3
import subprocess
import sys
from contextlib import closing

from app import create_app
from tests.conftest import VALID_AGENT
from tests.live_server import ROOT


def names_in(path):
    with closing(sqlite3.connect(path)) as connection:
        return [
            name
            for (name,) in connection.execute(
                "SELECT json_extract(document, '$.name') FROM agent ORDER BY created_at, id"
            )
        ]


def test_two_apps_in_one_process_each_write_their_own_file(tmp_path):
    first = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}).test_client()
    second = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}).test_client()

    for client, name in ((first, "In A"), (second, "In B"), (first, "Also in A")):
        assert client.post("/agents", json={**VALID_AGENT, "name": name}).status_code == 201

    assert names_in(tmp_path / "a.db") == ["In A", "Also in A"]
    assert names_in(tmp_path / "b.db") == ["In B"]
    assert [a["name"] for a in second.get("/agents").get_json()["agents"]] == ["In B"]


def test_building_an_app_creates_no_file_until_a_request_needs_the_database(tmp_path):
    database = tmp_path / "data" / "agents.db"
    client = create_app({"DATABASE_URL": f"sqlite:///{database}"}).test_client()
    assert not database.parent.exists()

    assert client.get("/healthz").status_code == 200
    assert not database.parent.exists()

    assert client.get("/agents").status_code == 200
    assert database.exists()


def test_importing_the_service_touches_nothing(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", "import app, serving, cli, commands, testdouble"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "AGENTS_DATABASE_URL": "sqlite:///x/a.db"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []
