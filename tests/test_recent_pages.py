"""A list page asked again is answered from what the thread kept (routes/fast_reads.py
RecentPages) only while nothing it reads has changed: whoever wrote, from whichever connection,
thread or process, the next page shows it."""

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests

import listing
from routes.fast_reads import PAGE_BYTES_KEPT, PAGES_KEPT, RecentPages
from tests.conftest import VALID_AGENT

AGENTS_API = str(Path(sys.executable).with_name("agents-api"))


@pytest.fixture
def page_reads(monkeypatch):
    """How many times a page of agents has been read from the database."""
    reads = []
    read_documents = listing.documents

    def counted(*arguments):
        reads.append(arguments)
        return read_documents(*arguments)

    monkeypatch.setattr(listing, "documents", counted)
    return reads


def names(response):
    """The names on a page, from a test client's response or a requests one."""
    assert response.status_code == 200, response.text
    return [agent["name"] for agent in json.loads(response.text)["agents"]]


@pytest.mark.sqlite_only("PostgreSQL keeps no pages: other hosts write without telling")
def test_a_page_asked_again_is_not_read_again(client, create_agent, page_reads):
    create_agent(name="Kept")

    first = client.get("/agents?limit=10")
    again = client.get("/agents?limit=10")

    assert len(page_reads) == 1
    assert again.data == first.data
    assert without_request_id(again) == without_request_id(first)
    assert len(again.headers.getlist("X-Request-ID")) == 1


def without_request_id(response):
    return [header for header in response.headers.to_wsgi_list() if header[0] != "X-Request-ID"]


@pytest.mark.postgresql_only
def test_on_postgresql_every_page_is_read(client, create_agent, page_reads):
    create_agent(name="Read")

    client.get("/agents?limit=10")
    client.get("/agents?limit=10")

    assert len(page_reads) == 2


def test_a_kept_page_shows_the_connections_own_writes(client, create_agent):
    first = create_agent(name="First")
    assert names(client.get("/agents")) == ["First"]

    second = create_agent(name="Second")
    assert names(client.get("/agents")) == ["Second", "First"]

    client.patch(f"/agents/{first['id']}", json={"name": "Renamed"})
    assert names(client.get("/agents")) == ["Second", "Renamed"]

    client.delete(f"/agents/{second['id']}")
    assert names(client.get("/agents")) == ["Renamed"]


def test_a_kept_page_shows_what_another_connection_wrote(make_app):
    reader, writer = make_app().test_client(), make_app().test_client()
    assert names(reader.get("/agents?is_active=true")) == []

    created = writer.post("/agents", json={**VALID_AGENT, "name": "Elsewhere"}).get_json()
    assert names(reader.get("/agents?is_active=true")) == ["Elsewhere"]

    writer.patch(f"/agents/{created['agent']['id']}", json={"is_active": False})
    assert names(reader.get("/agents?is_active=true")) == []


def test_a_kept_page_shows_what_another_thread_wrote(app, client):
    assert names(client.get("/agents?q=threaded")) == []

    def write():
        app.test_client().post("/agents", json={**VALID_AGENT, "name": "Threaded"})
        app.extensions["store"].engine.close()  # the thread's own connection

    writer = threading.Thread(target=write)
    writer.start()
    writer.join()

    assert names(client.get("/agents?q=threaded")) == ["Threaded"]


@pytest.mark.sqlite_only("the other process writes the file itself")
def test_a_kept_page_shows_what_another_process_wrote(client, create_agent, database_path):
    create_agent(name="Replaced")
    assert names(client.get("/agents")) == ["Replaced"]

    subprocess.run(
        [AGENTS_API, "import", "--replace", "-"],
        input=b'{"format": "agents-api-export", "version": 1, "agents": []}',
        env={**os.environ, "AGENTS_DATABASE_URL": f"sqlite:///{database_path}"},
        check=True,
        capture_output=True,
    )

    assert names(client.get("/agents")) == []


def test_pages_read_by_either_worker_show_every_acknowledged_write(live_server):
    """Two workers of two threads each, and several keep-alive connections to them: each may
    have kept the page, and each must show every write answered before it is asked."""
    readers = [requests.Session() for _ in range(6)]
    token = uuid.uuid4().hex[:12]
    search = f"{live_server.url}/agents?q={token}&limit=100"

    def seen_by_every_reader():
        return [names(reader.get(search)) for reader in readers]

    assert seen_by_every_reader() == [[]] * len(readers)
    agent = requests.post(
        f"{live_server.url}/agents", json={**VALID_AGENT, "name": f"Found {token}"}
    ).json()["agent"]
    for _ in range(3):
        assert seen_by_every_reader() == [[f"Found {token}"]] * len(readers)

    requests.patch(f"{live_server.url}/agents/{agent['id']}", json={"name": f"Kept {token}"})
    assert seen_by_every_reader() == [[f"Kept {token}"]] * len(readers)

    requests.delete(f"{live_server.url}/agents/{agent['id']}")
    assert seen_by_every_reader() == [[]] * len(readers)


class _UnchangingEngine:
    def change_stamp(self):
        return "unchanged"


def test_a_thread_keeps_a_bounded_number_and_size_of_pages():
    pages = RecentPages(_UnchangingEngine())
    small = ("200 OK", [], b"x" * 1000)
    for number in range(PAGES_KEPT * 2):
        pages.answer(("agents", f"limit={number}"), lambda: small)
    large = ("200 OK", [], b"x" * (PAGE_BYTES_KEPT // 3))
    for number in range(4):
        pages.answer(("agents", f"q={number}"), lambda: large)
    too_large = ("200 OK", [], b"x" * (PAGE_BYTES_KEPT + 1))
    pages.answer(("agents", "all"), lambda: too_large)

    kept = pages._local.pages
    assert len(kept) <= PAGES_KEPT
    assert sum(len(body) for _, _, body in kept.values()) <= PAGE_BYTES_KEPT
    assert ("agents", "all") not in kept
    assert ("agents", "q=3") in kept
