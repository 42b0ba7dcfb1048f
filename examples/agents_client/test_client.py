"""The client's tests, run against the Agents API test double from the `agents_api` fixture.

Run in-process:                 pytest examples/agents_client
Against a server you started:
    AGENTS_API_URL=http://127.0.0.1:8000 pytest -n 2 examples/agents_client
"""

import pytest
from client import AgentsApiError, AgentsClient

SUPPORT = {
    "name": "Support",
    "llm_config": {"provider": "openai", "model": "gpt-4o-mini"},
}


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(agents_api, waits):
    # Waits are recorded rather than slept, so Retry-After can be checked without waiting.
    with AgentsClient(agents_api.url, headers=agents_api.headers, sleep=waits.append) as client:
        yield client


def test_an_agent_created_can_be_read_back(client, agents_api):
    agent = client.create_agent(**SUPPORT)
    assert client.get_agent(agent["id"]) == agent
    assert agent["llm_config"]["temperature"] == 0.7  # the service fills in defaults

    [create] = agents_api.requests("POST", "/agents")
    assert create["body"] == SUPPORT
    assert create["headers"]["Idempotency-Key"]


def test_a_create_is_retried_after_503s_waiting_as_retry_after_asks(client, agents_api, waits):
    agents_api.fail("POST", "/agents", status=503, times=2, retry_after=3)
    agent = client.create_agent(**SUPPORT)

    assert waits == [3.0, 3.0]
    attempts = agents_api.requests("POST", "/agents")
    assert [attempt["status"] for attempt in attempts] == [503, 503, 201]
    assert len({attempt["headers"]["Idempotency-Key"] for attempt in attempts}) == 1
    assert client.list_agents() == [agent]


def test_a_lost_create_response_does_not_make_a_second_agent(client, agents_api):
    agents_api.fail("POST", "/agents", status=502, after_commit=True)
    agent = client.create_agent(**SUPPORT)

    assert client.list_agents() == [agent]
    assert [a["status"] for a in agents_api.requests("POST", "/agents")] == [502, 201]


def test_a_lost_delete_response_counts_as_deleted(client, agents_api):
    [agent] = agents_api.load([{"id": "00000000-0000-4000-8000-0000000000aa", **SUPPORT}])
    agents_api.fail("DELETE", "/agents/{id}", status=500, after_commit=True)
    client.delete_agent(agent["id"])

    assert client.list_agents() == []
    assert [a["status"] for a in agents_api.requests("DELETE", "/agents/{id}")] == [500, 404]


def test_a_delete_of_an_unknown_agent_is_still_an_error(client):
    with pytest.raises(AgentsApiError) as refused:
        client.delete_agent("00000000-0000-4000-8000-000000000000")
    assert (refused.value.status, refused.value.code) == (404, "not_found")


def test_the_client_gives_up_after_its_retries(client, agents_api):
    [agent] = agents_api.load([SUPPORT])
    agents_api.fail("GET", "/agents/{id}", status=503, times=-1)
    with pytest.raises(AgentsApiError) as refused:
        client.get_agent(agent["id"])
    assert refused.value.status == 503
    assert len(agents_api.requests("GET")) == 4


def test_a_validation_error_is_raised_with_the_services_messages_and_not_retried(
    client, agents_api
):
    with pytest.raises(AgentsApiError) as refused:
        client.create_agent(name="", max_duration_seconds=0)
    assert refused.value.code == "validation_error"
    assert refused.value.details == [
        "name must not be blank.",
        "max_duration_seconds must be between 1 and 86400.",
    ]
    assert len(agents_api.requests()) == 1


def test_an_update_is_stamped_by_the_frozen_clock(client, agents_api):
    agents_api.freeze("2025-12-13T10:00:00.000Z")
    agent = client.create_agent(**SUPPORT)
    agents_api.freeze("2025-12-13T10:05:00.000Z")
    updated = client.update_agent(agent["id"], first_message="Hello!")

    assert (updated["created_at"], updated["updated_at"]) == (
        "2025-12-13T10:00:00.000Z",
        "2025-12-13T10:05:00.000Z",
    )


def test_ids_repeat_under_the_same_seed(client, agents_api):
    agents_api.reset(seed=7)
    first = client.create_agent(**SUPPORT)["id"]
    agents_api.reset(seed=7)
    assert client.create_agent(**SUPPORT)["id"] == first


def test_every_test_starts_from_an_empty_service(client, agents_api):
    assert client.list_agents() == []
    assert agents_api.requests() == [agents_api.requests()[0]]  # only the list just made
    assert agents_api.faults() == []
