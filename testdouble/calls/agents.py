"""The agents a call involves, what its deliveries show of them, and where their events go.

A call starts at a stored agent. Its assistant-request answer may replace that agent for the
rest of the call with another stored one (with overrides) or a transient one; the events after
it follow the resolved agent. Deliveries only ever go to URLs stored on the agents involved.
"""

import json
from typing import NamedTuple

from models import DEFAULT_NAMESPACE, Agent, AgentNotFound
from stored_form import editable_fields, render


class CallAgent(NamedTuple):
    """An agent as a call uses it: what deliveries show, its fields, and its stored id."""

    public: dict  # as every response shows it, without secrets
    fields: dict  # the writable fields, secrets included
    stored_id: str | None  # None for a transient agent


class Route(NamedTuple):
    """Where one delivery goes and the secret that signs it; or, with no url, why nowhere."""

    url: str | None
    secret: str | None
    skipped: str | None = None


def stored(agent_id, namespace=DEFAULT_NAMESPACE):
    """The stored agent with that id; raises AgentNotFound."""
    row = Agent.get_or_none((Agent.namespace == namespace) & (Agent.id == agent_id))
    if row is None:
        raise AgentNotFound(agent_id)
    return CallAgent(
        json.loads(row.document),
        editable_fields(row.document, row.webhook_secret, row.tool_secrets),
        row.id,
    )


def transient(fields):
    """An agent that exists for one call only, from validated fields."""
    return CallAgent(_public(None, fields, None, None), fields, None)


def overridden(agent, fields):
    """A stored agent with its fields replaced by validated `fields`, for one call."""
    public = agent.public
    return CallAgent(
        _public(public["id"], fields, public["created_at"], public["updated_at"]),
        fields,
        agent.stored_id,
    )


def _public(agent_id, fields, created_at, updated_at):
    """The agent as a response would show it: ordered like a stored one, secrets left out."""
    return json.loads(render(agent_id, fields, created_at, updated_at)[0])


def _tools(agent):
    return (agent.get("llm_config") or {}).get("tools") or []


def find_tool(agent, name):
    """The agent's tool called `name` (in either shape), or None."""
    for tool in _tools(agent.fields):
        if tool.get("name", (tool.get("function") or {}).get("name")) == name:
            return tool
    return None


def tool_url(tool):
    """A tool's own URL: `url` in the flat shape, `server.url` in the nested one; or None."""
    return tool.get("url") or (tool.get("server") or {}).get("url")


def tool_secret(tool):
    """The secret that signs deliveries to a tool's own URL, if it has one."""
    return (tool.get("server") or {}).get("secret")


def is_async(tool):
    """Whether the platform calls the tool without waiting for its result."""
    return tool.get("async") is True


class Routing:
    """Where each event of a call goes, once its agent is resolved.

    Events go to the resolved agent's webhook_url, signed with its webhook_secret, if it
    subscribes to them in webhook_events. A resolved agent without a webhook_url (a transient
    one, typically) keeps the called agent's: the server the call started at. A tool with a URL
    of its own gets its tool-calls there, whatever webhook_events says.
    """

    def __init__(self, called, resolved, involved):
        self.resolved = resolved
        self.home = resolved if resolved.fields.get("webhook_url") else called
        self.stored_urls = {url for agent in involved for url in _urls(agent.fields)}

    def event(self, event):
        """The route of a call event other than tool-calls."""
        return self._webhook(self.home, event)

    def tool(self, tool):
        """The route of a tool's tool-calls."""
        url = tool_url(tool)
        if url is None:
            return self._webhook(self.home, "tool-calls")
        if url not in self.stored_urls:
            return Route(None, None, "url_not_stored")
        return Route(url, tool_secret(tool))

    def _webhook(self, agent, event):
        url = agent.fields.get("webhook_url")
        if url is None:
            return Route(None, None, "no_url")
        if event not in agent.fields.get("webhook_events", ()):
            return Route(None, None, "not_subscribed")
        if url not in self.stored_urls:
            return Route(None, None, "url_not_stored")
        return Route(url, agent.fields.get("webhook_secret"))


def first_route(agent, event):
    """Where the first event of a call, before any answer, goes: the called agent's webhook."""
    return Routing(agent, agent, [agent]).event(event)


def _urls(fields):
    urls = [fields.get("webhook_url")]
    urls.extend(tool_url(tool) for tool in _tools(fields))
    return {url for url in urls if url}
