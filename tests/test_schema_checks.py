"""A tool's JSON Schema gets the same verdict every time it is sent, however often it is seen."""

import pytest

from tests.conftest import VALID_AGENT

VALID_PARAMETERS = {"type": "object", "properties": {"department": {"type": "string"}}}
INVALID_PARAMETERS = {"type": "object", "properties": {"department": {"type": "strang"}}}


def agent_with_parameters(parameters):
    tool = {"type": "function", "function": {"name": "transfer_call", "parameters": parameters}}
    return {**VALID_AGENT, "llm_config": {**VALID_AGENT["llm_config"], "tools": [tool]}}


@pytest.mark.parametrize(
    "first", [VALID_PARAMETERS, INVALID_PARAMETERS], ids=["valid first", "invalid first"]
)
def test_a_schema_is_judged_alike_on_every_request(client, first):
    statuses = []
    for parameters in (
        first,
        VALID_PARAMETERS,
        INVALID_PARAMETERS,
        VALID_PARAMETERS,
        INVALID_PARAMETERS,
    ):
        response = client.post("/agents", json=agent_with_parameters(parameters))
        statuses.append(response.status_code)
        if response.status_code == 400:
            assert list(response.get_json()["fields"]) == ["llm_config.tools.0.function.parameters"]
    assert statuses[1:] == [201, 400, 201, 400]


def test_an_invalid_schema_gets_the_same_message_each_time(client):
    messages = [
        client.post("/agents", json=agent_with_parameters(INVALID_PARAMETERS)).get_json()["error"]
        for _ in range(3)
    ]
    assert len(set(messages)) == 1
    assert "must be a valid JSON Schema" in messages[0]


def test_a_stored_tool_whose_schema_was_seen_before_still_patches(client, create_agent):
    agent = create_agent(**agent_with_parameters(VALID_PARAMETERS))
    for round_number in range(3):
        response = client.patch(f"/agents/{agent['id']}", json={"name": f"Renamed {round_number}"})
        assert response.status_code == 200
        assert (
            response.get_json()["agent"]["llm_config"]["tools"][0]["function"]["parameters"]
            == VALID_PARAMETERS
        )
