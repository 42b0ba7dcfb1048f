"""Injected faults: matching, counting, the error they answer, and the lost-response case."""

import time

import pytest

from tests.conftest import VALID_AGENT


def add_fault(client, **fault):
    response = client.post("/_test/faults", json=fault)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["fault"]


def agent_count(client):
    return len(client.get("/agents").get_json()["agents"])


def test_a_fault_answers_its_status_in_the_error_shape_and_changes_nothing(double):
    fault = add_fault(double, method="POST", path="/agents", status=503)
    assert fault == {
        "method": "POST",
        "path": "/agents",
        "status": 503,
        "error": "Injected fault: 503 for POST /agents.",
        "code": "injected_fault",
        "delay_ms": 0,
        "retry_after": None,
        "after_commit": False,
        "times": 1,
    }
    response = double.post("/agents", json=VALID_AGENT)
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "Injected fault: 503 for POST /agents.",
        "code": "injected_fault",
        "type": "injected_fault",
    }
    assert "Retry-After" not in response.headers
    assert agent_count(double) == 0
    assert double.post("/agents", json=VALID_AGENT).status_code == 201


def test_a_fault_with_times_two_fails_exactly_two_requests(double):
    add_fault(double, method="GET", path="/agents", status=500, times=2)
    statuses = [double.get("/agents").status_code for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    assert double.get("/_test/faults").get_json() == {"faults": []}


def test_a_fault_lists_the_uses_it_has_left(double):
    add_fault(double, method="GET", path="/agents", status=500, times=3)
    double.get("/agents")
    assert [fault["times"] for fault in double.get("/_test/faults").get_json()["faults"]] == [2]


def test_a_fault_with_times_minus_one_lasts_until_deleted(double):
    add_fault(double, method="GET", path="/agents", status=502, times=-1)
    assert {double.get("/agents").status_code for _ in range(5)} == {502}
    assert double.get("/_test/faults").get_json()["faults"][0]["times"] == -1
    assert double.delete("/_test/faults").get_json() == {"success": True}
    assert double.get("/agents").status_code == 200


def test_error_code_and_retry_after_are_as_given(double):
    add_fault(
        double,
        method="PATCH",
        path="/agents/{id}",
        status=429,
        error="Slow down.",
        code="rate_limited",
        retry_after=7,
    )
    response = double.patch("/agents/00000000-0000-4000-8000-000000000000", json={"name": "x"})
    assert response.status_code == 429
    assert response.get_json() == {
        "error": "Slow down.",
        "code": "rate_limited",
        "type": "rate_limited",
    }
    assert response.headers["Retry-After"] == "7"


def test_a_fault_waits_delay_ms_before_answering(double):
    add_fault(double, method="GET", path="/agents", status=504, delay_ms=300)
    began = time.monotonic()
    assert double.get("/agents").status_code == 504
    # A lower bound only: sleeping never ends early.
    assert time.monotonic() - began >= 0.3


def test_an_id_placeholder_matches_any_one_segment_and_nothing_else(double):
    agent = double.post("/agents", json=VALID_AGENT).get_json()["agent"]
    add_fault(double, method="DELETE", path="/agents/{id}", status=500, times=-1)
    assert double.delete("/agents").status_code == 405  # not /agents
    assert double.get(f"/agents/{agent['id']}").status_code == 200  # not another method
    assert double.delete(f"/agents/{agent['id']}").status_code == 500
    assert double.delete(f"/agents/{agent['id']}/").status_code == 500
    assert double.delete("/agents/anything-at-all").status_code == 500
    assert double.get(f"/agents/{agent['id']}").status_code == 200


def test_an_exact_path_matches_only_that_path(double):
    agent = double.post("/agents", json=VALID_AGENT).get_json()["agent"]
    add_fault(double, method="GET", path=f"/agents/{agent['id']}", status=500)
    assert double.get("/agents/00000000-0000-4000-8000-000000000000").status_code == 404
    assert double.get(f"/agents/{agent['id']}").status_code == 500


def test_faults_answer_in_the_order_they_were_added(double):
    add_fault(double, method="GET", path="/agents", status=500)
    add_fault(double, method="GET", path="/agents", status=503)
    assert [double.get("/agents").status_code for _ in range(3)] == [500, 503, 200]


def test_faults_never_touch_the_test_routes_health_or_docs(double):
    add_fault(double, method="GET", path="/agents", status=500, times=-1)
    assert double.get("/_test/faults").status_code == 200
    assert double.get("/healthz").status_code == 200
    assert double.get("/openapi.json").status_code == 200


def test_a_faulted_request_is_journaled_with_the_status_it_got(double):
    add_fault(double, method="POST", path="/agents", status=503)
    double.post("/agents", json=VALID_AGENT)
    [entry] = double.get("/_test/requests").get_json()["requests"]
    assert (entry["status"], entry["body"]["name"]) == (503, VALID_AGENT["name"])


def test_after_commit_carries_the_request_out_and_loses_only_its_response(double):
    add_fault(double, method="POST", path="/agents", status=502, after_commit=True)
    key = {"Idempotency-Key": "create-once"}
    lost = double.post("/agents", json=VALID_AGENT, headers=key)
    assert lost.status_code == 502
    assert lost.get_json()["code"] == "injected_fault"
    assert agent_count(double) == 1

    retried = double.post("/agents", json=VALID_AGENT, headers=key)
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    [stored] = double.get("/agents").get_json()["agents"]
    assert retried.get_json() == {"agent": stored}
    assert [
        e["status"]
        for e in double.get("/_test/requests", query_string={"method": "POST"}).get_json()[
            "requests"
        ]
    ] == [502, 201]


def test_after_commit_on_a_delete_deletes(double):
    agent = double.post("/agents", json=VALID_AGENT).get_json()["agent"]
    add_fault(
        double, method="DELETE", path="/agents/{id}", status=500, after_commit=True, retry_after=1
    )
    response = double.delete(f"/agents/{agent['id']}")
    assert (response.status_code, response.headers["Retry-After"]) == (500, "1")
    assert double.get(f"/agents/{agent['id']}").status_code == 404


def test_faults_are_per_namespace(double, in_namespace):
    add_fault(in_namespace("flaky"), method="GET", path="/agents", status=500, times=-1)
    assert double.get("/agents").status_code == 200
    assert in_namespace("steady").get("/agents").status_code == 200
    assert in_namespace("flaky").get("/agents").status_code == 500
    assert double.get("/_test/faults").get_json() == {"faults": []}
    in_namespace("steady").delete("/_test/faults")
    assert in_namespace("flaky").get("/agents").status_code == 500


def test_with_a_url_prefix_faults_name_the_prefixed_path(make_app):
    client = make_app(TEST_MODE=True, URL_PREFIX="/api/v1").test_client()
    refused = client.post("/_test/faults", json={"method": "GET", "path": "/agents", "status": 500})
    assert refused.get_json()["error"] == (
        "path must be a path of the API, /api/v1/assistants or /api/v1/agents or below, as the "
        "client sends it (such as /api/v1/assistants/{id})."
    )
    add_fault(client, method="GET", path="/api/v1/agents", status=500)
    assert client.get("/api/v1/agents").status_code == 500


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"path": "/agents", "status": 500}, "method is required."),
        (
            {"method": "get", "path": "/agents", "status": 500},
            "method must be one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.",
        ),
        ({"method": "GET", "status": 500}, "path is required."),
        (
            {"method": "GET", "path": "/healthz", "status": 500},
            "path must be a path of the API, /assistants or /agents or below, as the client "
            "sends it (such as /assistants/{id}).",
        ),
        (
            {"method": "GET", "path": "/agents/{name}", "status": 500},
            "path must be a path such as /assistants or /agents/{id}, without a query string.",
        ),
        (
            {"method": "GET", "path": "/agents/" + "{id}" * 16, "status": 500},
            "path must use {id} only as a whole path segment, as in /agents/{id}.",
        ),
        (
            {"method": "GET", "path": "/agents/x{id}", "status": 500},
            "path must use {id} only as a whole path segment, as in /agents/{id}.",
        ),
        (
            {"method": "GET", "path": "/agents/" + "x" * 2041, "status": 500},
            "path must be between 1 and 2048 characters long.",
        ),
        ({"method": "GET", "path": "/agents"}, "status is required."),
        (
            {"method": "GET", "path": "/agents", "status": 200},
            "status must be between 400 and 599.",
        ),
        ({"method": "GET", "path": "/agents", "status": "500"}, "status must be an integer."),
        (
            {"method": "GET", "path": "/agents", "status": 500, "times": 0},
            "times must be at least 1, or -1 for until the fault is deleted.",
        ),
        (
            {"method": "GET", "path": "/agents", "status": 500, "delay_ms": 25_001},
            "delay_ms must be between 0 and 25000.",
        ),
        (
            {"method": "GET", "path": "/agents", "status": 500, "retry_after": -1},
            "retry_after must be between 0 and 86400.",
        ),
        (
            {"method": "GET", "path": "/agents", "status": 500, "code": "Not Snake"},
            "code must be 1 to 64 lowercase letters, digits or underscores.",
        ),
        (
            {"method": "GET", "path": "/agents", "status": 500, "error": ""},
            "error must be between 1 and 1000 characters long.",
        ),
        (
            {"method": "GET", "path": "/agents", "status": 500, "after_commit": "yes"},
            "after_commit must be true or false.",
        ),
        (
            {"method": "GET", "path": "/agents", "status": 500, "times": 1, "count": 2},
            "count is not a known field.",
        ),
    ],
)
def test_a_bad_fault_is_refused_and_nothing_is_added(double, fault, message):
    response = double.post("/_test/faults", json=fault)
    assert response.status_code == 400
    assert response.get_json()["error"] == message
    assert double.get("/_test/faults").get_json() == {"faults": []}


def test_a_fault_body_must_be_json(double):
    response = double.post("/_test/faults", data="method=GET")
    assert (response.status_code, response.get_json()["code"]) == (415, "unsupported_media_type")


def test_a_pattern_of_many_id_segments_is_matched_in_time_proportional_to_the_path(double):
    pattern = "/agents" + "/{id}" * 400
    add_fault(double, method="GET", path=pattern, status=500, times=-1)
    began = time.monotonic()
    misses = [double.get("/agents" + "/abcd" * 399 + "/x/y").status_code for _ in range(20)]
    assert misses == [404] * 20
    assert double.get("/agents" + "/abcd" * 400).status_code == 500
    assert time.monotonic() - began < 5


def test_fault_paths_are_matched_outside_the_write_lock(double, monkeypatch):
    """Every writer of every namespace waits on that lock; a match must not make them wait."""
    from store import current_store
    from testdouble import state

    held_while_matching = []
    match = state.path_matches

    def observed_match(pattern, path):
        held_while_matching.append(current_store().engine.database.in_transaction())
        return match(pattern, path)

    monkeypatch.setattr(state, "path_matches", observed_match)
    add_fault(double, method="GET", path="/agents/{id}/never", status=500, times=3)
    add_fault(double, method="GET", path="/agents", status=503, times=2)
    add_fault(double, method="GET", path="/agents/{id}", status=502, times=-1)

    statuses = [
        double.get("/agents").status_code,
        double.get("/agents/00000000-0000-4000-8000-000000000000").status_code,
        double.get("/agents").status_code,
        double.get("/agents").status_code,
    ]

    assert statuses == [503, 502, 503, 200]
    assert held_while_matching and not any(held_while_matching)
    assert [fault["times"] for fault in double.get("/_test/faults").get_json()["faults"]] == [3, -1]
