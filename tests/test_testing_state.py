"""Test mode's state routes: reset and seeded ids, the frozen clock, fixtures and snapshots."""

import json
import re
import sqlite3
from contextlib import closing

import pytest

from config import ConfigError
from tests.conftest import VALID_AGENT

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NOON = "2025-12-13T12:00:00.000Z"


def create(client, **overrides):
    response = client.post("/agents", json={**VALID_AGENT, **overrides})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["agent"]


def ids_after_seeding(client, seed, count=3):
    assert client.post("/_test/reset", json={"seed": seed}).get_json() == {"success": True}
    return [create(client)["id"] for _ in range(count)]


def test_reset_deletes_agents_idempotency_records_journal_faults_and_clock(double):
    create(double, name="Before", webhook_secret="s3cret-value")
    double.post("/agents", json=VALID_AGENT, headers={"Idempotency-Key": "k1"})
    double.post("/_test/faults", json={"method": "GET", "path": "/agents/{id}", "status": 500})
    double.put("/_test/clock", json={"now": NOON})

    assert double.post("/_test/reset").get_json() == {"success": True}

    assert double.get("/agents").get_json()["agents"] == []
    assert double.get("/_test/faults").get_json() == {"faults": []}
    assert [entry["path"] for entry in double.get("/_test/requests").get_json()["requests"]] == [
        "/agents"
    ]  # only the list just made
    again = double.post("/agents", json=VALID_AGENT, headers={"Idempotency-Key": "k1"})
    assert "Idempotent-Replayed" not in again.headers
    assert again.get_json()["agent"]["created_at"] != NOON


def test_the_same_seed_gives_the_same_ids_twice(double):
    first = ids_after_seeding(double, 42)
    second = ids_after_seeding(double, 42)
    assert first == second
    assert len(set(first)) == 3
    assert all(UUID4.match(agent_id) for agent_id in first)


def test_seeded_ids_are_lowercase_uuid4_and_differ_between_seeds(double):
    assert ids_after_seeding(double, 1) != ids_after_seeding(double, 2)
    assert all(UUID4.match(agent_id) for agent_id in ids_after_seeding(double, -7, count=20))


def test_seeded_ids_do_not_depend_on_the_namespace_or_what_else_happened(double, in_namespace):
    seeded = ids_after_seeding(double, 42)
    other = in_namespace("other")
    other.post("/_test/reset", json={"seed": 42})
    other.get("/agents")
    create(double)  # the default namespace's counter moves on; the other's does not
    assert [create(other)["id"] for _ in range(3)] == seeded


def test_a_reset_without_seed_makes_ids_random_again(double):
    seeded = ids_after_seeding(double, 42)
    double.post("/_test/reset")
    assert [create(double)["id"] for _ in range(3)] != seeded


def test_fixtures_take_seeded_ids_too(double):
    seeded = ids_after_seeding(double, 5, count=2)
    double.post("/_test/reset", json={"seed": 5})
    loaded = double.post("/_test/fixtures", json={"agents": [{"name": "a"}, {"name": "b"}]})
    assert [agent["id"] for agent in loaded.get_json()["agents"]] == seeded


def test_an_idempotent_replay_does_not_spend_a_seeded_id(double):
    seeded = ids_after_seeding(double, 9, count=2)
    double.post("/_test/reset", json={"seed": 9})
    headers = {"Idempotency-Key": "once"}
    first = double.post("/agents", json=VALID_AGENT, headers=headers).get_json()["agent"]
    double.post("/agents", json=VALID_AGENT, headers=headers)
    assert [first["id"], create(double)["id"]] == seeded


def test_a_seeded_id_already_taken_by_a_fixture_is_skipped(double):
    seeded = ids_after_seeding(double, 1, count=4)
    double.post("/_test/reset", json={"seed": 1})
    fixture = {"id": seeded[0], "name": "Fixture with the first seeded id"}
    assert double.post("/_test/fixtures", json={"agents": [fixture]}).status_code == 201

    created = [create(double)["id"] for _ in range(3)]

    assert created == seeded[1:]
    listed = {agent["id"] for agent in double.get("/agents").get_json()["agents"]}
    assert listed == set(seeded)


def test_fixtures_without_ids_skip_the_seeded_ids_of_fixtures_beside_them(double):
    seeded = ids_after_seeding(double, 3, count=3)
    double.post("/_test/reset", json={"seed": 3})
    agents = [{"name": "Gets an id"}, {"id": seeded[0], "name": "Brings the first"}]

    response = double.post("/_test/fixtures", json={"agents": agents})

    assert response.status_code == 201, response.get_json()
    assert [agent["id"] for agent in response.get_json()["agents"]] == [seeded[1], seeded[0]]
    assert create(double)["id"] == seeded[2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"seed": "42"}, "seed must be an integer."),
        ({"seed": 1.5}, "seed must be an integer."),
        ({"seed": True}, "seed must be an integer."),
        ({"seed": 2**63}, f"seed must be between {-(2**63)} and {2**63 - 1}."),
        ({"sead": 1}, "sead is not a known field."),
    ],
)
def test_a_bad_reset_body_is_refused_and_changes_nothing(double, body, message):
    agent = create(double)
    response = double.post("/_test/reset", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == message
    assert response.get_json()["code"] == "validation_error"
    assert double.get(f"/agents/{agent['id']}").status_code == 200


def test_a_reset_body_that_is_not_json_is_refused(double):
    response = double.post("/_test/reset", data="seed=1", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"


def test_a_frozen_clock_gives_exact_timestamps(double):
    assert double.put("/_test/clock", json={"now": "2025-12-13T10:00:00.000Z"}).get_json() == {
        "now": "2025-12-13T10:00:00.000Z"
    }
    agent = create(double)
    assert (agent["created_at"], agent["updated_at"]) == ("2025-12-13T10:00:00.000Z",) * 2

    double.put("/_test/clock", json={"now": "2025-12-14T08:30:15.250Z"})
    patched = double.patch(f"/agents/{agent['id']}", json={"name": "Renamed"}).get_json()["agent"]
    assert patched["created_at"] == "2025-12-13T10:00:00.000Z"
    assert patched["updated_at"] == "2025-12-14T08:30:15.250Z"
    assert double.get(f"/agents/{agent['id']}").get_json() == {"agent": patched}


def test_deleting_the_clock_lets_it_run(double):
    double.put("/_test/clock", json={"now": "2001-01-01T00:00:00.000Z"})
    assert double.delete("/_test/clock").get_json() == {"success": True}
    assert create(double)["created_at"] > "2020"


def test_frozen_clocks_are_per_namespace(double, in_namespace):
    in_namespace("frozen").put("/_test/clock", json={"now": "2001-01-01T00:00:00.000Z"})
    assert create(in_namespace("frozen"))["created_at"] == "2001-01-01T00:00:00.000Z"
    assert create(double)["created_at"] > "2020"


@pytest.mark.parametrize(
    "now",
    [
        "2025-12-13T10:00:00Z",
        "2025-12-13 10:00:00.000Z",
        "2025-13-13T10:00:00.000Z",
        "2025-12-13T10:00:00.000+01:00",
        "yesterday",
        "",
    ],
)
def test_a_clock_in_another_format_is_refused(double, now):
    response = double.put("/_test/clock", json={"now": now})
    assert response.status_code == 400
    assert response.get_json()["error"] == (
        "now must be a UTC timestamp with milliseconds, such as 2025-12-13T10:00:00.000Z."
    )


def test_a_clock_needs_now(double):
    response = double.put("/_test/clock", json={})
    assert response.get_json()["error"] == "now is required."


def full_fixture(**overrides):
    return {
        **VALID_AGENT,
        "id": "00000000-0000-4000-8000-000000000001",
        "created_at": "2024-01-01T09:00:00.000Z",
        "updated_at": "2024-02-01T09:00:00.000Z",
        "webhook_secret": "fixture-secret",
        **overrides,
    }


def test_fixtures_are_loaded_as_given_and_served_like_any_agent(double):
    response = double.post("/_test/fixtures", json={"agents": [full_fixture(), {"name": "Plain"}]})
    assert response.status_code == 201
    loaded = response.get_json()["agents"]
    first = loaded[0]
    assert first["id"] == "00000000-0000-4000-8000-000000000001"
    assert (first["created_at"], first["updated_at"]) == (
        "2024-01-01T09:00:00.000Z",
        "2024-02-01T09:00:00.000Z",
    )
    assert first["webhook_secret_set"] is True
    assert "webhook_secret" not in first
    assert first["max_duration_seconds"] == 600
    assert loaded[1]["created_at"] == loaded[1]["updated_at"]
    assert double.get(f"/agents/{first['id']}").get_json() == {"agent": first}
    assert "fixture-secret" not in response.get_data(as_text=True)


def test_fixtures_with_one_bad_agent_load_none(double):
    agents = [{"name": f"Good {index}"} for index in range(5)]
    agents[3] = {
        "name": " ",
        "max_duration_seconds": 0,
        "llm_config": {"provider": "x"},
        "id": "NOT-A-UUID",
    }
    response = double.post("/_test/fixtures", json={"agents": agents})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [
        "agents.3.id",
        "agents.3.name",
        "agents.3.max_duration_seconds",
        "agents.3.llm_config.provider",
        "agents.3.llm_config.model",
    ]
    assert body["fields"]["agents.3.name"] == ["agents.3.name must not be blank."]
    assert double.get("/agents").get_json()["agents"] == []


@pytest.mark.parametrize(
    ("agent", "field", "message"),
    [
        ({"webhook_secret_set": True}, "agents.0.webhook_secret_set", "is read-only."),
        (
            {"id": "00000000-0000-4000-8000-00000000000A"},
            "agents.0.id",
            "must be a lowercase UUID such as 2f1c0a4e-6f7b-4d8e-9a51-3c2b1d0e9f87.",
        ),
        (
            {"created_at": "2024-01-01"},
            "agents.0.created_at",
            "must be a UTC timestamp with milliseconds, such as 2025-12-13T10:00:00.000Z.",
        ),
        (
            {"updated_at": "2024-01-01T00:00:00.000Z"},
            "agents.0.updated_at",
            "needs created_at beside it.",
        ),
        (
            {"created_at": "2024-02-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"},
            "agents.0.updated_at",
            "must not be before created_at.",
        ),
        (
            {"webhook_secret": "short"},
            "agents.0.webhook_secret",
            "must be between 8 and 256 characters long.",
        ),
        (
            {
                "llm_config": {"provider": "xai_realtime", "model": "m"},
                "tts_config": {"provider": "openai", "voice_id": "alloy", "language": "en"},
            },
            "agents.0.tts_config",
            "must be null when llm_config.provider is xai_realtime",
        ),
    ],
)
def test_every_rule_of_an_agent_applies_to_fixtures(double, agent, field, message):
    response = double.post("/_test/fixtures", json={"agents": [{"name": "N", **agent}]})
    assert response.status_code == 400
    assert response.get_json()["fields"][field][0].startswith(f"{field} {message}")
    assert double.get("/agents").get_json()["agents"] == []


def test_fixture_ids_must_be_unique_in_the_body_and_free_in_the_namespace(double, in_namespace):
    same = full_fixture()
    response = double.post("/_test/fixtures", json={"agents": [same, {"name": "x"}, same]})
    assert response.get_json()["fields"] == {
        "agents.2.id": ["agents.2.id must be unique; agents.0 has it too."]
    }
    assert double.post("/_test/fixtures", json={"agents": [same]}).status_code == 201
    taken = double.post("/_test/fixtures", json={"agents": [{"name": "new"}, same]})
    assert taken.status_code == 400
    assert taken.get_json()["fields"] == {
        "agents.1.id": [
            "agents.1.id is already the id of a stored agent; reset the namespace or choose "
            "another id."
        ]
    }
    assert len(double.get("/agents").get_json()["agents"]) == 1
    # Another namespace is another store: the same id is free there.
    assert in_namespace("other").post("/_test/fixtures", json={"agents": [same]}).status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "agents is required."),
        ({"agents": {}}, "agents must be an array."),
        ({"agents": ["x"]}, "agents.0 must be an object."),
        ({"agents": [], "extra": 1}, "extra is not a known field."),
    ],
)
def test_a_malformed_fixtures_body_is_refused(double, body, message):
    response = double.post("/_test/fixtures", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == message


def test_a_snapshot_is_restored_exactly(double):
    double.post("/_test/reset", json={"seed": 3})
    double.put("/_test/clock", json={"now": NOON})
    kept = create(double, webhook_secret="keep-this-secret")
    replayed = double.post("/agents", json={"name": "Idem"}, headers={"Idempotency-Key": "k"})
    saved = double.post("/_test/snapshots", json={"name": "baseline"})
    assert saved.status_code == 201
    assert saved.get_json() == {"snapshot": {"name": "baseline", "agents": 2}}
    before = double.get("/agents").get_json()
    etag = double.get(f"/agents/{kept['id']}").headers["ETag"]

    double.delete(f"/agents/{kept['id']}")
    double.put("/_test/clock", json={"now": "2030-01-01T00:00:00.000Z"})
    changed = create(double, name="Added later")
    double.patch(f"/agents/{replayed.get_json()['agent']['id']}", json={"name": "Changed"})

    assert double.post("/_test/snapshots/baseline/restore").get_json() == {"success": True}

    assert double.get("/agents").get_json() == before
    assert double.get(f"/agents/{kept['id']}").headers["ETag"] == etag
    # The secret, the idempotency record, the clock and the id sequence came back too.
    assert double.patch(f"/agents/{kept['id']}", json={}).get_json()["agent"]["webhook_secret_set"]
    again = double.post("/agents", json={"name": "Idem"}, headers={"Idempotency-Key": "k"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == replayed.get_json()
    assert create(double, name="Added later") == changed | {"created_at": NOON, "updated_at": NOON}


def test_a_snapshot_survives_a_reset_and_is_per_namespace(double, in_namespace):
    create(double)
    double.post("/_test/snapshots", json={"name": "one"})
    double.post("/_test/reset")
    assert double.post("/_test/snapshots/one/restore").status_code == 200
    assert len(double.get("/agents").get_json()["agents"]) == 1
    missing = in_namespace("other").post("/_test/snapshots/one/restore")
    assert missing.status_code == 404


def test_saving_a_snapshot_again_replaces_it(double):
    double.post("/_test/snapshots", json={"name": "s"})
    create(double)
    assert double.post("/_test/snapshots", json={"name": "s"}).get_json()["snapshot"]["agents"] == 1
    double.post("/_test/reset")
    double.post("/_test/snapshots/s/restore")
    assert len(double.get("/agents").get_json()["agents"]) == 1


@pytest.mark.parametrize("name", ["unknown", "not%20valid", "x" * 65])
def test_restoring_an_unknown_snapshot_is_not_found_and_changes_nothing(double, name):
    agent = create(double)
    response = double.post(f"/_test/snapshots/{name}/restore")
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"
    assert double.get(f"/agents/{agent['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "name is required."),
        (
            {"name": "has space"},
            "name must be 1 to 64 letters, digits, underscores, dots or hyphens.",
        ),
        ({"name": 5}, "name must be a string."),
    ],
)
def test_a_bad_snapshot_name_is_refused(double, body, message):
    response = double.post("/_test/snapshots", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == message


def test_a_snapshot_keeps_the_rows_byte_for_byte(double, database_path):
    create(double, name="Zoë ✓")
    double.post("/_test/snapshots", json={"name": "bytes"})
    rows = "SELECT * FROM agent ORDER BY id"
    with closing(sqlite3.connect(database_path)) as connection, connection:
        before = connection.execute(rows).fetchall()
    double.post("/_test/reset")
    double.post("/_test/snapshots/bytes/restore")
    with closing(sqlite3.connect(database_path)) as connection, connection:
        assert connection.execute(rows).fetchall() == before
        stored = connection.execute("SELECT state FROM snapshot").fetchone()[0]
    assert "Zoë ✓" in json.loads(stored)["agent"][0]["document"]


def test_a_fixtures_file_is_loaded_at_start_once_per_database_and_content(make_app, tmp_path):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({"agents": [full_fixture(), {"name": "Second"}]}))
    client = make_app(TEST_MODE=True, FIXTURES=str(fixtures)).test_client()
    names = [agent["name"] for agent in client.get("/agents").get_json()["agents"]]
    assert sorted(names) == [VALID_AGENT["name"], "Second"]

    # A restart, or another worker starting, finds the same file already loaded.
    again = make_app(TEST_MODE=True, FIXTURES=str(fixtures)).test_client()
    assert len(again.get("/agents").get_json()["agents"]) == 2

    fixtures.write_text(json.dumps({"agents": [{"name": "Third"}]}))
    changed = make_app(TEST_MODE=True, FIXTURES=str(fixtures)).test_client()
    assert len(changed.get("/agents").get_json()["agents"]) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"agents": [{"name": "ok"}, {"name": ""}]}',
            "is not a valid fixtures file. agents.1.name must not be blank.",
        ),
        ("[]", "is not a valid fixtures file. must be an object."),
        ("{not json", "is not a JSON object."),
    ],
)
def test_a_bad_fixtures_file_stops_the_start_and_loads_nothing(
    make_app, tmp_path, content, message
):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(content)
    with pytest.raises(ConfigError) as refused:
        make_app(TEST_MODE=True, FIXTURES=str(fixtures))
    assert str(refused.value).startswith(f"AGENTS_FIXTURES: {fixtures} {message}")
    assert make_app(TEST_MODE=True).test_client().get("/agents").get_json()["agents"] == []


def test_a_missing_fixtures_file_stops_the_start(make_app, tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.json cannot be read \(No such file"):
        make_app(TEST_MODE=True, FIXTURES=str(tmp_path / "missing.json"))
