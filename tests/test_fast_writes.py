"""The plain creates and updates answered before Flask (routes/fast_writes.py) answer as Flask does.

Each request goes to two apps on one database: one with the fast paths, one without. A create
or an update makes a different agent, or a different version, on each, so their answers are
compared with the id, timestamps and ETag each made set aside; everything the fast path hands
on must be the same bytes from both, and leave the agents as they were.
"""

import errno
import json

import pytest

import storage.sqlite
from stored_form import etag_of
from tests.conftest import VALID_AGENT
from tests.fast_paths import Pair

KEY = "sk_test_fast_writes_0123456789"
PREFIX = "/api/v1"
MADE = ("id", "created_at", "updated_at")


@pytest.fixture
def pair(make_app):
    return lambda **settings: Pair.of(make_app, **settings)


def alike(fast, flask, member):
    """Asserts two answers about two agents say the same, but for what each agent was given;
    returns the two agents."""
    assert fast.status == flask.status
    assert [name for name, _ in fast.headers] == [name for name, _ in flask.headers]
    agents = []
    for response in (fast, flask):
        # The ETag is that of the stored document, which the body holds as its member.
        document = response.data[len(f'{{"{member}":') : -1].decode()
        assert response.headers["ETag"] == f'"{etag_of(document)}"'
        agents.append(response.get_json()[member])
    assert [without_made(agent) for agent in agents] == [without_made(agents[1])] * 2
    return agents


def without_made(agent):
    return {name: value for name, value in agent.items() if name not in MADE}


def stored(client, path="/agents", headers=None):
    return client.get(path, headers=headers).get_json()[path.rsplit("/", 1)[-1]]


@pytest.mark.parametrize("family, member", [("agents", "agent"), ("assistants", "assistant")])
def test_a_create_is_answered_before_flask_as_flask_answers_it(pair, family, member):
    both = pair()
    body = {**VALID_AGENT, "first_message": "Grüß Gott, ich bin Ökö 🎧"}

    fast, flask, answered_fast = both.answers("POST", f"/{family}", json=body)

    assert answered_fast
    created = alike(fast, flask, member)
    for agent, response in zip(created, (fast, flask), strict=True):
        assert response.headers["Location"] == f"/{family}/{agent['id']}"
        got = both.flask_only.get(response.headers["Location"])
        assert got.data == response.data and got.headers["ETag"] == response.headers["ETag"]
    assert len(stored(both.flask_only)) == 2


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/merge-patch+json; charset=utf-8"]
)
@pytest.mark.parametrize("if_match", [None, "{etag}", '"other", {etag}', "*"])
def test_an_update_is_answered_before_flask_as_flask_answers_it(pair, content_type, if_match):
    both = pair()
    agents = both.create(), both.create()
    patch = json.dumps({"name": "Renamed Ökö", "llm_config": {"temperature": 1.1}})
    answers = []
    for agent, client in zip(agents, (both.fast, both.flask_only), strict=True):
        headers = {"X-Request-ID": "same-request"}
        if if_match is not None:
            etag = client.get(f"/agents/{agent['id']}").headers["ETag"]
            headers["If-Match"] = if_match.format(etag=etag)
        seen_before = len(both.seen)
        answers.append(
            client.patch(
                f"/agents/{agent['id']}", data=patch, content_type=content_type, headers=headers
            )
        )
        if client is both.fast:
            assert len(both.seen) == seen_before

    updated = alike(*answers, "agent")
    assert [agent["name"] for agent in updated] == ["Renamed Ökö"] * 2
    assert [agent["llm_config"]["temperature"] for agent in updated] == [1.1] * 2


@pytest.mark.parametrize(
    "method, path, sent, status",
    [
        ("POST", "/agents", {"data": b'{"name": "x",}', "content_type": "application/json"}, 400),
        ("POST", "/agents", {"data": b'{"a": 1, "a": 2}', "content_type": "application/json"}, 400),
        ("POST", "/agents", {"json": ["not", "an", "object"]}, 400),
        ("POST", "/agents", {"json": {**VALID_AGENT, "name": ""}}, 400),
        ("POST", "/agents", {"json": {**VALID_AGENT, "notification_email": "nope"}}, 400),
        ("POST", "/agents", {"data": b"name=x", "content_type": "text/plain"}, 415),
        (
            "POST",
            "/agents",
            {"data": b"{}" + b" " * 2_000_000, "content_type": "application/json"},
            413,
        ),
        ("PATCH", "/agents/{id}", {"json": {"max_duration_seconds": -1}}, 400),
        ("PATCH", "/agents/{id}", {"json": ["x"]}, 400),
        ("PATCH", "/agents/{id}", {"json": {"name": "y"}, "headers": {"If-Match": '"other"'}}, 412),
        (
            "PATCH",
            "/agents/{id}",
            {"json": {"name": "y"}, "headers": {"If-Match": "no quotes"}},
            400,
        ),
        ("PATCH", "/agents/00000000-0000-4000-8000-000000000000", {"json": {"name": "y"}}, 404),
        ("PATCH", "/agents/{upper}", {"json": {}}, 200),
        ("PATCH", "/agents", {"json": {"name": "y"}}, 405),
        ("POST", "/agents/{id}", {"json": VALID_AGENT}, 405),
    ],
)
def test_what_the_fast_path_does_not_take_flask_answers_unchanged(pair, method, path, sent, status):
    both = pair()
    agent = both.create()
    path = path.format(id=agent["id"], upper=agent["id"].upper())
    before = stored(both.flask_only)

    response, answered_fast = both.same_answer(path, method=method, **sent)

    assert not answered_fast
    assert response.status_code == status
    assert stored(both.flask_only) == before


@pytest.mark.parametrize(
    "path, headers, kept",
    [("/agents/", {}, 2), ("/agents", {"Idempotency-Key": "retry-1"}, 1)],
)
def test_a_create_the_fast_path_does_not_take_is_stored_by_flask(pair, path, headers, kept):
    both = pair()

    fast, flask, answered_fast = both.answers("POST", path, headers, json=VALID_AGENT)

    assert not answered_fast
    assert fast.status_code == flask.status_code == 201
    assert len(stored(both.flask_only)) == kept


@pytest.mark.parametrize(
    "authorization, fast",
    [(f"Bearer {KEY}", True), (f"bearer   {KEY} ", True), ("Bearer wrong", False), ("", False)],
)
def test_with_api_keys_only_a_known_key_is_answered_before_flask(pair, authorization, fast):
    both = pair(API_KEYS=KEY)
    headers = {"Authorization": authorization} if authorization else {}

    response, flask, answered_fast = both.answers("POST", "/agents", headers, json=VALID_AGENT)

    assert answered_fast is fast
    assert response.status_code == flask.status_code == (201 if fast else 401)
    if not fast:
        assert response.data == flask.data


@pytest.mark.parametrize("prefix, quoted", [(PREFIX, PREFIX), ("/api v1", "/api%20v1")])
def test_under_a_url_prefix_only_the_prefixed_paths_are_answered_before_flask(pair, prefix, quoted):
    both = pair(URL_PREFIX=prefix)

    prefixed, flask, answered_fast = both.answers("POST", f"{prefix}/agents", json=VALID_AGENT)
    assert answered_fast and prefixed.status_code == 201
    agent = prefixed.get_json()["agent"]
    assert prefixed.headers["Location"] == f"{quoted}/agents/{agent['id']}"
    assert flask.headers["Location"] == f"{quoted}/agents/{flask.get_json()['agent']['id']}"
    bare, answered_fast = both.same_answer("/agents", method="POST", json=VALID_AGENT)
    assert not answered_fast and bare.status_code == 404


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "100/minute"}, {"TEST_MODE": True}])
def test_rate_limits_and_test_mode_leave_every_write_to_flask(pair, settings):
    both = pair(**settings)
    agent = both.create()

    assert both.fast.post("/agents", json=VALID_AGENT).status_code == 201
    assert both.fast.patch(f"/agents/{agent['id']}", json={"name": "y"}).status_code == 200
    assert len(both.seen) == 2


@pytest.mark.sqlite_only("the fsync that fails is of SQLite's WAL")
def test_a_write_that_fails_once_tried_is_answered_as_flask_answers_it(pair, monkeypatch):
    """A write committed but not flushed is answered 503 by the fast path itself, as Flask
    answers it: handed on, it would be made a second time."""

    def failing(descriptor):
        raise OSError(errno.EIO, "Input/output error")

    both = pair()
    agents = both.create(), both.create()
    monkeypatch.setattr(storage.sqlite, "fdatasync", failing)
    seen_before = len(both.seen)

    answers = [client.post("/agents", json=VALID_AGENT) for client in (both.fast, both.flask_only)]
    answers += [
        client.patch(f"/agents/{agent['id']}", json={"name": "Renamed"})
        for agent, client in zip(agents, (both.fast, both.flask_only), strict=True)
    ]

    assert len(both.seen) == seen_before
    assert [answer.status_code for answer in answers] == [503] * 4
    assert len({(answer.headers.get("Retry-After"), answer.data) for answer in answers}) == 1
    assert len(stored(both.flask_only)) == 4
