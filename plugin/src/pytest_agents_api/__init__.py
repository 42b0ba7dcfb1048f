"""pytest fixtures that run the Agents API service as a test double: `agents_api`.

def test_creates_an_agent(agents_api):
    client = MyClient(agents_api.url, headers=agents_api.headers)
    ...
    assert agents_api.requests("POST", "/agents")[0]["status"] == 201
"""

from pytest_agents_api.client import AgentsApi, TestModeError

__all__ = ["AgentsApi", "TestModeError"]
