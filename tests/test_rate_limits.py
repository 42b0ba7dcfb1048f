"""Rate limits (API.md 7): off by default; with AGENTS_RATE_LIMIT, counted per API key (per client
address without one) in the database, shown on every API response, 429 past the limit."""

import sqlite3
import threading
import time

import pytest
import requests

from config import ConfigError, load_settings
from tests.live_server import LiveServer

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def fresh_window(seconds, margin=3):
    """Wait out the current window when it ends within `margin` seconds, so a test stays in one."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left + 0.05)


def remaining(response):
    return int(response.headers["X-RateLimit-Remaining"])


@pytest.fixture
def limited(make_app):
    """A client of a service allowing 3 requests a minute."""
    fresh_window(60)
    return make_app(RATE_LIMIT="3/minute").test_client()


def test_without_the_setting_nothing_is_counted_or_shown(client):
    for _ in range(5):
        response = client.get("/assistants")
        assert response.status_code == 200
        assert not any(name in response.headers for name in HEADERS)
    document = client.get("/openapi.json").get_json()
    assert "429" not in document["paths"]["/assistants"]["get"]["responses"]


def test_every_api_response_carries_the_three_headers_counting_down(limited):
    responses = [
        limited.post("/assistants", json={"name": "Counted"}),
        limited.get("/agents/2f1c0a4e-6f7b-4d8e-9a51-3c2b1d0e9f87"),
        limited.post("/agents", json={"name": ""}),
    ]

    assert [response.status_code for response in responses] == [201, 404, 400]
    assert [remaining(response) for response in responses] == [2, 1, 0]
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == "3"
        reset = int(response.headers["X-RateLimit-Reset"])
        assert reset % 60 == 0 and 0 < reset - time.time() <= 60


def test_a_request_over_the_limit_is_429_with_retry_after_and_changes_nothing(make_app):
    fresh_window(60)
    client = make_app(RATE_LIMIT="2/minute", API_KEYS="key-a,key-b").test_client()
    a = {"Authorization": "Bearer key-a"}
    client.get("/agents", headers=a)
    client.get("/agents", headers=a)

    refused = client.post("/assistants", json={"name": "Too many"}, headers=a)

    assert refused.status_code == 429
    body = refused.get_json()
    assert body["code"] == body["type"] == "rate_limited"
    assert body["error"] == (
        "Too many requests: the limit is 2 a minute per API key; "
        f"retry after {body['retry_after']} seconds."
    )
    assert 1 <= body["retry_after"] <= 60
    assert refused.headers["Retry-After"] == str(body["retry_after"])
    assert remaining(refused) == 0
    # Another key has its own count, and finds nothing created by the refused request.
    listed = client.get("/assistants", headers={"Authorization": "Bearer key-b"})
    assert listed.get_json()["assistants"] == [] and remaining(listed) == 1


def test_each_client_address_has_its_own_count_where_no_keys_are_set(limited):
    for _ in range(3):
        limited.get("/agents")
    assert limited.get("/agents").status_code == 429

    other = limited.get("/agents", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 200 and remaining(other) == 2


def test_a_refused_key_is_counted_against_its_address_and_shown_the_headers(make_app):
    fresh_window(60)
    client = make_app(RATE_LIMIT="3/minute", API_KEYS="the-key").test_client()

    refused = client.get("/agents", headers={"Authorization": "Bearer guessed"})
    no_key = client.get("/agents")
    keyed = client.get("/agents", headers={"Authorization": "Bearer the-key"})

    assert refused.status_code == no_key.status_code == 401
    assert [remaining(refused), remaining(no_key)] == [2, 1]
    assert keyed.status_code == 200 and remaining(keyed) == 2


def test_a_new_window_starts_the_count_again(make_app):
    fresh_window(1, margin=0.5)
    client = make_app(RATE_LIMIT="2/second").test_client()
    assert [client.get("/agents").status_code for _ in range(3)] == [200, 200, 429]

    time.sleep(1 - time.time() % 1 + 0.05)
    again = client.get("/agents")
    assert again.status_code == 200 and remaining(again) == 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
def test_routes_outside_the_api_are_neither_counted_nor_limited(limited, path):
    for _ in range(4):
        response = limited.get(path)
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers
    assert remaining(limited.get("/agents")) == 2


def test_the_test_mode_routes_are_not_counted(make_app):
    fresh_window(60)
    client = make_app(RATE_LIMIT="1/minute", TEST_MODE=True).test_client()
    for _ in range(3):
        assert client.get("/_test/requests").status_code == 200
    assert client.get("/agents").status_code == 200
    assert client.get("/agents").status_code == 429


def test_no_api_key_is_written_to_the_database(make_app, database_path):
    fresh_window(60)
    client = make_app(RATE_LIMIT="5/minute", API_KEYS="fl_live_do-not-store-me").test_client()
    client.get("/agents", headers={"Authorization": "Bearer fl_live_do-not-store-me"})

    with sqlite3.connect(database_path) as connection:
        rows = connection.execute("SELECT client, count FROM rate_limit_window").fetchall()
    assert len(rows) == 1 and rows[0][0].startswith("key:") and rows[0][1] == 1
    for path in database_path.parent.glob("agents.db*"):
        assert b"do-not-store-me" not in path.read_bytes()


def test_the_openapi_document_shows_429_and_the_headers_when_limits_are_on(limited):
    document = limited.get("/openapi.json").get_json()
    for path in ("/assistants", "/agents/{agent_id}"):
        for operation in document["paths"][path].values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            assert "429" in operation["responses"]
            assert "Retry-After" in operation["responses"]["429"]["headers"]
            for response in operation["responses"].values():
                assert set(HEADERS) <= set(response.get("headers", {}))
    assert "429" not in document["paths"]["/healthz"]["get"]["responses"]


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("100/minute", (100, 60)), (" 5 / second ", (5, 1)), ("1/hour", (1, 3600)), ("", None)],
)
def test_the_setting_is_a_count_per_second_minute_or_hour(raw, parsed):
    assert load_settings(environ={"AGENTS_RATE_LIMIT": raw})["RATE_LIMIT"] == parsed


@pytest.mark.parametrize("raw", ["0/minute", "100", "100/day", "x/minute", "-1/second", "5/min"])
def test_a_setting_that_is_not_a_count_per_window_stops_the_start(raw):
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"AGENTS_RATE_LIMIT": raw})
    assert str(refused.value) == (
        "AGENTS_RATE_LIMIT must be COUNT/second, COUNT/minute or COUNT/hour, such as "
        f"100/minute, not {raw!r}."
    )


def test_two_gunicorn_workers_count_into_the_same_window(tmp_path):
    limit = 30
    with LiveServer(
        tmp_path / "agents.db",
        workers=2,
        AGENTS_TEST_MODE="1",
        AGENTS_THREADS="1",
        AGENTS_RATE_LIMIT=f"{limit}/hour",
    ) as server:
        fresh_window(3600, margin=30)
        sent = []

        def send(path):
            response = requests.get(f"{server.url}{path}", timeout=15)
            sent.append(response)
            return response

        workers = set()
        for _attempt in range(10):
            # A delayed fault holds one worker's one thread; the next request, on a connection
            # of its own, is accepted by either worker: try until the other one has taken it.
            requests.post(
                f"{server.url}/_test/faults",
                json={"method": "GET", "path": "/assistants", "status": 503, "delay_ms": 500},
                timeout=5,
            )
            held = {}
            holder = threading.Thread(
                target=lambda held=held: held.update(response=send("/assistants"))
            )
            holder.start()
            while requests.get(f"{server.url}/_test/faults", timeout=5).json()["faults"]:
                time.sleep(0.02)
            other = send("/agents")
            holder.join(timeout=20)
            workers = {
                held["response"].headers["X-Agents-Worker"],
                other.headers["X-Agents-Worker"],
            }
            if len(workers) == 2:
                break
        assert len(workers) == 2, "one worker answered both requests ten times"

        while len(sent) < limit:
            send("/agents")
        refused = send("/agents")

    # Whichever worker answered, each request saw the count of every request before it.
    counts = sorted(remaining(response) for response in sent[:limit])
    assert counts == list(range(limit))
    assert refused.status_code == 429 and refused.json()["retry_after"] >= 1
    assert int(refused.headers["Retry-After"]) == refused.json()["retry_after"]
