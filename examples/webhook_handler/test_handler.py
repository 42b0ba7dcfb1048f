"""The handler's tests: the Agents API test double plays the platform's side of real calls
against the handler, served on a free local port.

Run in-process:                 pytest examples/webhook_handler
Against a server you started:
    AGENTS_API_URL=http://127.0.0.1:8000 pytest -n 2 examples/webhook_handler
"""

import json
import threading

import pytest
import requests
from handler import create_app
from werkzeug.serving import make_server

from pytest_agents_api import sign

SECRET = "whsec-handler-test"
ANNA = "+31612345678"
BLOCKED = "+31699999999"
ORDERS = {"A-17": {"status": "shipped", "eta": "2026-01-05"}}
LLM = {"provider": "openai", "model": "gpt-4o-mini"}
ORDER_STATUS = {"name": "order_status", "description": "Where an order is."}
EVERY_EVENT = ["assistant-request", "tool-calls", "status-update", "end-of-call-report"]


@pytest.fixture
def agents():
    """The ids of two agents the platform holds: the one the number rings, and the VIP one."""
    return {
        "main": "00000000-0000-4000-8000-000000000001",
        "vip": "00000000-0000-4000-8000-000000000002",
    }


@pytest.fixture
def handler(agents):
    """The handler, serving on 127.0.0.1 on a free port for the length of a test."""
    customers = {ANNA: {"name": "Anna", "vip": True}, BLOCKED: {"name": "X", "blocked": True}}
    app = create_app(SECRET, {"vip": agents["vip"]}, customers, ORDERS)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    thread.join()


@pytest.fixture
def platform(agents_api, agents, handler):
    """The double, holding both agents, each sending every event to the handler, signed."""

    def agent(agent_id, name):
        return {
            "id": agent_id,
            "name": name,
            "webhook_url": f"{handler.url}/webhook",
            "webhook_secret": SECRET,
            "webhook_events": EVERY_EVENT,
            "llm_config": {**LLM, "tools": [ORDER_STATUS]},
        }

    agents_api.load([agent(agents["main"], "Support"), agent(agents["vip"], "VIP desk")])
    return agents_api


def test_a_vip_customer_gets_the_vip_agent_greeting_them_by_name(platform, agents):
    call = platform.simulate_call(agents["main"], customer={"number": ANNA})

    assert call["resolution"] == {"answer": "assistant_id", "reason": None}
    assert call["assistant"]["id"] == agents["vip"]
    assert call["assistant"]["first_message"] == "Welcome back, Anna! How can I help?"


def test_an_unknown_caller_keeps_the_agent_the_number_rings(platform, agents):
    call = platform.simulate_call(agents["main"], customer={"number": "+31600000000"})

    assert call["resolution"]["answer"] == "stored"
    assert call["assistant"]["name"] == "Support"


def test_a_blocked_number_is_refused(platform, agents, handler):
    call = platform.simulate_call(agents["main"], customer={"number": BLOCKED})

    assert call["status"] == "ended-with-error"
    assert call["error"] == "Calls from this number are not accepted."
    assert handler.statuses[call["id"]] == ["ended-with-error"]
    assert call["id"] not in handler.reports


def test_the_order_tool_answers_from_the_order_book(platform, agents):
    script = [
        {"role": "user", "content": "Where is order A-17? And B-2?"},
        {"tool": "order_status", "arguments": {"order_id": "A-17"}},
        {"tool": "order_status", "arguments": {"order_id": "B-2"}},
    ]
    call = platform.simulate_call(agents["main"], script=script)

    assert [(entry["form"], entry["result"]) for entry in call["tool_calls"]] == [
        ("results", ORDERS["A-17"]),
        ("results", {"error": "No order B-2."}),
    ]
    # The tool's result goes into the transcript as JSON text.
    assert json.loads(call["messages"][1]["content"]) == ORDERS["A-17"]


def test_the_end_of_call_report_is_stored_once_though_delivered_twice(platform, agents, handler):
    faults = [{"event": "end-of-call-report", "duplicate": True}]
    call = platform.simulate_call(agents["main"], analysis={"resolved": True}, faults=faults)

    reports = platform.deliveries(event="end-of-call-report", call_id=call["id"])
    assert [report["response"]["status"] for report in reports] == [200, 200]
    stored = requests.get(f"{handler.url}/reports/{call['id']}", timeout=5).json()
    assert stored["analysis"] == {"resolved": True}
    assert stored["end_reason"] == "customer-ended-call"
    assert handler.statuses[call["id"]] == ["in-progress", "ended"]


@pytest.mark.parametrize(
    "fault",
    [
        {"signature": "wrong"},
        {"signature": "missing"},
        {"timestamp": "stale"},
        {"timestamp": "future"},
    ],
)
def test_forged_and_replayed_reports_are_refused_and_stored_nothing(
    platform, agents, handler, fault
):
    call = platform.simulate_call(agents["main"], faults=[{"event": "end-of-call-report", **fault}])

    [report] = platform.deliveries(event="end-of-call-report", call_id=call["id"])
    assert report["response"]["status"] == 401
    assert call["id"] not in handler.reports
    # Everything else of the call was signed and fresh, and accepted.
    others = [d for d in call["deliveries"] if d["event"] != "end-of-call-report"]
    assert {d["response"]["status"] for d in others} == {200}


def test_a_delivery_signed_like_the_platform_passes_and_a_tampered_one_does_not(handler):
    body = b'{"message":{"type":"status-update","status":"in-progress","call":{"id":"c1"}}}'
    headers = sign(body.decode(), SECRET)  # what the platform's SDK would send
    signed = {
        "Content-Type": "application/json",
        "X-Webhook-Signature": headers["signature"],
        "X-Webhook-Timestamp": headers["timestamp"],
    }
    client = handler.test_client()

    assert client.post("/webhook", data=body, headers=signed).status_code == 200
    assert handler.statuses["c1"] == ["in-progress"]
    tampered = body.replace(b"in-progress", b"ended")
    assert client.post("/webhook", data=tampered, headers=signed).status_code == 401
