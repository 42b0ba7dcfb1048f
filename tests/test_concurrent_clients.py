"""Many clients at once against a real gunicorn with two workers: nothing fails, nothing is lost.

Sixteen threads mix creates, reads, lists, and If-Match patches and deletes, crowding a few
agents on purpose so that their edits collide. Every successful PATCH or DELETE names, in
If-Match, the ETag it replaced; for no update to be lost, each agent's successful edits must
form one unbroken chain from its creation to what is stored at the end (or to its deletion).
"""

import random
import threading
from collections import Counter

import requests

from tests.conftest import VALID_AGENT
from tests.live_server import LiveServer

THREADS = 16
OPERATIONS_PER_THREAD = 100
HOT_AGENTS = 6
DELETED = "deleted"


class Run:
    """What the clients saw, shared between their threads."""

    def __init__(self, url):
        self.url = url
        self.lock = threading.Lock()
        self.pool = []
        self.created = {}
        self.deleted = set()
        self.links = {}  # (agent id, ETag sent in If-Match) -> (new ETag or DELETED, token)
        self.broken_links = []
        self.failures = []
        self.statuses = Counter()
        self.operations = Counter()
        self.steps = 0

    def note(self, operation, response):
        with self.lock:
            self.operations[operation] += 1
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.failures.append(f"{operation}: {response.status_code} {response.text[:300]}")

    def link(self, agent_id, old_etag, new_etag, token):
        with self.lock:
            if (agent_id, old_etag) in self.links:
                self.broken_links.append((agent_id, old_etag))
            self.links[(agent_id, old_etag)] = (new_etag, token)

    def pick(self, rng):
        with self.lock:
            if not self.pool:
                return None
            if rng.random() < 0.5:
                return rng.choice(self.pool[:HOT_AGENTS])
            return rng.choice(self.pool)


def client(run, number):
    try:
        steps(run, number)
    except Exception as error:  # a client that stops must fail the test, not vanish
        with run.lock:
            run.failures.append(f"client {number}: {error!r}")


def steps(run, number):
    rng = random.Random(number)
    session = requests.Session()
    url = run.url
    for step in range(OPERATIONS_PER_THREAD):
        with run.lock:
            run.steps += 1
        token = f"client {number} step {step}"
        roll = rng.random()
        agent_id = run.pick(rng)
        if roll < 0.2 or agent_id is None:
            response = session.post(
                f"{url}/agents", json={**VALID_AGENT, "name": token}, timeout=60
            )
            run.note("create", response)
            if response.status_code == 201:
                with run.lock:
                    created = response.json()["agent"]["id"]
                    run.created[created] = response.headers["ETag"]
                    run.pool.append(created)
        elif roll < 0.4:
            run.note("read", session.get(f"{url}/agents/{agent_id}", timeout=60))
        elif roll < 0.5:
            run.note("list", session.get(f"{url}/agents", params={"limit": 20}, timeout=60))
        else:
            current = session.get(f"{url}/agents/{agent_id}", timeout=60)
            run.note("read", current)
            if current.status_code != 200:
                continue
            etag = current.headers["ETag"]
            if roll < 0.9:
                response = session.patch(
                    f"{url}/agents/{agent_id}",
                    json={"first_message": token},
                    headers={"If-Match": etag},
                    timeout=60,
                )
                run.note("patch", response)
                if response.status_code == 200:
                    run.link(agent_id, etag, response.headers["ETag"], token)
            else:
                response = session.delete(
                    f"{url}/agents/{agent_id}", headers={"If-Match": etag}, timeout=60
                )
                run.note("delete", response)
                if response.status_code == 200:
                    run.link(agent_id, etag, DELETED, token)
                    with run.lock:
                        run.deleted.add(agent_id)
                        run.pool.remove(agent_id)


def test_concurrent_clients_get_no_server_error_and_lose_no_update(tmp_path):
    with LiveServer(tmp_path / "agents.db", workers=2) as server:
        run = Run(server.url)
        threads = [threading.Thread(target=client, args=(run, number)) for number in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        assert not any(thread.is_alive() for thread in threads)
        stored = {
            agent["id"]: agent
            for agent in requests.get(f"{server.url}/agents", timeout=60).json()["agents"]
        }
        etags = {
            agent_id: requests.get(f"{server.url}/agents/{agent_id}", timeout=60).headers["ETag"]
            for agent_id in stored
        }
    log = server.log_text()

    print(
        f"operations: {sum(run.operations.values())} {dict(run.operations)}; "
        f"statuses: {dict(run.statuses)}"
    )
    assert run.failures == []
    assert "database is locked" not in log
    assert run.steps == THREADS * OPERATIONS_PER_THREAD
    assert run.operations["patch"] > 0 and run.operations["delete"] > 0
    assert run.broken_links == [], "two edits succeeded on the same version: one was lost"
    assert run.statuses[412] > 0, "the crowded agents should have seen conflicting edits"
    assert len(stored) == len(run.created) - len(run.deleted)
    assert set(stored) == set(run.created) - run.deleted

    for agent_id, creation_etag in run.created.items():
        edits = {old: new for (linked, old), new in run.links.items() if linked == agent_id}
        etag, message = creation_etag, VALID_AGENT["first_message"]
        while etag in edits:
            etag, message = edits.pop(etag)
        assert edits == {}, f"{agent_id}: edits off the chain were lost"
        if agent_id in run.deleted:
            assert etag == DELETED
        else:
            assert etag == etags[agent_id]
            assert stored[agent_id]["first_message"] == message
