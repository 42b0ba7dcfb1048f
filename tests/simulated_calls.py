"""What the tests of simulated calls share: agents whose URLs point at a local receiver, a call
through the test client, and the platform's signature computed without the service's code."""

import copy
import hashlib
import hmac

EVENTS = ["assistant-request", "tool-calls", "status-update", "end-of-call-report"]
SECRET = "whsec-agent-secret"
LLM = {"provider": "openai", "model": "gpt-4o-mini"}


def agent_fields(receiver, path="/hook", events=EVENTS, tools=(), **fields):
    """An agent that sends every event to the receiver at `path`, signed with SECRET."""
    return {
        "name": "Support",
        "webhook_url": receiver.url_for(path),
        "webhook_secret": SECRET,
        "webhook_events": list(events),
        "llm_config": {**LLM, "tools": list(tools)},
        **fields,
    }


def create(client, **fields):
    """POST an agent; returns it as the API answered."""
    response = client.post("/agents", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["agent"]


def store_with_tool_secret(client, fields, tool_name, secret):
    """Create, through the API, an agent whose tool `tool_name` has a `server.secret`; its id."""
    fields = copy.deepcopy(fields)
    for tool in fields["llm_config"]["tools"]:
        if tool["function"]["name"] == tool_name:
            tool["server"]["secret"] = secret
    response = client.post("/agents", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["agent"]["id"]


def simulate(client, agent_id, status=201, headers=None, **fields):
    """POST /_test/calls; returns the call (or the error body when `status` is not 201)."""
    response = client.post(
        "/_test/calls", json={"assistant_id": agent_id, **fields}, headers=headers
    )
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    return body["call"] if status == 201 else body


def platform_signature(secret, timestamp, body):
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<raw body>`, as section 8 defines it."""
    content = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def tool(name, url=None, **extra):
    """A flat tool, with its own URL when given."""
    return {
        "name": name,
        "description": f"The {name} tool.",
        **({"url": url} if url else {}),
        **extra,
    }
