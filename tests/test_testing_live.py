"""Test mode through a real gunicorn with two workers: state that every worker shares."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import FIXTURE_AGENTS, VALID_AGENT


@pytest.fixture
def api(test_mode_server):
    """requests to the live server in a namespace of this test's own."""
    session = requests.Session()
    session.headers["X-Agents-Namespace"] = f"live-{uuid.uuid4().hex[:12]}"

    def call(method, path, fresh_connection=False, **kwargs):
        send = requests.request if fresh_connection else session.request
        if fresh_connection:
            kwargs["headers"] = {**session.headers, **kwargs.get("headers", {})}
        return send(method, f"{test_mode_server.url}{path}", timeout=15, **kwargs)

    yield call
    session.close()


def test_the_fixtures_file_is_loaded_once_though_both_workers_start_with_it(test_mode_server):
    listed = requests.get(f"{test_mode_server.url}/agents", timeout=5).json()["agents"]
    assert [(agent["id"], agent["created_at"]) for agent in listed] == [
        (agent["id"], agent["created_at"]) for agent in reversed(FIXTURE_AGENTS)
    ]


def test_a_journal_entry_written_by_one_worker_is_read_by_another(api):
    # A delayed fault holds one worker's one thread; a request sent meanwhile on a connection
    # of its own is accepted by either worker, so try until the other one has taken it.
    for _attempt in range(12):
        api("DELETE", "/_test/requests")
        api(
            "POST",
            "/_test/faults",
            json={"method": "GET", "path": "/agents", "status": 503, "delay_ms": 600},
        )
        held = {}
        holder = threading.Thread(
            target=lambda held=held: held.update(response=api("GET", "/agents"))
        )
        holder.start()
        deadline = time.monotonic() + 10
        # Fresh connections here too: one kept alive to the held worker would queue behind it.
        while (
            api("GET", "/_test/faults", fresh_connection=True).json()["faults"]
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        # On a connection of its own: the session's kept-alive ones belong to a worker already.
        created = api("POST", "/agents", json=VALID_AGENT, fresh_connection=True)
        holder.join(timeout=20)
        writers = {held["response"].headers["X-Agents-Worker"], created.headers["X-Agents-Worker"]}
        if len(writers) == 2:
            break
    assert len(writers) == 2, "both requests went to one worker twelve times"

    reader = api("GET", "/_test/requests")
    entries = [(e["method"], e["status"]) for e in reader.json()["requests"]]
    assert entries == [("GET", 503), ("POST", 201)]  # oldest first, by when each arrived
    # Whichever worker answered the read, one of the two entries was written by the other.
    assert writers - {reader.headers["X-Agents-Worker"]}


def test_a_fault_with_times_two_fails_exactly_two_of_many_concurrent_requests(api):
    api(
        "POST",
        "/_test/faults",
        json={"method": "POST", "path": "/agents", "status": 503, "times": 2},
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: api("POST", "/agents", json=VALID_AGENT), range(10)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 8 + [503] * 2
    assert len(api("GET", "/agents").json()["agents"]) == 8
    assert api("GET", "/_test/faults").json() == {"faults": []}


def test_a_lost_response_and_a_retry_with_the_same_key_leave_exactly_one_agent(api):
    api(
        "POST",
        "/_test/faults",
        json={"method": "POST", "path": "/agents", "status": 504, "after_commit": True},
    )
    key = {"Idempotency-Key": str(uuid.uuid4())}
    lost = api("POST", "/agents", json=VALID_AGENT, headers=key)
    assert lost.status_code == 504
    retried = api("POST", "/agents", json=VALID_AGENT, headers=key)
    assert retried.status_code == 201
    assert [agent["id"] for agent in api("GET", "/agents").json()["agents"]] == [
        retried.json()["agent"]["id"]
    ]


def test_seeded_ids_hold_across_workers(api):
    def seeded_ids():
        api("POST", "/_test/reset", json={"seed": 2024})
        return [
            api("POST", "/agents", json={"name": f"n{n}"}).json()["agent"]["id"] for n in range(6)
        ]

    first = seeded_ids()
    assert seeded_ids() == first
    assert len(set(first)) == 6


def test_calls_simulated_by_both_workers_are_read_by_either(api, webhook_receiver):
    agent = {
        "name": "Live",
        "webhook_url": webhook_receiver.url_for("/hook"),
        "webhook_events": ["assistant-request", "end-of-call-report"],
    }
    [loaded] = api("POST", "/_test/fixtures", json={"agents": [agent]}).json()["agents"]
    # Each call waits on its assistant-request, holding its worker's one thread meanwhile; a
    # second sent then on a connection of its own is accepted by either worker, so the pair is
    # tried until the two workers have each simulated one.
    webhook_receiver.answer("assistant-request", json={}, delay=0.3)

    def simulate():
        return api(
            "POST", "/_test/calls", json={"assistant_id": loaded["id"]}, fresh_connection=True
        )

    made = []
    with ThreadPoolExecutor(2) as pool:
        for attempt in range(12):
            first = pool.submit(simulate)
            webhook_receiver.wait_for("assistant-request", count=2 * attempt + 1)
            pair = [first.result(), pool.submit(simulate).result()]
            made += pair
            if len({response.headers["X-Agents-Worker"] for response in pair}) == 2:
                break
    assert all(response.status_code == 201 for response in made)
    assert len({response.headers["X-Agents-Worker"] for response in made}) == 2

    listed = api("GET", "/_test/calls")
    # Whichever worker answered, one of the two calls was simulated by the other.
    calls = {call["id"]: call for call in listed.json()["calls"]}
    assert calls == {response.json()["call"]["id"]: response.json()["call"] for response in made}
    assert len(webhook_receiver.of("end-of-call-report")) == len(made)


def test_concurrent_creates_on_both_workers_are_each_journaled_once_in_order_of_arrival(api):
    # Each create commits with its journal entry; however the two workers interleave, every
    # request is in the journal once, oldest first, and the entries name what was stored.
    names = [f"Concurrent {index}" for index in range(24)]
    with ThreadPoolExecutor(6) as pool:
        created = list(
            pool.map(
                lambda name: api(
                    "POST", "/agents", json={**VALID_AGENT, "name": name}, fresh_connection=True
                ),
                names,
            )
        )
    assert [response.status_code for response in created] == [201] * len(names)
    entries = api("GET", "/_test/requests").json()["requests"]
    assert sorted(entry["body"]["name"] for entry in entries) == sorted(names)
    assert [entry["status"] for entry in entries] == [201] * len(names)
    arrivals = [entry["received_at"] for entry in entries]
    assert arrivals == sorted(arrivals)
    stored = api("GET", "/agents").json()["agents"]
    assert sorted(agent["name"] for agent in stored) == sorted(names)
