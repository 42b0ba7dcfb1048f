"""pytest fixtures that run the Agents API service as a test double: `agents_api`, and
`webhook_receiver` for the webhooks of the calls it simulates; `sign` and `verify` behave like
the platform SDK's `Webhooks.sign` and `Webhooks.verify`.

def test_creates_an_agent(agents_api):
    client = MyClient(agents_api.url, headers=agents_api.headers)
    ...
    assert agents_api.requests("POST", "/agents")[0]["status"] == 201
"""

from pytest_agents_api.client import AgentsApi, TestModeError
from pytest_agents_api.receiver import ReceivedDelivery, WebhookReceiver
from pytest_agents_api.signatures import HEADERS, WebhookVerificationError, sign, verify

__all__ = [
    "HEADERS",
    "AgentsApi",
    "ReceivedDelivery",
    "TestModeError",
    "WebhookReceiver",
    "WebhookVerificationError",
    "sign",
    "verify",
]
