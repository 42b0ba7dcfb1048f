"""The pytest plugin (its own distribution, plugin/), run as a user's suite runs it: in a pytest
of its own, which starts `agents-api serve --test-mode` once for the whole run.

The inner suites run with AGENTS_URL_PREFIX=/api/v1, so the helpers are shown to add the prefix
to API paths and to keep the /_test routes at the root.
"""

import json
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

HELPERS = """
import pytest
import requests

from pytest_agents_api import TestModeError

SUPPORT = {"name": "Support"}


def create(agents_api, **fields):
    response = requests.post(f"{agents_api.url}/agents", json={**SUPPORT, **fields},
                             headers=agents_api.headers, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["agent"]


def test_the_fixture_serves_the_api_on_loopback_at_its_url(agents_api):
    assert agents_api.url.startswith("http://127.0.0.1:")
    assert agents_api.url.endswith("/api/v1")
    assert create(agents_api)["name"] == "Support"


def test_each_test_starts_from_a_reset_service_1(agents_api):
    create(agents_api)
    agents_api.fail("GET", "/agents", status=500)
    agents_api.freeze("2025-12-13T10:00:00.000Z")


def test_each_test_starts_from_a_reset_service_2(agents_api):
    # The test before this one left an agent, a fault and a frozen clock behind.
    assert agents_api.faults() == []
    response = requests.get(f"{agents_api.url}/agents", headers=agents_api.headers, timeout=5)
    assert response.json()["agents"] == []
    assert create(agents_api)["created_at"] != "2025-12-13T10:00:00.000Z"


def test_requests_filters_by_method_and_by_path_without_the_prefix(agents_api):
    agent = create(agents_api)
    requests.get(f"{agents_api.url}/agents/{agent['id']}", headers=agents_api.headers, timeout=5)
    assert [e["method"] for e in agents_api.requests()] == ["POST", "GET"]
    assert [e["path"] for e in agents_api.requests("GET", "/agents/{id}")] == [
        f"/api/v1/agents/{agent['id']}"
    ]
    agents_api.clear_requests()
    assert agents_api.requests() == []


def test_fail_returns_the_fault_and_clear_faults_removes_it(agents_api):
    fault = agents_api.fail("POST", "/agents", status=429, retry_after=2, times=-1)
    assert (fault["path"], fault["times"]) == ("/api/v1/agents", -1)
    response = requests.post(f"{agents_api.url}/agents", json=SUPPORT, headers=agents_api.headers,
                             timeout=5)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
    agents_api.clear_faults()
    assert agents_api.faults() == []


def test_freeze_and_unfreeze(agents_api):
    agents_api.freeze("2025-12-13T10:00:00.000Z")
    assert create(agents_api)["created_at"] == "2025-12-13T10:00:00.000Z"
    agents_api.unfreeze()
    assert create(agents_api)["created_at"] != "2025-12-13T10:00:00.000Z"


def test_reset_with_a_seed_repeats_ids(agents_api):
    agents_api.reset(seed=11)
    first = create(agents_api)["id"]
    agents_api.reset(seed=11)
    assert create(agents_api)["id"] == first


def test_load_snapshot_and_restore(agents_api):
    [loaded] = agents_api.load([{"id": "00000000-0000-4000-8000-000000000042", **SUPPORT}])
    agents_api.snapshot("one-agent")
    agents_api.reset()
    agents_api.restore("one-agent")
    response = requests.get(f"{agents_api.url}/agents/{loaded['id']}",
                            headers=agents_api.headers, timeout=5)
    assert response.json() == {"agent": loaded}


def test_a_refused_helper_call_raises_with_the_services_message(agents_api):
    with pytest.raises(TestModeError, match=r"^400: agents\\.0\\.name is required\\.$") as refused:
        agents_api.load([{}])
    assert refused.value.body["code"] == "validation_error"
    with pytest.raises(TestModeError, match="^404: No snapshot is named never-saved.$"):
        agents_api.restore("never-saved")
"""

WEBHOOKS = """
import hashlib
import hmac

import pytest
import requests

from pytest_agents_api import HEADERS, WebhookReceiver, WebhookVerificationError, sign, verify

SECRET = "whsec-plugin-test"
EVERY_EVENT = ["assistant-request", "tool-calls", "status-update", "end-of-call-report"]


def agent(agents_api, receiver, **fields):
    lookup = {"name": "lookup", "description": "Looks up.", "url": receiver.url_for("/tools")}
    [loaded] = agents_api.load([{
        "name": "Support", "webhook_url": receiver.url_for("/hook"), "webhook_secret": SECRET,
        "webhook_events": EVERY_EVENT,
        "llm_config": {"provider": "openai", "model": "gpt-4o-mini", "tools": [lookup]},
        **fields,
    }])
    return loaded


def test_the_receiver_records_and_verifies_a_simulated_calls_deliveries(
    agents_api, webhook_receiver
):
    webhook_receiver.verify_with(SECRET)
    call = agents_api.simulate_call(
        agent(agents_api, webhook_receiver)["id"], script=[{"role": "user", "content": "Hoi"}]
    )

    assert webhook_receiver.events() == [
        "assistant-request", "status-update", "status-update", "end-of-call-report"
    ]
    assert all(delivery.verified for delivery in webhook_receiver.deliveries)
    report = webhook_receiver.of("end-of-call-report")[0]
    assert report.message["messages"] == [{"role": "user", "content": "Hoi"}]
    assert report.header("x-webhook-event") == "end-of-call-report"
    assert [d["event"] for d in agents_api.deliveries()] == webhook_receiver.events()
    assert agents_api.deliveries(event="status-update", call_id=call["id"]) == [
        d for d in call["deliveries"] if d["event"] == "status-update"
    ]
    assert agents_api.calls() == [call]
    assert agents_api.call(call["id"]) == call
    agents_api.clear_deliveries()
    assert agents_api.deliveries() == []


def test_answers_are_scripted_per_event_and_per_path(agents_api, webhook_receiver):
    def found(delivery):
        tool_call = delivery.message["tool_call_list"][0]
        return {"results": [{"tool_call_id": tool_call["id"], "result": "found"}]}

    webhook_receiver.answer("tool-calls", path="/tools", json=found)
    webhook_receiver.answer("assistant-request", json={"error": "Closed."}, times=1)
    agent_id = agent(agents_api, webhook_receiver)["id"]

    refused = agents_api.simulate_call(agent_id, script=[{"tool": "lookup"}])
    served = agents_api.simulate_call(agent_id, script=[{"tool": "lookup"}])

    assert (refused["status"], refused["error"]) == ("ended-with-error", "Closed.")
    assert served["status"] == "ended"
    assert served["messages"] == [{"role": "tool", "content": "found"}]
    assert [d.path for d in webhook_receiver.of("tool-calls")] == ["/tools"]


def test_a_strict_receiver_refuses_forged_and_stale_deliveries(agents_api, webhook_receiver):
    webhook_receiver.verify_with(SECRET, reject=True)
    faults = [
        {"event": "status-update", "signature": "wrong"},
        {"event": "end-of-call-report", "timestamp": "stale"},
    ]
    call = agents_api.simulate_call(agent(agents_api, webhook_receiver)["id"], faults=faults)

    answered = [(d["event"], d["response"]["status"]) for d in call["deliveries"]]
    assert answered == [
        ("assistant-request", 200), ("status-update", 401), ("status-update", 401),
        ("end-of-call-report", 401),
    ]
    assert [d.verification_error for d in webhook_receiver.deliveries] == [
        None, "Invalid webhook signature", "Invalid webhook signature",
        "Webhook timestamp is too old or invalid",
    ]


def test_an_async_tools_delivery_can_be_waited_for(agents_api, webhook_receiver):
    tool = {"name": "notify", "description": "Notifies.", "url": webhook_receiver.url_for("/n"),
            "async": True}
    agent_id = agent(agents_api, webhook_receiver, llm_config={
        "provider": "openai", "model": "gpt-4o-mini", "tools": [tool]})["id"]
    webhook_receiver.answer("tool-calls", delay=1)

    call = agents_api.simulate_call(agent_id, script=[{"tool": "notify", "arguments": {"n": 1}}])

    assert call["tool_calls"][0]["form"] == "async"
    [delivery] = webhook_receiver.wait_for("tool-calls")
    assert delivery.message["tool_call_list"][0]["function"]["arguments"] == {"n": 1}


def test_sign_and_verify_behave_like_the_sdks_webhooks():
    payload = '{"message":{"type":"status-update"}}'
    digest = hmac.new(b"s3cret-key", b"1700000000." + payload.encode(), hashlib.sha256)
    assert sign(payload, "s3cret-key", 1700000000) == {
        "signature": "sha256=" + digest.hexdigest(), "timestamp": "1700000000"
    }
    parsed = verify(payload, digest.hexdigest(), "1700000000", "s3cret-key", now=1700000300)
    assert parsed == {"message": {"type": "status-update"}}
    with pytest.raises(WebhookVerificationError, match="^Webhook timestamp is too old or invalid$"):
        verify(payload, digest.hexdigest(), "1700000000", "s3cret-key", now=1699999699)
    with pytest.raises(WebhookVerificationError, match="^Invalid webhook signature$"):
        verify(payload, "sha256=" + "0" * 64, "1700000000", "s3cret-key", now=1700000000)
    with pytest.raises(WebhookVerificationError, match="^Missing signature, timestamp, or secret$"):
        verify(payload, "", "1700000000", "s3cret-key")
    assert HEADERS["SIGNATURE"] == "x-webhook-signature"


def test_a_receiver_needs_no_fixture_and_answers_any_client():
    with WebhookReceiver() as receiver:
        receiver.answer(path="/teapot", status=418, json={"short": "stout"})
        response = requests.post(receiver.url_for("/teapot"), data=b"raw", timeout=5)
        assert (response.status_code, response.json()) == (418, {"short": "stout"})
        assert receiver.deliveries[0].body == b"raw"
        assert receiver.deliveries[0].verified is None
"""

# Each module writes what its fixture saw, so the outer test can compare modules and workers.
RECORDER = """
import json, os
from pathlib import Path


def test_records_what_it_was_given(agents_api):
    agents_api.load([{{"name": "Only in {name}"}}])
    record = {{"url": agents_api.url, "namespace": agents_api.namespace,
               "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")}}
    Path({folder!r}, "{name}.json").write_text(json.dumps(record))
"""

# Plugins the inner suites have no use for; leaving them out saves seconds of start-up per run.
UNUSED_PLUGINS = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")


@pytest.fixture
def run_suite(pytester, monkeypatch):
    """Run the pytester folder's tests in a pytest of their own, the plugin loaded as installed."""
    monkeypatch.setenv("AGENTS_URL_PREFIX", "/api/v1")
    monkeypatch.delenv("AGENTS_API_URL", raising=False)
    # The service installed beside this Python: what a user's PATH would name.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")

    def run(*arguments):
        return pytester.runpytest_subprocess(*UNUSED_PLUGINS, *arguments, timeout=180)

    return run


def test_every_helper_works_against_the_started_server(pytester, run_suite):
    pytester.makepyfile(test_helpers=HELPERS)

    result = run_suite()

    result.assert_outcomes(passed=HELPERS.count("\ndef test_"))


def test_the_webhook_receiver_simulated_calls_and_signatures_work_together(pytester, run_suite):
    pytester.makepyfile(test_webhooks=WEBHOOKS)

    result = run_suite()

    result.assert_outcomes(passed=WEBHOOKS.count("\ndef test_"))


def test_one_server_serves_the_whole_run_with_a_namespace_per_module_and_worker(
    pytester, run_suite, tmp_path
):
    records = tmp_path / "records"
    records.mkdir()
    for name in ("alpha", "beta", "gamma", "delta"):
        pytester.makepyfile(**{f"test_{name}": RECORDER.format(folder=str(records), name=name)})

    result = run_suite("-n", "2")

    result.assert_outcomes(passed=4)
    seen = [json.loads(path.read_text()) for path in sorted(records.glob("*.json"))]
    assert {record["worker"] for record in seen} == {"gw0", "gw1"}
    assert len({record["url"] for record in seen}) == 1
    assert len({record["namespace"] for record in seen}) == 4
    assert all(
        record["namespace"].startswith(f"pytest-{record['worker']}-test_") for record in seen
    )
    # The run stopped its server when it ended.
    origin = urlsplit(seen[0]["url"])
    with pytest.raises(OSError), socket.create_connection((origin.hostname, origin.port), 1):
        pass


def test_a_run_whose_tests_never_ask_for_the_fixture_starts_no_server(pytester, run_suite):
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    pytester.makeconftest(
        "import os, pathlib\n"
        "def pytest_sessionfinish(session):\n"
        "    folder = pathlib.Path(os.environ['AGENTS_API_RUN_FOLDER'])\n"
        "    print('server started:', (folder / 'server.json').exists())\n"
    )

    result = run_suite("-s")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*server started: False*"])


def test_a_service_command_that_is_not_there_fails_the_fixture_with_one_clear_reason(
    pytester, run_suite, monkeypatch
):
    monkeypatch.setenv("AGENTS_API_COMMAND", "/nowhere/agents-api")
    pytester.makepyfile(test_one="def test_one(agents_api):\n    pass\n")

    result = run_suite()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*/nowhere/agents-api*"])
