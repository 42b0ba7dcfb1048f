"""Export files across releases, and the tool servers' secrets in them.

tests/data/export-release-1.1.json was written by `agents-api export --include-secrets` of
release 1.1.0, before the platform's fields existed. It imports unchanged: every agent keeps
its id, timestamps, values and webhook secret, and each field added since takes its default.
"""

import json
from pathlib import Path

from tests.conftest import LLM_UNSET, STT_UNSET, TTS_UNSET
from tests.test_cli import export_document, invoke, served_agents

RELEASE_1_1_EXPORT = Path(__file__).parent / "data" / "export-release-1.1.json"
TOOL_SECRET = "tool-secret-Battery-Staple-0815"


def as_this_release_shows(agent):
    """A release 1.1 agent with every field added since at its default, written out here."""
    shown = {**agent, "silence_timeout_seconds": None, "gdpr_mode": False}
    for name, unset in (
        ("stt_config", STT_UNSET),
        ("llm_config", LLM_UNSET),
        ("tts_config", TTS_UNSET),
    ):
        if shown[name] is not None:
            shown[name] = {**shown[name], **unset}
    if shown["llm_config"] is not None:
        shown["llm_config"]["tools"] = [
            {**tool, "server": {**tool["server"], "secret_set": False}}
            if "server" in tool
            else tool
            for tool in shown["llm_config"]["tools"]
        ]
    plan = (shown["analysis_plan"] or {}).get("structured_data_plan")
    if plan is not None:
        shown["analysis_plan"] = {
            **shown["analysis_plan"],
            "structured_data_plan": {**plan, "template_id": None},
        }
    shown.pop("webhook_secret", None)
    return shown


def test_a_release_1_1_export_imports_unchanged_with_the_new_fields_at_their_defaults(tmp_path):
    target = tmp_path / "agents.db"
    exported = json.loads(RELEASE_1_1_EXPORT.read_text())

    result = invoke(target, "import", RELEASE_1_1_EXPORT)

    assert result.exit_code == 0, result.output
    assert f"Imported {len(exported['agents'])} agent(s)." in result.stdout
    served = [agent for _, agent in served_agents(target)]
    oldest_first = sorted(served, key=lambda agent: (agent["created_at"], agent["id"]))
    assert oldest_first == [as_this_release_shows(agent) for agent in exported["agents"]]
    again = export_document(target, "--include-secrets")
    secrets = {agent["id"]: agent.get("webhook_secret") for agent in again["agents"]}
    assert secrets == {agent["id"]: agent.get("webhook_secret") for agent in exported["agents"]}


def test_the_release_1_1_file_is_what_that_release_wrote():
    exported = json.loads(RELEASE_1_1_EXPORT.read_text())
    assert exported["format"] == "agents-api-export" and exported["schema_version"] == 3
    for agent in exported["agents"]:
        assert "gdpr_mode" not in agent and "silence_timeout_seconds" not in agent


def test_tool_server_secrets_travel_in_an_export_only_when_asked_for(
    client, tmp_path, database_path
):
    database = database_path
    tool = {
        "type": "function",
        "function": {"name": "lookup_order"},
        "server": {"url": "https://tools.acme.example/orders", "secret": TOOL_SECRET},
    }
    client.post(
        "/assistants",
        json={"name": "Tools", "llm_config": {"provider": "openai", "model": "m", "tools": [tool]}},
    )

    plain = invoke(database, "export")
    assert plain.exit_code == 0 and TOOL_SECRET not in plain.stdout
    server = json.loads(plain.stdout)["agents"][0]["llm_config"]["tools"][0]["server"]
    assert server == {"url": "https://tools.acme.example/orders", "secret_set": True}

    with_secrets = tmp_path / "with-secrets.json"
    assert invoke(database, "export", with_secrets, "--include-secrets").exit_code == 0
    exported_server = json.loads(with_secrets.read_text())["agents"][0]["llm_config"]["tools"][0]
    assert exported_server["server"]["secret"] == TOOL_SECRET

    target = tmp_path / "target.db"
    assert invoke(target, "import", with_secrets).exit_code == 0
    assert served_agents(target) == served_agents(database)
    round_trip = export_document(target, "--include-secrets")
    assert round_trip["agents"] == json.loads(with_secrets.read_text())["agents"]


def test_an_export_missing_a_tool_secret_imports_only_when_asked_to(
    client, tmp_path, database_path
):
    database = database_path
    tool = {
        "type": "function",
        "function": {"name": "lookup_order"},
        "server": {"url": "https://tools.acme.example/orders", "secret": TOOL_SECRET},
    }
    client.post(
        "/assistants",
        json={"name": "Tools", "llm_config": {"provider": "openai", "model": "m", "tools": [tool]}},
    )
    exported = tmp_path / "agents.json"
    invoke(database, "export", exported)
    target = tmp_path / "target.db"

    refused = invoke(target, "import", exported)
    assert refused.exit_code == 1
    assert (
        "agents.0.llm_config.tools.0.server.secret is missing though secret_set is true"
        in refused.stderr
    )
    allowed = invoke(target, "import", exported, "--allow-missing-secrets")
    assert allowed.exit_code == 0, allowed.output
    [(_, agent)] = served_agents(target)
    assert agent["llm_config"]["tools"][0]["server"]["secret_set"] is False


def test_an_export_with_a_tool_secret_but_secret_set_false_is_refused(tmp_path):
    document = json.loads(RELEASE_1_1_EXPORT.read_text())
    full = next(agent for agent in document["agents"] if agent["llm_config"])
    full["llm_config"]["tools"][0]["server"].update(secret=TOOL_SECRET, secret_set=False)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))

    refused = invoke(tmp_path / "agents.db", "import", path)

    assert refused.exit_code == 1
    index = document["agents"].index(full)
    assert (
        f"agents.{index}.llm_config.tools.0.server.secret_set must be true when secret is given."
        in refused.stderr
    )
    assert TOOL_SECRET not in refused.stderr
