"""The operator's export and import of agents, through the models and so on every engine.

(Backup and check are each engine's own: SQLite's online backup and integrity check.)
"""

import json

import migrations
from models import Agent, delete_namespace_agents, insert_agents
from schemas import EXPORT_FORMAT
from store import utc_timestamp, write_transaction

EXPORT_VERSION = 1


def export_document(include_secrets=False):
    """Every agent as responses show it, oldest first, in the export file's envelope.

    With `include_secrets` each agent carries its webhook secret too, and each tool server its
    `secret` beside `secret_set`.
    """
    agents = []
    select = (
        Agent.select(Agent.document, Agent.webhook_secret, Agent.tool_secrets)
        .where(Agent.namespace == "default")
        .order_by(Agent.created_at, Agent.id)
    )
    for document, secret, tool_secrets in select.tuples():
        agent = json.loads(document)
        if include_secrets and secret is not None:
            agent["webhook_secret"] = secret
        if include_secrets and tool_secrets is not None:
            tools = agent["llm_config"]["tools"]
            for tool, tool_secret in zip(tools, json.loads(tool_secrets), strict=True):
                if tool_secret is not None:
                    tool["server"]["secret"] = tool_secret
        agents.append(agent)
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc_timestamp(),
        "schema_version": migrations.latest_version(),
        "agents": agents,
    }


def import_agents(agents, replace=False):
    """Store validated agents with their own ids and timestamps: all of them, or none.

    Without `replace`, an id already stored raises AgentIdsTaken; with it, every stored agent
    and idempotency record goes first.
    """
    with write_transaction():
        if replace:
            delete_namespace_agents()
        insert_agents(agents)
    return len(agents)
