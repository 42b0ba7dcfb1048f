"""The request journal: what it keeps of each API request, what it hides, and its filters."""

import re

import pytest

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
    client.get("/agents", headers={"Authorization": "Bearer a-wrong-key"})
    response = client.get("/_test/requests", headers=key)
    entries = response.get_json()["requests"]
    assert [entry["status"] for entry in entries] == [200, 401]
    assert [entry["headers"]["Authorization"] for entry in entries] == ["[redacted]"] * 2
    text = response.get_data(as_text=True)
    assert "the-real-key" not in text and "a-wrong-key" not in text


def test_webhook_secrets_are_redacted_at_any_depth_and_in_raw_text(double):
    double.post("/agents", json={**VALID_AGENT, "webhook_secret": "top-secret-1"})
    double.post("/agents", json={"name": "n", "nested": [{"webhook_secret": "top-secret-2"}]})
    double.patch("/agents/00000000-0000-4000-8000-000000000000", json={"webhook_secret": None})
    double.post(
        "/agents",
        data='{"name": "broken", "webhook_secret": "top-secret-3", ',
        content_type="application/json",
    )
    double.post("/agents", data='{"webhook_secret": "top-secret-4', content_type="application/json")

    response = double.get("/_test/requests")
    entries = response.get_json()["requests"]
    assert entries[0]["body"]["webhook_secret"] == "[redacted]"
    assert entries[0]["body"]["name"] == VALID_AGENT["name"]
    assert entries[1]["body"]["nested"] == [{"webhook_secret": "[redacted]"}]
    assert entries[2]["body"] == {"webhook_secret": None}
    assert entries[3]["body"] == '{"name": "broken", "webhook_secret": "[redacted]", '
    assert entries[4]["body"] == '{"webhook_secret": "[redacted]"'
    assert "top-secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "content_type", "recorded"),
    [
        ("not json at all", "text/plain", "not json at all"),
        ('{"name": NaN}', "application/json", '{"name": NaN}'),
        ('"\\ud800"', "application/json", '"\\ud800"'),
        (b"\xff\xfe", "application/json", "\ufffd\ufffd"),
        ("[1, 2]", "application/json", [1, 2]),
    ],
)
def test_a_body_that_is_not_a_json_object_is_kept_as_json_or_raw_text(
    double, data, content_type, recorded
):
    double.post("/agents", data=data, content_type=content_type)
    assert journal(double)[0]["body"] == recorded


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
            "path must be a path such as /agents or /agents/{id}, without a query string.",
        ),
        (
            {"path": "/agents?x=1"},
            "path must be a path such as /agents or /agents/{id}, without a query string.",
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
