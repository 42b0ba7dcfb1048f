"""PostgreSQL faults (API.md 12): a server that cannot be reached at start stops each command with
one line; one that stops while the service runs turns requests into 503 database_unavailable,
and the same processes serve again once it is back; `backup` on PostgreSQL copies nothing and
names pg_dump.

These tests stop and start a private cluster of their own (tests/private_cluster.py), never the
shared server. The URLs carry a password, which must appear in no answer and no log line.
"""

import subprocess
import sys
import time
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


def answered_by(server, count, method, path, headers=None, **options):
    """`count` requests, each on a connection of its own so that both workers answer some; the
    answers, each with the pid of the worker that logged it."""
    answers = []
    for number in range(count):
        marker = f"probe-{method}-{number}-{time.monotonic_ns()}"
        answer = requests.request(
            method,
            f"{server.url}{path}",
            headers={**(headers or {}), "X-Request-ID": marker},
            timeout=10,
            **options,
        )
        answers.append((marker, answer))
    pids = {
        record["request_id"]: record["pid"]
        for record in server.log_records()
        if record.get("logger") == "agents.access"
    }
    return [(answer, pids.get(marker)) for marker, answer in answers]


def readiness(server):
    return requests.get(f"{server.url}/readyz", timeout=10).status_code


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_server_stopped_while_serving_is_503_and_the_same_processes_recover(
    cluster, tmp_path, mode
):
    url = with_password(cluster.url("agents")) + "?connect_timeout=2"
    with LiveServer(url, console=True, log_path=tmp_path / "serve.log") as server:
        created = requests.post(f"{server.url}/agents", json=VALID_AGENT, timeout=10)
        assert created.status_code == 201
        agent, etag = created.json()["agent"], created.headers["ETag"]
        assert wait_for(lambda: len(server.worker_pids()) == 2, 15)
        pids = set(server.worker_pids())

        cluster.stop(mode)
        try:
            for answer, _ in answered_by(server, 8, "GET", f"/agents/{agent['id']}"):
                assert_unavailable(answer)
            for answer, _ in answered_by(server, 8, "POST", "/agents", json=VALID_AGENT):
                assert_unavailable(answer)
            assert wait_for(lambda: readiness(server) == 503, 5)
            assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        finally:
            cluster.start()

        assert wait_for(lambda: readiness(server) == 200, 15)
        answers = answered_by(server, 24, "GET", f"/agents/{agent['id']}")
        answers += answered_by(server, 8, "POST", "/agents", json=VALID_AGENT)
        # A thread whose connection the server dropped learns it from its next request, a 503;
        # it connects anew for the one after. So at most one 503 a thread, 2 workers of 2.
        served = [(answer, pid) for answer, pid in answers if answer.status_code != 503]
        assert len(answers) - len(served) <= 4
        assert {answer.status_code for answer, _ in served} <= {200, 201}
        assert {a.headers["ETag"] for a, _ in served if a.status_code == 200} == {etag}
        assert {pid for _, pid in served} == pids
        assert set(server.worker_pids()) == pids  # recovered, not restarted
        assert PASSWORD not in server.log_text()


def test_in_test_mode_a_stopped_server_is_503_though_no_journal_can_be_written(cluster, tmp_path):
    url = cluster.url("agents")
    headers = {"X-Agents-Namespace": "journal-while-stopped"}
    with LiveServer(
        url, console=True, log_path=tmp_path / "serve.log", AGENTS_TEST_MODE="1"
    ) as server:
        assert requests.get(f"{server.url}/agents", headers=headers).status_code == 200

        cluster.stop("fast")
        try:
            for answer, _ in answered_by(server, 8, "GET", "/agents", headers=headers):
                assert_unavailable(answer)
        finally:
            cluster.start()

        assert wait_for(lambda: readiness(server) == 200, 15)
        assert wait_for(
            lambda: requests.get(f"{server.url}/agents", headers=headers).status_code == 200, 5
        )
        journal = requests.get(f"{server.url}/_test/requests", headers=headers).json()
        statuses = [entry["status"] for entry in journal["requests"]]
        assert statuses[0] == 200 and statuses[-1] == 200 and 503 not in statuses
        assert "Traceback" not in server.log_text()


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
