"""Configs and tools validated once are remembered by their text (remembered.py): what an
agent is given must not change with what was sent before it."""

import json

from tests.conftest import VALID_AGENT
from tests.test_catalog import acme_agent, minimal_catalog


def test_a_config_valid_under_one_catalog_is_still_refused_under_another(make_app, tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(minimal_catalog()))
    acme = make_app(CATALOG=str(path)).test_client()
    shipped = make_app().test_client()
    for _ in range(2):
        assert acme.post("/assistants", json=acme_agent()).status_code == 201

    refused = shipped.post("/assistants", json=acme_agent())

    assert refused.status_code == 400
    assert "tts_config.provider" in refused.get_json()["fields"]


def test_the_same_config_twice_gives_two_agents_equal_configs_that_change_apart(client):
    first = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    second = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    assert first["llm_config"] == second["llm_config"]

    patched = client.patch(
        f"/agents/{first['id']}",
        json={"llm_config": {"temperature": 1.5}},
        content_type="application/merge-patch+json",
    )

    assert patched.get_json()["agent"]["llm_config"]["temperature"] == 1.5
    again = client.get(f"/agents/{second['id']}").get_json()["agent"]
    assert again["llm_config"] == second["llm_config"]
    third = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    assert third["llm_config"] == second["llm_config"]


def test_an_invalid_config_is_refused_every_time_it_is_sent(client):
    body = {**VALID_AGENT, "llm_config": {**VALID_AGENT["llm_config"], "temperature": 9}}

    answers = [client.post("/agents", json=body) for _ in range(3)]

    assert {answer.status_code for answer in answers} == {400}
    assert len({answer.get_data() for answer in answers}) == 1


def test_a_tool_server_secret_is_stored_every_time_and_never_shown(client):
    tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object"}},
        "server": {"url": "https://tools.example/lookup", "secret": "s3cret-value-1"},
    }
    body = {**VALID_AGENT, "llm_config": {**VALID_AGENT["llm_config"], "tools": [tool]}}

    agents = [client.post("/agents", json=body) for _ in range(2)]

    for answer in agents:
        assert answer.status_code == 201, answer.get_json()
        assert "s3cret-value-1" not in answer.get_data(as_text=True)
        assert answer.get_json()["agent"]["llm_config"]["tools"][0]["server"]["secret_set"]


LOOKUP_TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "Look up.", "parameters": {"type": "object"}},
    "server": {"url": "https://tools.example/lookup"},
}


def with_tools(*tools, **llm_config):
    return {
        **VALID_AGENT,
        "llm_config": {**VALID_AGENT["llm_config"], **llm_config, "tools": list(tools)},
    }


def test_a_remembered_tool_still_counts_towards_unique_names(client):
    assert client.post("/agents", json=with_tools(LOOKUP_TOOL)).status_code == 201

    refused = client.post("/agents", json=with_tools(LOOKUP_TOOL, LOOKUP_TOOL))

    assert refused.status_code == 400
    assert "llm_config.tools.1.function.name" in refused.get_json()["fields"]


def test_a_remembered_tool_is_refused_where_its_agent_is_not_valid(client):
    assert client.post("/agents", json=with_tools(LOOKUP_TOOL)).status_code == 201

    refused = client.post("/agents", json=with_tools(LOOKUP_TOOL, temperature=9))

    assert refused.status_code == 400
    assert list(refused.get_json()["fields"]) == ["llm_config.temperature"]


def test_agents_given_one_remembered_tool_change_it_apart(client):
    first, second = (
        client.post("/agents", json=with_tools(LOOKUP_TOOL, temperature=t)).get_json()["agent"]
        for t in (0.1, 0.2)
    )
    renamed = {**LOOKUP_TOOL, "function": {**LOOKUP_TOOL["function"], "name": "find"}}

    patched = client.patch(f"/agents/{first['id']}", json={"llm_config": {"tools": [renamed]}})

    assert patched.get_json()["agent"]["llm_config"]["tools"][0]["function"]["name"] == "find"
    again = client.get(f"/agents/{second['id']}").get_json()["agent"]
    assert again["llm_config"]["tools"] == second["llm_config"]["tools"]
    assert again["llm_config"]["tools"][0]["function"]["name"] == "lookup"
