"""PostgreSQL faults (API.md 12): a server that cannot be reached at start stops each command with
one line; one that stops while the service runs turns requests into 503 database_unavailable,
and the same processes serve again once it is back; `backup` on PostgreSQL copies nothing and
names pg_dump.

These tests stop and start a private cluster of their own (tests/private_cluster.py), never the
shared server. The URLs carry a password, which must appear in no answer and no log line.
"""

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests

from app import create_app
from tests.conftest import VALID_AGENT
from tests.live_server import ROOT, LiveServer
from tests.postgresql import under_ci
from tests.private_cluster import PrivateCluster, execute, free_port, wait_for

PASSWORD = "pg-password-never-shown"
AGENTS_API = str(Path(sys.executable).with_name("agents-api"))


def with_password(url):
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


@pytest.fixture(scope="module")
def cluster():
    missing = PrivateCluster.unavailable()
    if missing is not None:
        if under_ci():
            pytest.fail(f"{missing} (CI is set: the PostgreSQL fault tests must run)")
        pytest.skip(missing)
    cluster = PrivateCluster().initialize()
    try:
        cluster.start()
        execute(cluster.url(), "CREATE DATABASE agents")
        yield cluster
    finally:
        cluster.remove()


def run_command(url, *arguments):
    return subprocess.run(
        [AGENTS_API, *arguments],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AGENTS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "arguments", [("serve", "--bind", "127.0.0.1:0"), ("init-db",), ("check",)]
)
def test_a_server_unreachable_at_start_is_one_line_and_a_failed_exit(arguments):
    port = free_port()  # nothing listens on it
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/agents?connect_timeout=2"

    finished = run_command(url, *arguments)

    assert finished.returncode != 0
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith("Error: ")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in finished.stdout + finished.stderr
    assert PASSWORD not in finished.stdout + finished.stderr


def assert_unavailable(response):
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == body["type"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert PASSWORD not in response.text


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_server_stopped_while_serving_is_503_and_the_same_processes_recover(
    cluster, tmp_path, mode
):
    url = with_password(cluster.url("agents")) + "?connect_timeout=2"
    with LiveServer(url, console=True, log_path=tmp_path / "serve.log") as server:
        session = requests.Session()
        created = session.post(f"{server.url}/agents", json=VALID_AGENT, timeout=10)
        assert created.status_code == 201
        agent, etag = created.json()["agent"], created.headers["ETag"]
        assert wait_for(lambda: len(server.worker_pids()) == 2, 15)
        pids = sorted(server.worker_pids())

        cluster.stop(mode)
        try:
            # Every thread of both workers meets the stopped server, whichever it is.
            for _ in range(8):
                assert_unavailable(session.get(f"{server.url}/agents/{agent['id']}", timeout=10))
                assert_unavailable(
                    session.post(f"{server.url}/agents", json=VALID_AGENT, timeout=10)
                )
            ready = session.get(f"{server.url}/readyz", timeout=10)
            assert ready.status_code == 503
            assert session.get(f"{server.url}/healthz", timeout=10).status_code == 200
        finally:
            cluster.start()

        assert wait_for(
            lambda: session.get(f"{server.url}/readyz", timeout=10).status_code == 200, 15
        )
        for _ in range(8):
            again = session.get(f"{server.url}/agents/{agent['id']}", timeout=10)
            assert again.status_code == 200 and again.headers["ETag"] == etag
            assert (
                session.post(f"{server.url}/agents", json=VALID_AGENT, timeout=10).status_code
                == 201
            )
        assert sorted(server.worker_pids()) == pids  # recovered, not restarted
        assert PASSWORD not in server.log_text()


def test_a_statement_past_the_urls_statement_timeout_is_503_and_the_next_is_served(cluster):
    url = with_password(cluster.url("agents")) + "?options=-c%20statement_timeout%3D300"
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    client = app.test_client()
    try:
        agent = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
        with psycopg.connect(cluster.url("agents")) as holder:
            holder.execute('LOCK TABLE "agent" IN ACCESS EXCLUSIVE MODE')
            read = client.get(f"/agents/{agent['id']}")
            written = client.post("/agents", json=VALID_AGENT)

        for answer in (read, written):
            assert answer.status_code == 503, answer.get_json()
            assert answer.get_json()["code"] == "database_unavailable"
            assert int(answer.headers["Retry-After"]) >= 1
            assert PASSWORD not in answer.get_data(as_text=True)
        assert client.get(f"/agents/{agent['id']}").status_code == 200
        assert client.post("/agents", json=VALID_AGENT).status_code == 201
    finally:
        app.extensions["store"].engine.close()


def test_backup_on_postgresql_writes_nothing_and_names_pg_dump(cluster, tmp_path):
    target = tmp_path / "agents.dump"

    finished = run_command(with_password(cluster.url("agents")), "backup", str(target))

    assert finished.returncode == 1
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), finished.stderr
    assert f"pg_dump --format=custom --file='{target}'" in lines[0]
    assert PASSWORD not in finished.stdout + finished.stderr
    assert not target.exists()


@pytest.fixture(scope="module")
def unprivileged(cluster):
    """A role that may connect to the agents database but create nothing in it."""
    execute(cluster.url(), "CREATE ROLE visitor LOGIN")
    return cluster.url("agents").replace("postgres@", f"visitor:{PASSWORD}@", 1)


@pytest.mark.parametrize("lacking", ["privilege", "schema"])
@pytest.mark.parametrize("command", ["init-db", "serve"])
def test_a_role_or_schema_that_cannot_hold_the_tables_is_one_line_at_start(
    cluster, unprivileged, lacking, command
):
    if lacking == "privilege":
        url = unprivileged.replace("/agents", "/postgres")
    else:
        url = with_password(cluster.url("agents")) + "?options=-c%20search_path%3Dnowhere"
    arguments = ("serve", "--bind", "127.0.0.1:0") if command == "serve" else (command,)

    finished = run_command(url, *arguments)

    assert finished.returncode == 1
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), finished.stderr
    expected = "permission denied" if lacking == "privilege" else "no schema has been selected"
    assert expected in lines[0]
    assert PASSWORD not in finished.stdout + finished.stderr
