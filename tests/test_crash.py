"""Crashes: kill -9 a real gunicorn in the middle of a write load, then start it on the same file.

Every agent whose create was answered 201 must come back exactly as answered, ETag included,
and the file must pass SQLite's integrity check. Three rounds on one file.
"""

import threading

import requests

from tests.conftest import VALID_AGENT, assert_valid_as_stored, check_file
from tests.live_server import LiveServer

ROUNDS = 3
WRITERS = 4
ACKNOWLEDGED_BEFORE_KILL = 40


def write_until_stopped(url, round_number, writer, acknowledged, lock, stop):
    session = requests.Session()
    number = 0
    while not stop.is_set():
        number += 1
        body = {
            **VALID_AGENT,
            "name": f"Round {round_number} writer {writer} agent {number} ✓",
            "webhook_secret": f"secret-{round_number}-{writer}-{number}",
        }
        try:
            response = session.post(f"{url}/agents", json=body, timeout=30)
        except requests.RequestException:
            return  # the server is gone; what was in flight was never acknowledged
        if response.status_code == 201:
            with lock:
                acknowledged[response.json()["agent"]["id"]] = (
                    response.json()["agent"],
                    response.headers["ETag"],
                )


def crash_during_writes(server, round_number, acknowledged):
    lock = threading.Lock()
    stop = threading.Event()
    before = len(acknowledged)
    writers = [
        threading.Thread(
            target=write_until_stopped,
            args=(server.url, round_number, writer, acknowledged, lock, stop),
        )
        for writer in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    try:
        while len(acknowledged) < before + ACKNOWLEDGED_BEFORE_KILL and any(
            w.is_alive() for w in writers
        ):
            stop.wait(0.01)
        server.kill()
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=60)


def test_every_acknowledged_agent_survives_kill_9_mid_write(tmp_path):
    database = tmp_path / "agents.db"
    acknowledged = {}
    checked = 0
    for round_number in range(1, ROUNDS + 2):
        with LiveServer(database) as server:
            assert check_file(database)["integrity"] == ["ok"]
            for agent_id, (agent, etag) in acknowledged.items():
                response = requests.get(f"{server.url}/agents/{agent_id}", timeout=30)
                assert response.status_code == 200, f"acknowledged agent {agent_id} was lost"
                assert response.json() == {"agent": agent}
                assert response.headers["ETag"] == etag
                checked += 1
            for agent in requests.get(f"{server.url}/agents", timeout=30).json()["agents"]:
                assert_valid_as_stored(agent)
            if round_number <= ROUNDS:
                crash_during_writes(server, round_number, acknowledged)
                assert server.process.returncode == -9

    print(
        f"{len(acknowledged)} agents acknowledged over {ROUNDS} crashes; "
        f"{checked} checks after restarts"
    )
    assert len(acknowledged) >= ROUNDS * ACKNOWLEDGED_BEFORE_KILL
