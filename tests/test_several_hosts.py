"""Several hosts on one PostgreSQL database (API.md 12): two `agents-api serve` masters, each with
its own workers, share everything the service keeps, exactly as one host's workers do.

The two test-mode hosts and their schema are shared by the module; each test keeps to a
namespace of its own. The rate-limit and kill -9 tests start pairs of their own.
"""

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import VALID_AGENT
from tests.live_server import LiveServer
from tests.postgresql import fresh_schema
from tests.private_cluster import wait_for
from tests.simulated_calls import agent_fields
from tests.test_crash import write_until_stopped
from tests.test_rate_limits import fresh_window

FROZEN = "2025-12-13T10:00:00.000Z"


class Host:
    """Requests to one host, in one namespace."""

    def __init__(self, server, namespace):
        self.url = server.url
        self.session = requests.Session()
        self.session.headers["X-Agents-Namespace"] = namespace

    def request(self, method, path, **options):
        return self.session.request(method, f"{self.url}{path}", timeout=30, **options)

    def get(self, path, **options):
        return self.request("GET", path, **options)

    def post(self, path, **options):
        return self.request("POST", path, **options)

    def patch(self, path, **options):
        return self.request("PATCH", path, **options)

    def put(self, path, **options):
        return self.request("PUT", path, **options)

    def delete(self, path, **options):
        return self.request("DELETE", path, **options)

    def create(self, **fields):
        response = self.post("/agents", json={**VALID_AGENT, **fields})
        assert response.status_code == 201, response.text
        return response.json()["agent"]


def start_pair(database_url, folder, **environment):
    """Two `agents-api serve` masters of two workers on one database, started at the same time,
    so that both prepare the database at once."""
    servers = [
        LiveServer(database_url, console=True, log_path=folder / f"host-{name}.log", **environment)
        for name in "ab"
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        started = [pool.submit(server.start, 60) for server in servers]
    try:
        for future in started:
            future.result()
    except Exception:
        for server in servers:
            server.stop()
        raise
    return servers


@pytest.fixture(scope="module")
def servers(postgresql_server, tmp_path_factory):
    """Two test-mode hosts on a schema of the module's own."""
    with fresh_schema(postgresql_server) as url:
        pair = start_pair(url, tmp_path_factory.mktemp("hosts"), AGENTS_TEST_MODE="1")
        yield pair
        for server in pair:
            server.stop()


@pytest.fixture
def hosts(servers):
    """Both hosts, in a namespace of the test's own."""
    namespace = f"hosts-{secrets.token_hex(6)}"
    return [Host(server, namespace) for server in servers]


def test_an_agent_written_through_one_host_is_read_through_the_other_with_its_etag(hosts):
    a, b = hosts
    created = a.post("/agents", json=VALID_AGENT)
    agent = created.json()["agent"]

    read = b.get(f"/agents/{agent['id']}")
    assert read.status_code == 200
    assert read.json()["agent"] == agent and read.headers["ETag"] == created.headers["ETag"]
    assert (
        b.get(f"/agents/{agent['id']}", headers={"If-None-Match": read.headers["ETag"]}).status_code
        == 304
    )

    patched = b.patch(
        f"/agents/{agent['id']}",
        json={"first_message": "Through the other host"},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert patched.status_code == 200
    again = a.get(f"/agents/{agent['id']}")
    assert again.json()["agent"] == patched.json()["agent"]
    assert again.headers["ETag"] == patched.headers["ETag"] != created.headers["ETag"]
    stale = a.patch(
        f"/agents/{agent['id']}",
        json={"name": "Stale"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert stale.status_code == 412
    assert [listed["id"] for listed in b.get("/agents").json()["agents"]] == [agent["id"]]

    assert a.delete(f"/agents/{agent['id']}").status_code == 200
    assert b.get(f"/agents/{agent['id']}").status_code == 404


def increment_until_done(host, agent_id, increments, successes):
    """Read, add one to max_duration_seconds, PATCH with If-Match; on 412 read afresh."""
    done = 0
    while done < increments:
        read = host.get(f"/agents/{agent_id}")
        assert read.status_code == 200, read.text
        value = read.json()["agent"]["max_duration_seconds"]
        written = host.patch(
            f"/agents/{agent_id}",
            json={"max_duration_seconds": value + 1},
            headers={"If-Match": read.headers["ETag"]},
        )
        assert written.status_code in (200, 412), written.text
        if written.status_code == 200:
            done += 1
            successes.append(value + 1)


def test_read_modify_write_loops_through_both_hosts_lose_no_update(servers, hosts):
    namespace = hosts[0].session.headers["X-Agents-Namespace"]
    agent = hosts[0].create(max_duration_seconds=100)
    loops, increments = 6, 12
    successes = []
    with ThreadPoolExecutor(max_workers=loops) as pool:
        running = [
            pool.submit(
                increment_until_done,
                Host(servers[n % 2], namespace),
                agent["id"],
                increments,
                successes,
            )
            for n in range(loops)
        ]
        for future in running:
            future.result()

    final = hosts[1].get(f"/agents/{agent['id']}").json()["agent"]["max_duration_seconds"]
    assert final == 100 + loops * increments
    # Each successful write took the value one step further: no two saw the same one.
    assert sorted(successes) == list(range(101, final + 1))


def test_forty_concurrent_posts_with_one_idempotency_key_across_both_hosts_make_one_agent(
    servers, hosts
):
    namespace = hosts[0].session.headers["X-Agents-Namespace"]
    clients = 40
    barrier = threading.Barrier(clients)
    key = {"Idempotency-Key": f"key-{secrets.token_hex(8)}"}

    def post(number):
        host = Host(servers[number % 2], namespace)
        barrier.wait(timeout=30)
        return host.post("/agents", json=VALID_AGENT, headers=key)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(post, range(clients)))

    assert {answer.status_code for answer in answers} == {201}, [a.text for a in answers]
    assert len({answer.json()["agent"]["id"] for answer in answers}) == 1
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    for host in hosts:
        assert len(host.get("/agents").json()["agents"]) == 1


def test_a_fault_set_on_one_host_answers_exactly_its_times_across_both(hosts):
    a, b = hosts
    agent = a.create()
    fault = {"method": "GET", "path": "/agents/{id}", "status": 503, "times": 2, "retry_after": 1}
    assert a.post("/_test/faults", json=fault).status_code == 201

    statuses = [host.get(f"/agents/{agent['id']}").status_code for host in (b, a, b, a, b)]

    assert sorted(statuses) == [200, 200, 200, 503, 503]
    assert statuses[:2] == [503, 503]
    assert b.get("/_test/faults").json()["faults"] == []


def test_the_journal_holds_the_requests_of_both_hosts(hosts):
    a, b = hosts
    a.post("/agents", json={**VALID_AGENT, "name": "Through a"})
    b.post("/agents", json={**VALID_AGENT, "name": "Through b"})
    b.post("/agents", json={"name": ""})

    for host in hosts:
        journal = host.get("/_test/requests", params={"method": "POST"}).json()["requests"]
        assert [(entry["body"]["name"], entry["status"]) for entry in journal] == [
            ("Through a", 201),
            ("Through b", 201),
            ("", 400),
        ]
    assert a.delete("/_test/requests").status_code == 200
    assert b.get("/_test/requests").json()["requests"] == []


def test_a_clock_frozen_through_one_host_stamps_the_writes_of_the_other(hosts):
    a, b = hosts
    assert a.put("/_test/clock", json={"now": FROZEN}).status_code == 200

    stamped = b.create()
    assert stamped["created_at"] == stamped["updated_at"] == FROZEN

    assert b.delete("/_test/clock").status_code == 200
    assert a.create()["created_at"] != FROZEN


def test_namespaces_keep_apart_across_hosts(servers, hosts):
    a, b = hosts
    agent = a.create()
    elsewhere = Host(servers[1], f"other-{secrets.token_hex(6)}")

    assert elsewhere.get(f"/agents/{agent['id']}").status_code == 404
    assert elsewhere.get("/agents").json()["agents"] == []
    assert b.get(f"/agents/{agent['id']}").status_code == 200


def test_a_seed_set_through_one_host_gives_the_same_ids_through_both(servers, hosts):
    a, b = hosts
    assert a.post("/_test/reset", json={"seed": 42}).status_code == 200
    alternating = [host.create()["id"] for host in (a, b, a, b)]

    alone = Host(servers[1], f"seeded-{secrets.token_hex(6)}")
    assert alone.post("/_test/reset", json={"seed": 42}).status_code == 200
    assert [alone.create()["id"] for _ in range(4)] == alternating


def test_a_snapshot_saved_through_one_host_is_restored_through_the_other(hosts):
    a, b = hosts
    agent = a.create()
    etag = a.get(f"/agents/{agent['id']}").headers["ETag"]
    assert a.post("/_test/snapshots", json={"name": "before"}).json()["snapshot"]["agents"] == 1

    assert b.delete(f"/agents/{agent['id']}").status_code == 200
    b.create(name="After the snapshot")
    assert b.post("/_test/snapshots/before/restore").status_code == 200

    restored = a.get(f"/agents/{agent['id']}")
    assert restored.json()["agent"] == agent and restored.headers["ETag"] == etag
    assert [listed["id"] for listed in a.get("/agents").json()["agents"]] == [agent["id"]]


def test_a_simulated_call_and_its_deliveries_are_seen_through_either_host(hosts, webhook_receiver):
    a, b = hosts
    agent = a.create(**agent_fields(webhook_receiver))

    started = b.post("/_test/calls", json={"assistant_id": agent["id"]})
    assert started.status_code == 201, started.text
    call = started.json()["call"]

    assert a.get(f"/_test/calls/{call['id']}").json()["call"] == call
    assert [listed["id"] for listed in a.get("/_test/calls").json()["calls"]] == [call["id"]]
    deliveries = a.get("/_test/deliveries", params={"call_id": call["id"]}).json()["deliveries"]
    assert [delivery["event"] for delivery in deliveries] == webhook_receiver.events()
    assert webhook_receiver.events()[0] == "assistant-request"


def test_a_rate_limit_counts_the_requests_of_both_hosts(postgresql_server, tmp_path):
    with fresh_schema(postgresql_server) as url:
        pair = start_pair(url, tmp_path, AGENTS_RATE_LIMIT="6/minute")
        try:
            fresh_window(60)
            answers = [requests.get(f"{pair[n % 2].url}/agents", timeout=30) for n in range(8)]
        finally:
            for server in pair:
                server.stop()

    assert [answer.status_code for answer in answers] == [200] * 6 + [429, 429]
    assert [int(answer.headers["X-RateLimit-Remaining"]) for answer in answers] == [
        5, 4, 3, 2, 1, 0, 0, 0
    ]  # fmt: skip
    assert all(answer.headers["Retry-After"] for answer in answers[6:])


def test_kill_9_of_one_host_under_writes_loses_nothing_either_host_acknowledged(
    postgresql_server, tmp_path
):
    with fresh_schema(postgresql_server) as url:
        survivor, victim = pair = start_pair(url, tmp_path)
        try:
            acknowledged, lock, stop = {}, threading.Lock(), threading.Event()
            writers = [
                threading.Thread(
                    target=write_until_stopped,
                    args=(server.url, 1, n, acknowledged, lock, stop),
                )
                for n, server in enumerate(pair * 2)
            ]
            for writer in writers:
                writer.start()
            try:
                assert wait_for(lambda: len(acknowledged) >= 40, 60, step=0.01)
                victim.kill()
                after_kill = len(acknowledged)
                assert wait_for(lambda: len(acknowledged) >= after_kill + 20, 60, step=0.01)
            finally:
                stop.set()
                for writer in writers:
                    writer.join(timeout=60)

            assert len(acknowledged) >= 60
            for agent_id, (agent, etag) in acknowledged.items():
                read = requests.get(f"{survivor.url}/agents/{agent_id}", timeout=30)
                assert read.status_code == 200, agent_id
                assert read.json()["agent"] == agent and read.headers["ETag"] == etag
        finally:
            for server in pair:
                server.stop()
