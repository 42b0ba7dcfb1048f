"""Test mode on and off: the /_test routes, namespaces, keys, settings, schema and document."""

import json
import sqlite3
from contextlib import closing

import pytest

import migrations
from app import create_app
from config import ConfigError, load_settings
from tests.conftest import VALID_AGENT

TEST_ROUTES = [
    ("post", "/_test/reset"),
    ("post", "/_test/fixtures"),
    ("get", "/_test/requests"),
    ("delete", "/_test/requests"),
    ("post", "/_test/faults"),
    ("get", "/_test/faults"),
    ("delete", "/_test/faults"),
    ("post", "/_test/snapshots"),
    ("post", "/_test/snapshots/saved/restore"),
    ("put", "/_test/clock"),
    ("delete", "/_test/clock"),
]


@pytest.mark.parametrize(("method", "path"), TEST_ROUTES)
def test_without_test_mode_every_test_route_is_not_found_in_the_error_shape(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 404
    assert response.get_json() == {
        "error": f"No route matches {path}.",
        "code": "not_found",
        "type": "not_found",
    }


def test_without_test_mode_the_namespace_header_is_ignored(client):
    created = client.post("/agents", json=VALID_AGENT, headers={"X-Agents-Namespace": "elsewhere"})
    assert created.status_code == 201
    listed = client.get("/agents").get_json()["agents"]
    assert [agent["id"] for agent in listed] == [created.get_json()["agent"]["id"]]
    # Not even an invalid name is looked at.
    assert client.get("/agents", headers={"X-Agents-Namespace": "no spaces"}).status_code == 200
    assert "X-Agents-Worker" not in created.headers


def test_without_test_mode_no_test_mode_hook_runs_on_any_request(app, make_app):
    hooks = [
        hook
        for registry in (app.before_request_funcs, app.after_request_funcs)
        for hooks in registry.values()
        for hook in hooks
    ]
    assert hooks, "the service always has request hooks"
    assert [hook for hook in hooks if hook.__module__ == "testing_hooks"] == []
    assert "testing" not in app.blueprints
    assert "testing" in make_app(TEST_MODE=True).blueprints


def test_the_test_routes_are_not_under_the_url_prefix(make_app):
    client = make_app(TEST_MODE=True, URL_PREFIX="/api/v1").test_client()
    assert client.post("/_test/reset").status_code == 200
    assert client.post("/api/v1/_test/reset").status_code == 404
    assert client.post("/api/v1/agents", json=VALID_AGENT).status_code == 201


def test_with_api_keys_the_test_routes_need_a_key(make_app):
    client = make_app(TEST_MODE=True, API_KEYS="k-one,k-two").test_client()
    refused = client.post("/_test/reset", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert refused.get_json()["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/_test/reset", headers={"Authorization": "Bearer k-two"}).status_code == 200


def test_with_api_keys_but_no_test_mode_the_test_routes_are_simply_absent(make_app):
    client = make_app(API_KEYS="k-one").test_client()
    assert client.post("/_test/reset").status_code == 404


def test_two_namespaces_never_see_each_others_agents(double, in_namespace):
    red, blue = in_namespace("red"), in_namespace("blue")
    red_agent = red.post("/agents", json=VALID_AGENT).get_json()["agent"]
    blue_agent = blue.post("/agents", json={"name": "Blue"}).get_json()["agent"]

    assert [a["id"] for a in red.get("/agents").get_json()["agents"]] == [red_agent["id"]]
    assert [a["id"] for a in blue.get("/agents").get_json()["agents"]] == [blue_agent["id"]]
    assert double.get("/agents").get_json()["agents"] == []
    assert blue.get(f"/agents/{red_agent['id']}").status_code == 404
    assert blue.patch(f"/agents/{red_agent['id']}", json={"name": "x"}).status_code == 404
    assert blue.delete(f"/agents/{red_agent['id']}").status_code == 404
    assert red.get(f"/agents/{red_agent['id']}").get_json() == {"agent": red_agent}


def test_a_reset_in_one_namespace_leaves_the_others_alone(in_namespace):
    red, blue = in_namespace("red"), in_namespace("blue")
    red.post("/agents", json=VALID_AGENT)
    blue.post("/agents", json=VALID_AGENT)
    assert red.post("/_test/reset").status_code == 200
    assert red.get("/agents").get_json()["agents"] == []
    assert len(blue.get("/agents").get_json()["agents"]) == 1
    assert len(blue.get("/_test/requests").get_json()["requests"]) == 2


def test_the_same_idempotency_key_in_two_namespaces_makes_two_agents(in_namespace):
    headers = {"Idempotency-Key": "same-key"}
    red = in_namespace("red").post("/agents", json=VALID_AGENT, headers=headers)
    blue = in_namespace("blue").post("/agents", json=VALID_AGENT, headers=headers)
    assert red.get_json()["agent"]["id"] != blue.get_json()["agent"]["id"]
    assert "Idempotent-Replayed" not in blue.headers


def test_no_namespace_header_means_the_default_namespace(double, in_namespace):
    agent = double.post("/agents", json=VALID_AGENT).get_json()["agent"]
    listed = in_namespace("default").get("/agents").get_json()["agents"]
    assert [a["id"] for a in listed] == [agent["id"]]


@pytest.mark.parametrize("name", ["", "has space", "slash/y", "ü", "x" * 65, "semi;colon"])
def test_an_invalid_namespace_is_a_validation_error_naming_the_header(in_namespace, name):
    response = in_namespace(name).post("/agents", json=VALID_AGENT)
    assert response.status_code == 400
    message = "X-Agents-Namespace must be 1 to 64 letters, digits, underscores, dots or hyphens."
    assert response.get_json() == {
        "error": message,
        "code": "validation_error",
        "type": "validation_error",
        "param": "X-Agents-Namespace",
        "details": [message],
        "fields": {"X-Agents-Namespace": [message]},
    }
    assert in_namespace(name).post("/_test/reset").status_code == 400


@pytest.mark.parametrize("name", ["a", "A-Z_0.9", "x" * 64, "gw0"])
def test_valid_namespaces_are_accepted(in_namespace, name):
    assert in_namespace(name).post("/agents", json=VALID_AGENT).status_code == 201


def test_health_and_docs_do_not_look_at_the_namespace(in_namespace):
    assert in_namespace("bad name").get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("0", False), ("false", False), ("", False)],
)
def test_the_test_mode_setting_reads_one_and_true_as_on(raw, expected):
    assert load_settings({"AGENTS_TEST_MODE": raw})["TEST_MODE"] is expected


def test_an_unreadable_test_mode_setting_stops_the_start():
    with pytest.raises(
        ConfigError, match=r"AGENTS_TEST_MODE must be 1 or 0 \(or true or false\), not 'yes please'"
    ):
        load_settings({"AGENTS_TEST_MODE": "yes please"})


def test_test_mode_is_off_by_default():
    assert load_settings({})["TEST_MODE"] is False


def test_a_fixtures_file_without_test_mode_stops_the_start(make_app, tmp_path):
    with pytest.raises(ConfigError, match="AGENTS_FIXTURES needs AGENTS_TEST_MODE=1"):
        make_app(FIXTURES=str(tmp_path / "fixtures.json"))


def test_a_version_1_database_gains_the_test_mode_tables_and_keeps_its_agents(
    database_path, make_app
):
    path = database_path
    client = make_app().test_client()
    agent = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    with closing(sqlite3.connect(path)) as connection, connection:
        for table in (
            "frozen_clock",
            "id_sequence",
            "journal_entry",
            "fault",
            "snapshot",
            "fixture_file",
        ):
            connection.execute(f"DROP TABLE {table}")
        # And what a later release added.
        connection.execute("DROP TABLE rate_limit_window")
        connection.execute("ALTER TABLE agent DROP COLUMN tool_secrets")
        connection.execute("DROP TABLE agent_search")
        connection.execute("DROP TABLE agent_search_pending")
        connection.execute("PRAGMA user_version = 1")

    upgraded = create_app({"DATABASE_URL": f"sqlite:///{path}", "TEST_MODE": True}).test_client()
    assert upgraded.get(f"/agents/{agent['id']}").get_json() == {"agent": agent}
    assert upgraded.put("/_test/clock", json={"now": "2025-12-13T10:00:00.000Z"}).status_code == 200
    with closing(sqlite3.connect(path)) as connection, connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (
            migrations.latest_version(),
        )


def test_the_openapi_document_shows_the_test_routes_only_in_test_mode(client, double):
    plain = client.get("/openapi.json").get_json()
    assert not [path for path in plain["paths"] if path.startswith("/_test")]
    assert "X-Agents-Namespace" not in json.dumps(plain)

    document = double.get("/openapi.json").get_json()
    test_paths = {
        path: set(ops) - {"parameters", "servers"}
        for path, ops in document["paths"].items()
        if path.startswith("/_test")
    }
    assert test_paths == {
        "/_test/reset": {"post"},
        "/_test/fixtures": {"post"},
        "/_test/requests": {"get", "delete"},
        "/_test/faults": {"post", "get", "delete"},
        "/_test/snapshots": {"post"},
        "/_test/snapshots/{name}/restore": {"post"},
        "/_test/clock": {"put", "delete"},
        "/_test/calls": {"post", "get"},
        "/_test/calls/{call_id}": {"get"},
        "/_test/deliveries": {"get", "delete"},
    }
    assert document["paths"]["/_test/reset"]["servers"] == [{"url": "/"}]
    fault = document["components"]["schemas"]["Fault"]
    assert fault["required"] == ["method", "path", "status"]
    assert fault["properties"]["status"] == {"type": "integer", "minimum": 400, "maximum": 599}
    namespace_parameters = [
        p for p in document["paths"]["/agents"]["parameters"] if p["name"] == "X-Agents-Namespace"
    ]
    assert namespace_parameters[0]["schema"]["pattern"] == "^[A-Za-z0-9_.-]{1,64}$"
