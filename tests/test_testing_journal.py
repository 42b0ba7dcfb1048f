"""The request journal: what it keeps of each API request, what it hides, and its filters."""

import collections
import json
import re
import sqlite3

import pytest

from testdouble import state
from tests.conftest import VALID_AGENT

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def journal(client, **query):
    response = client.get("/_test/requests", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["requests"]


def test_each_api_request_is_recorded_oldest_first_with_its_answer(double):
    created = double.post(
        "/agents?source=test&source=again",
        json={"name": "Kept", "webhook_url": None},
        headers={"Idempotency-Key": "key-1", "X-Trace": "abc"},
    ).get_json()["agent"]
    double.get(f"/agents/{created['id']}")
    double.get("/agents/00000000-0000-4000-8000-000000000000")

    entries = journal(double)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/agents", 201),
        ("GET", f"/agents/{created['id']}", 200),
        ("GET", "/agents/00000000-0000-4000-8000-000000000000", 404),
    ]
    first = entries[0]
    assert first["query"] == {"source": ["test", "again"]}
    assert first["body"] == {"name": "Kept", "webhook_url": None}
    assert first["headers"]["Idempotency-Key"] == "key-1"
    assert first["headers"]["X-Trace"] == "abc"
    assert first["headers"]["Content-Type"] == "application/json"
    assert entries[1]["body"] is None
    assert all(TIMESTAMP.match(entry["received_at"]) for entry in entries)
    assert [e["received_at"] for e in entries] == sorted(e["received_at"] for e in entries)
    assert set(first) == {"method", "path", "query", "headers", "body", "status", "received_at"}


def test_the_authorization_value_is_redacted(make_app):
    client = make_app(TEST_MODE=True, API_KEYS="the-real-key").test_client()
    key = {"Authorization": "Bearer the-real-key"}
    client.get("/agents", headers=key)
    response = client.get("/_test/requests", headers=key)
    [entry] = response.get_json()["requests"]
    assert entry["headers"]["Authorization"] == "[redacted]"
    assert "the-real-key" not in response.get_data(as_text=True)


def test_with_keys_a_refused_request_is_journaled_nowhere(make_app):
    """Whoever has no key cannot write into any suite's journal, nor grow the file by it."""
    client = make_app(TEST_MODE=True, API_KEYS="the-real-key").test_client()
    key = {"Authorization": "Bearer the-real-key"}
    victim = {"X-Agents-Namespace": "victim"}
    client.get("/agents", headers={**key, **victim})
    planted = {"name": "Planted", "padding": "x" * 100_000}

    refusals = [
        client.post("/agents", json=planted, headers=victim),
        client.post("/agents", json=planted, headers={**victim, "Authorization": "Bearer wrong"}),
        client.get("/agents", headers={**victim, "Authorization": "Basic dGhlLXJlYWwta2V5"}),
    ]

    assert [response.status_code for response in refusals] == [401, 401, 401]
    entries = client.get("/_test/requests", headers={**key, **victim}).get_json()["requests"]
    assert [(entry["method"], entry["status"]) for entry in entries] == [("GET", 200)]
    assert client.get("/_test/requests", headers=key).get_json()["requests"] == []


def test_webhook_secrets_are_redacted_at_any_depth(double):
    double.post("/agents", json={**VALID_AGENT, "webhook_secret": "top-secret-1"})
    double.post("/agents", json={"name": "n", "nested": [{"webhook_secret": "top-secret-2"}]})
    double.patch("/agents/00000000-0000-4000-8000-000000000000", json={"webhook_secret": None})
    # Valid JSON with its key escaped: redacted by the key it decodes to.
    double.post(
        "/agents",
        data='{"name": "escaped", "webhook\\u005fsecret": "top-secret-3"}',
        content_type="application/json",
    )
    tool = {
        "type": "function",
        "function": {"name": "lookup"},
        "server": {"url": "https://example.com/tools", "secret": "top-secret-4"},
    }
    llm_config = {**VALID_AGENT["llm_config"], "tools": [tool]}
    double.post("/agents", json={**VALID_AGENT, "llm_config": llm_config})

    response = double.get("/_test/requests")
    entries = response.get_json()["requests"]
    assert entries[0]["body"]["webhook_secret"] == "[redacted]"
    assert entries[0]["body"]["name"] == VALID_AGENT["name"]
    assert entries[1]["body"]["nested"] == [{"webhook_secret": "[redacted]"}]
    assert entries[2]["body"] == {"webhook_secret": None}
    assert entries[3]["body"] == {"name": "escaped", "webhook_secret": "[redacted]"}
    assert entries[4]["body"]["llm_config"]["tools"][0]["server"] == {
        "url": "https://example.com/tools",
        "secret": "[redacted]",
    }
    assert "top-secret" not in response.get_data(as_text=True)


def test_only_members_that_are_secrets_are_redacted_beside_the_word_secret_elsewhere(double):
    body = {
        "name": "secret",
        "webhook_secret": {"a": ["top-secret-14"]},
        "notes": {"secret": "not under a server", "server": {"secret": None}},
        "about": ['the "secret"', {"secret_word": "kept"}],
        "tools": [{"server": {"url": "u", "secret": "top-secret-15"}}, {"server": []}],
        "deep": [[{"webhook_secret": "top-secret-16", "other": {"webhook_secret": 0}}]],
    }
    double.post("/agents", json=body)

    assert journal(double)[0]["body"] == {
        **body,
        "webhook_secret": "[redacted]",
        "tools": [{"server": {"url": "u", "secret": "[redacted]"}}, {"server": []}],
        "deep": [[{"webhook_secret": "[redacted]", "other": {"webhook_secret": "[redacted]"}}]],
    }


def test_a_secret_beside_an_integer_beyond_64_bits_is_redacted(double):
    body = {"name": "Big", "limits": {"max": 2**70, "server": {"secret": "top-secret-17"}}}
    double.post("/agents", json=body)
    limits = journal(double)[0]["body"]["limits"]
    assert limits == {"max": 2**70, "server": {"secret": "[redacted]"}}


# Bodies that are not JSON, each holding a secret in a form a text search would miss.
UNPARSED_BODIES = {
    "broken JSON": (b'{"name": "broken", "webhook_secret": "top-secret-5", ', "application/json"),
    "unclosed JSON": (b'{"webhook_secret": "top-secret-6', "application/json"),
    "an escaped key and a trailing comma": (
        b'{"webhook\\u005fsecret": "top-secret-7",}',
        "application/json",
    ),
    "a form": (b"name=form&webhook_secret=top-secret-8", "application/x-www-form-urlencoded"),
    "single quotes": (b"{'webhook_secret': 'top-secret-9'}", "application/json"),
    "UTF-16 with a trailing comma": (
        '{"webhook_secret": "top-secret-10",}'.encode("utf-16"),
        "application/json",
    ),
    "NaN": (b'{"name": NaN, "webhook_secret": "top-secret-11"}', "application/json"),
    "a lone surrogate": (b'{"webhook_secret": "top-secret-12\\ud800"}', "application/json"),
    "plain text": (b"my secret is top-secret-13", "text/plain"),
}


@pytest.mark.parametrize(
    ("data", "content_type"), UNPARSED_BODIES.values(), ids=UNPARSED_BODIES.keys()
)
def test_a_body_that_is_not_json_is_journaled_as_its_size_and_type_only(double, data, content_type):
    double.post("/agents", data=data, content_type=content_type)

    response = double.get("/_test/requests")

    [entry] = response.get_json()["requests"]
    assert entry["body"] == f"[not kept: {len(data)} bytes of {content_type}, not JSON]"
    assert "top-secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize("data", ["[1, 2]", '"text"', "null", "7", '"a \\"secret\\""'])
def test_a_json_body_that_is_not_an_object_is_kept_as_json(double, data):
    double.post("/agents", data=data, content_type="application/json")
    assert journal(double)[0]["body"] == json.loads(data)


def test_a_body_over_64_kib_is_journaled_as_its_size_and_type_only(double):
    kept = {"name": "Kept", "first_message": "x" * (65_536 - 40)}
    large = {"name": "Large", "first_message": "x" * 65_536}
    double.post("/agents", json=kept)
    double.post("/agents", json=large)

    first, second = journal(double)

    assert first["body"] == kept
    size = len(json.dumps(large).encode())
    assert second["body"] == f"[not kept: {size} bytes of application/json, over 65536]"


def test_the_journal_keeps_the_newest_thousand_requests_of_each_namespace(double, in_namespace):
    in_namespace("other").get("/agents")
    for number in range(1_005):
        double.get(f"/agents?q=request-{number}")

    entries = journal(double)

    assert len(entries) == 1_000
    assert entries[0]["query"] == {"q": ["request-5"]}
    assert entries[-1]["query"] == {"q": ["request-1004"]}
    assert len(in_namespace("other").get("/_test/requests").get_json()["requests"]) == 1


def test_an_oversized_body_is_journaled_without_it(make_app):
    client = make_app(TEST_MODE=True, MAX_BODY_BYTES=100).test_client()
    client.post("/agents", json={"name": "x" * 200})
    [entry] = client.get("/_test/requests").get_json()["requests"]
    assert (entry["status"], entry["body"]) == (413, None)


def test_only_api_requests_are_journaled(double):
    double.get("/healthz")
    double.get("/openapi.json")
    double.get("/_test/faults")
    double.get("/nowhere")
    double.put("/agents")
    assert [(e["method"], e["path"], e["status"]) for e in journal(double)] == [
        ("PUT", "/agents", 405)
    ]


def test_journal_filters_by_method_and_by_path_with_an_id_placeholder(double):
    agent = double.post("/agents", json=VALID_AGENT).get_json()["agent"]
    double.get("/agents")
    double.get(f"/agents/{agent['id']}")
    double.patch(f"/agents/{agent['id']}/", json={"name": "Trailing slash"})

    assert [e["method"] for e in journal(double, method="GET")] == ["GET", "GET"]
    assert [e["method"] for e in journal(double, path="/agents")] == ["POST", "GET"]
    assert [e["method"] for e in journal(double, path="/agents/{id}")] == ["GET", "PATCH"]
    assert [
        e["status"] for e in journal(double, method="PATCH", path=f"/agents/{agent['id']}")
    ] == [200]
    assert journal(double, method="DELETE") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"method": "get"}, "method must be one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS."),
        (
            {"path": "agents"},
            "path must be a path such as /assistants or /agents/{id}, without a query string.",
        ),
        (
            {"path": "/agents?x=1"},
            "path must be a path such as /assistants or /agents/{id}, without a query string.",
        ),
        ({"status": "200"}, "status is not a known query parameter."),
        ({"method": ["GET", "POST"]}, "method must be given once, not 2 times."),
        ({"path": ["/agents", "/agents", "/agents"]}, "path must be given once, not 3 times."),
    ],
)
def test_a_bad_journal_filter_is_refused(double, query, message):
    response = double.get("/_test/requests", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["error"] == message


def test_deleting_the_journal_empties_it_for_that_namespace_only(double, in_namespace):
    double.get("/agents")
    in_namespace("other").get("/agents")
    assert double.delete("/_test/requests").get_json() == {"success": True}
    assert journal(double) == []
    assert len(in_namespace("other").get("/_test/requests").get_json()["requests"]) == 1


def test_requests_with_an_invalid_namespace_are_not_journaled_anywhere(double, in_namespace):
    in_namespace("bad name").get("/agents")
    assert journal(double) == []


def test_the_journal_shows_only_the_newest_entries_and_forgets_the_rest_now_and_then(
    double, monkeypatch
):
    monkeypatch.setattr(state, "JOURNAL_LIMIT", 5)
    monkeypatch.setattr(state, "FORGET_EVERY", 3)
    monkeypatch.setattr(state, "_recorded_since_forgetting", collections.Counter())
    paths = [f"/agents/00000000-0000-4000-8000-{index:012d}" for index in range(13)]

    for path in paths:
        double.get(path)

    assert [entry["path"] for entry in journal(double)] == paths[-5:]
    with double.application.extensions["store"].activated() as store:
        with store.engine.database.connection_context():
            stored = state.JournalEntry.select().count()
    # The 12th request forgot all but the newest five; the 13th forgot nothing yet.
    assert stored == 5 + 1


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_a_secret_is_redacted_from_the_journal_in_any_encoding_json_may_come_in(double, encoding):
    body = {"name": "Kept", "webhook_secret": "whsec-journal-1"}

    double.post(
        "/agents",
        data=json.dumps(body).encode(encoding),
        headers={"Content-Type": "application/json"},
    )

    [entry] = journal(double, method="POST")
    assert "whsec-journal-1" not in json.dumps(entry)


def test_requests_refused_inside_their_write_are_journaled_and_leave_no_write_held(double):
    # A create and its journal entry commit together; a request whose write is refused rolls it
    # back and is journaled on its own, and the next write finds the lock free.
    first = double.post("/agents", json=VALID_AGENT, headers={"Idempotency-Key": "key-1"})
    agent_id = first.get_json()["agent"]["id"]
    reused = double.post(
        "/agents", json={**VALID_AGENT, "name": "Other"}, headers={"Idempotency-Key": "key-1"}
    )
    stale = double.patch(f"/agents/{agent_id}", json={"name": "New"}, headers={"If-Match": '"x"'})
    missing = double.patch("/agents/00000000-0000-4000-8000-000000000000", json={"name": "New"})
    second = double.post("/agents", json={**VALID_AGENT, "name": "Second"})

    statuses = [r.status_code for r in (first, reused, stale, missing, second)]
    assert statuses == [201, 409, 412, 404, 201]
    assert [(e["method"], e["status"]) for e in journal(double)] == [
        ("POST", 201),
        ("POST", 409),
        ("PATCH", 412),
        ("PATCH", 404),
        ("POST", 201),
    ]
    listed = double.get("/agents").get_json()["agents"]
    assert [agent["name"] for agent in listed] == ["Second", VALID_AGENT["name"]]


def test_a_body_with_an_integer_beyond_64_bits_is_journaled_as_sent(double):
    body = {"name": "Big", "max_duration_seconds": 2**70}
    assert double.post("/agents", json=body).status_code == 400
    [entry] = journal(double)
    assert entry["body"] == body


def test_a_write_whose_journal_entry_cannot_be_stored_is_not_stored_either(make_app, database_path):
    # The entry is written in the create's own transaction, so what undoes the one undoes the
    # other: the client is told the request failed, and nothing of it is kept.
    # Served as in production, where an error no handler takes is answered, not raised.
    double = make_app(TEST_MODE=True, TESTING=False).test_client()
    assert double.get("/agents").status_code == 200  # the tables exist
    with sqlite3.connect(database_path) as connection:
        connection.execute(
            "CREATE TRIGGER refuse_entries BEFORE INSERT ON journal_entry "
            "BEGIN SELECT RAISE(ROLLBACK, 'no more entries'); END"
        )
    response = double.post("/agents", json=VALID_AGENT)
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
    with sqlite3.connect(database_path) as connection:
        assert connection.execute("SELECT count(*) FROM agent").fetchone() == (0,)
