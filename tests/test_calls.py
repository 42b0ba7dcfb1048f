"""Simulated calls: each event's body and headers as a local receiver gets them, their order,
the subscription, routing to tool URLs, and the calls and deliveries journals."""

import json
import re
import time
from datetime import UTC, datetime

import jsonschema_rs
import pytest

from tests.simulated_calls import (
    LLM,
    SECRET,
    agent_fields,
    create,
    platform_signature,
    simulate,
    store_with_tool_secret,
    tool,
)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COMMON = ["type", "timestamp", "call", "phone_number", "customer", "assistant"]
SCRIPT = [
    {"role": "user", "content": "Waar blijft mijn bestelling?"},
    {"tool": "lookup_order", "arguments": {"order_id": "A-17"}},
    {"role": "assistant", "content": "Die komt morgen."},
]


@pytest.fixture
def call_of(double, webhook_receiver):
    """Simulate SCRIPT with an agent whose every event and tool goes to the receiver."""

    def simulated(**fields):
        agent = create(
            double, **agent_fields(webhook_receiver, tools=[tool("lookup_order")], **fields)
        )
        return agent, simulate(double, agent["id"], script=SCRIPT)

    return simulated


def test_a_call_delivers_every_event_in_the_platforms_order(call_of, webhook_receiver):
    _, call = call_of()

    assert webhook_receiver.events() == [
        "assistant-request",
        "status-update",
        "tool-calls",
        "status-update",
        "end-of-call-report",
    ]
    statuses = [d.message.get("status") for d in webhook_receiver.of("status-update")]
    assert statuses == ["in-progress", "ended"]
    assert [d.message["call"]["status"] for d in webhook_receiver.deliveries] == [
        "ringing",
        "in-progress",
        "in-progress",
        "ended",
        "ended",
    ]
    assert call["status"] == "ended"
    assert [d["event"] for d in call["deliveries"]] == webhook_receiver.events()


def test_each_event_carries_the_common_members_and_its_own(call_of, webhook_receiver, double):
    agent, call = call_of()
    request, in_progress, tools, ended, report = (d.message for d in webhook_receiver.deliveries)

    assert list(request) == COMMON
    assert list(in_progress) == [*COMMON, "status"]
    assert list(tools) == [*COMMON, "tool_call_list"]
    assert list(ended) == [*COMMON, "status", "end_reason"]
    assert list(report) == [
        *COMMON,
        *("duration_seconds", "summary", "messages", "analysis", "recording_url"),
        *("end_reason", "started_at", "ended_at"),
    ]
    assert request["call"] == {"id": call["id"], "type": "inbound_phone_call", "status": "ringing"}
    assert UUID4.match(call["id"])
    assert request["customer"] == {"number": "+12025550143"}
    assert request["phone_number"]["number"] == "+12025550100"
    # The agent as the API shows it, with no secret in any delivery.
    shown = double.get(f"/agents/{agent['id']}").get_json()["agent"]
    assert all(d.message["assistant"] == shown for d in webhook_receiver.deliveries)
    assert not any(SECRET.encode() in d.body for d in webhook_receiver.deliveries)
    [tool_call] = tools["tool_call_list"]
    assert tool_call["type"] == "function"
    assert tool_call["function"] == {"name": "lookup_order", "arguments": {"order_id": "A-17"}}
    assert ended["end_reason"] == "customer-ended-call"
    assert report["messages"] == [
        SCRIPT[0],
        {"role": "tool", "content": "{}"},  # the receiver's default answer, as the raw result
        SCRIPT[2],
    ]
    assert report["summary"] == "Simulated call with Support: 2 messages, 1 tool calls."
    assert report["analysis"] is None and report["recording_url"] is None
    assert report["duration_seconds"] == 0
    assert all(TIMESTAMP.match(report[key]) for key in ("started_at", "ended_at", "timestamp"))


def test_each_delivery_is_a_signed_json_post_naming_the_service(call_of, webhook_receiver):
    before = int(time.time())
    call_of()
    after = int(time.time())

    for delivery in webhook_receiver.deliveries:
        assert (delivery.method, delivery.path) == ("POST", "/hook")
        timestamp = delivery.header("X-Webhook-Timestamp")
        assert before <= int(timestamp) <= after
        assert delivery.header("X-Webhook-Event") == delivery.message["type"]
        assert delivery.header("Content-Type") == "application/json"
        assert delivery.header("User-Agent").startswith("agents-api/")
        expected = platform_signature(SECRET, timestamp, delivery.body)
        assert delivery.header("X-Webhook-Signature") == expected
        assert json.loads(delivery.body)  # one JSON document, nothing after it


def test_the_journal_holds_exactly_what_was_sent_and_answered(call_of, webhook_receiver, double):
    webhook_receiver.answer("status-update", status=202, json={"seen": True})
    _, call = call_of()

    journal = double.get("/_test/deliveries").get_json()["deliveries"]
    assert journal == call["deliveries"]
    for entry, received in zip(journal, webhook_receiver.deliveries, strict=True):
        assert entry["call_id"] == call["id"]
        assert entry["url"] == webhook_receiver.url_for("/hook")
        assert entry["request"]["body"].encode() == received.body
        assert {name.lower(): value for name, value in entry["request"]["headers"].items()} == {
            name.lower(): value for name, value in received.headers.items()
        }
        assert entry["sent"] and entry["awaited"] and entry["error"] is None
        assert entry["fault"] is None and entry["duration_ms"] >= 0
    in_progress = journal[1]["response"]
    assert (in_progress["status"], json.loads(in_progress["body"])) == (202, {"seen": True})
    assert in_progress["headers"]["Content-Type"] == "application/json"


def test_only_the_events_the_agent_subscribes_to_are_delivered(double, webhook_receiver):
    agent = create(double, **agent_fields(webhook_receiver, events=["end-of-call-report"]))
    call = simulate(double, agent["id"], script=[{"role": "user", "content": "Hallo"}])

    assert webhook_receiver.events() == ["end-of-call-report"]
    assert call["resolution"] == {"answer": "none", "reason": None}
    assert call["skipped"] == [
        {"event": "assistant-request", "reason": "not_subscribed"},
        {"event": "status-update", "reason": "not_subscribed"},
        {"event": "status-update", "reason": "not_subscribed"},
    ]


def test_tool_calls_go_to_the_tools_own_url_whatever_webhook_events_says(double, webhook_receiver):
    tools = [
        tool("flat", webhook_receiver.url_for("/tools/flat")),
        {
            "type": "function",
            "function": {"name": "nested"},
            "server": {"url": webhook_receiver.url_for("/tools/nested")},
        },
        tool("no_url"),
    ]
    agent = create(double, **agent_fields(webhook_receiver, events=["status-update"], tools=tools))
    script = [{"tool": name} for name in ("flat", "nested", "no_url")]
    call = simulate(double, agent["id"], script=script)

    assert [(d.path, d.event) for d in webhook_receiver.deliveries] == [
        ("/hook", "status-update"),
        ("/tools/flat", "tool-calls"),
        ("/tools/nested", "tool-calls"),
        ("/hook", "status-update"),
    ]
    # A tool with a URL of its own is signed with its own secret, and it has none.
    assert webhook_receiver.of("tool-calls")[0].header("X-Webhook-Signature") is None
    assert {"event": "tool-calls", "tool": "no_url", "reason": "not_subscribed"} in call["skipped"]
    [no_url] = [entry for entry in call["tool_calls"] if entry["name"] == "no_url"]
    assert no_url["form"] == "none"


def test_a_tool_with_a_server_secret_is_signed_with_it_not_the_agents(double, webhook_receiver):
    nested = {
        "type": "function",
        "function": {"name": "book"},
        "server": {"url": webhook_receiver.url_for("/tools/book")},
    }
    agent_id = store_with_tool_secret(
        double, agent_fields(webhook_receiver, tools=[nested]), "book", "tool-secret-1"
    )
    simulate(double, agent_id, script=[{"tool": "book", "arguments": {"day": "mon"}}])

    [delivery] = webhook_receiver.of("tool-calls")
    timestamp = delivery.header("X-Webhook-Timestamp")
    signature = delivery.header("X-Webhook-Signature")
    assert signature == platform_signature("tool-secret-1", timestamp, delivery.body)
    assert signature != platform_signature(SECRET, timestamp, delivery.body)
    assert b"tool-secret-1" not in b"".join(d.body for d in webhook_receiver.deliveries)
    assert "secret" not in delivery.message["assistant"]["llm_config"]["tools"][0]["server"]


def test_an_agent_without_any_url_still_runs_and_the_call_says_nothing_was_delivered(double):
    agent = create(double, name="Silent", llm_config=LLM)
    call = simulate(double, agent["id"], script=[{"role": "user", "content": "Hallo?"}])

    assert call["status"] == "ended" and call["deliveries"] == []
    assert call["skipped"] == [
        {"event": "assistant-request", "reason": "no_url"},
        {"event": "status-update", "reason": "no_url"},
        {"event": "status-update", "reason": "no_url"},
        {"event": "end-of-call-report", "reason": "no_url"},
    ]
    assert call["messages"] == [{"role": "user", "content": "Hallo?"}]


def test_a_call_for_an_unknown_agent_is_a_404_and_records_nothing(double):
    for agent_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        body = simulate(double, agent_id, status=404)
        assert body == {"error": "Agent not found.", "code": "not_found", "type": "not_found"}
    assert double.get("/_test/calls").get_json() == {"calls": []}


def test_agent_id_is_an_alias_of_assistant_id(double, webhook_receiver):
    agent = create(double, **agent_fields(webhook_receiver))
    response = double.post("/_test/calls", json={"agent_id": agent["id"]})
    assert response.status_code == 201
    assert response.get_json()["call"]["assistant_id"] == agent["id"]


def test_a_web_call_has_no_numbers_and_given_ones_replace_the_defaults(double, webhook_receiver):
    agent = create(double, **agent_fields(webhook_receiver, events=["assistant-request"]))
    simulate(double, agent["id"], type="web_call")
    simulate(
        double,
        agent["id"],
        type="outbound_phone_call",
        customer={"number": "+31612345678"},
        phone_number={"name": "Sales line"},
    )

    web, outbound = (d.message for d in webhook_receiver.deliveries)
    assert web["call"]["type"] == "web_call"
    assert web["phone_number"] == {"id": None, "number": None, "name": None}
    assert web["customer"] == {"number": None}
    assert outbound["customer"] == {"number": "+31612345678"}
    assert outbound["phone_number"]["name"] == "Sales line"
    assert outbound["phone_number"]["number"] == "+12025550100"


def test_calls_and_deliveries_are_listed_read_and_filtered(call_of, double):
    _, first = call_of()
    _, second = call_of()

    listed = double.get("/_test/calls").get_json()["calls"]
    assert [call["id"] for call in listed] == [first["id"], second["id"]]
    assert listed[0] == first
    assert double.get(f"/_test/calls/{second['id']}").get_json() == {"call": second}
    tool_calls = double.get("/_test/deliveries?event=tool-calls").get_json()["deliveries"]
    assert [d["call_id"] for d in tool_calls] == [first["id"], second["id"]]
    of_second = double.get(f"/_test/deliveries?call_id={second['id']}").get_json()["deliveries"]
    assert of_second == second["deliveries"]
    missing = double.get("/_test/calls/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == (
        "No call has the id 00000000-0000-4000-8000-000000000000."
    )
    bad = double.get("/_test/deliveries?event=hang-up")
    assert bad.status_code == 400
    assert bad.get_json()["fields"]["event"] == [
        "event must be one of: assistant-request, tool-calls, status-update, end-of-call-report."
    ]


def test_deleting_the_deliveries_empties_the_journal_and_keeps_the_calls(call_of, double):
    _, call = call_of()

    assert double.delete("/_test/deliveries").get_json() == {"success": True}
    assert double.get("/_test/deliveries").get_json() == {"deliveries": []}
    [kept] = double.get("/_test/calls").get_json()["calls"]
    assert kept == {**call, "deliveries": []}


def test_calls_and_deliveries_are_scoped_by_namespace_and_cleared_by_reset(
    in_namespace, webhook_receiver
):
    ours, theirs = in_namespace("ours"), in_namespace("theirs")
    agent = create(ours, **agent_fields(webhook_receiver))
    call = simulate(ours, agent["id"])
    simulate(theirs, agent["id"], status=404)  # the agent is not theirs
    their_agent = create(theirs, **agent_fields(webhook_receiver))
    simulate(theirs, their_agent["id"])

    assert [c["id"] for c in ours.get("/_test/calls").get_json()["calls"]] == [call["id"]]
    assert ours.get(f"/_test/calls/{call['id']}").status_code == 200
    assert theirs.get(f"/_test/calls/{call['id']}").status_code == 404
    ours.post("/_test/reset")
    assert ours.get("/_test/calls").get_json() == {"calls": []}
    assert ours.get("/_test/deliveries").get_json() == {"deliveries": []}
    assert len(theirs.get("/_test/calls").get_json()["calls"]) == 1
    assert len(theirs.get("/_test/deliveries").get_json()["deliveries"]) == 4


def test_a_frozen_clock_and_a_seed_give_byte_identical_deliveries(double, webhook_receiver):
    def one_run():
        double.post("/_test/reset", json={"seed": 20251213})
        double.put("/_test/clock", json={"now": "2025-12-13T10:00:00.000Z"})
        agent = create(double, **agent_fields(webhook_receiver, tools=[tool("lookup_order")]))
        webhook_receiver.clear()
        call = simulate(double, agent["id"], script=SCRIPT)
        return call, [(d.path, d.headers, d.body) for d in webhook_receiver.deliveries]

    first_call, first = one_run()
    second_call, second = one_run()

    assert second == first
    assert first_call["id"] == second_call["id"]
    frozen = int(datetime(2025, 12, 13, 10, tzinfo=UTC).timestamp())
    assert {headers["X-Webhook-Timestamp"] for _, headers, _ in first} == {str(frozen)}
    assert all(b'"timestamp":"2025-12-13T10:00:00.000Z"' in body for _, _, body in first)


def test_the_routes_do_not_exist_outside_test_mode(client):
    for method, path in (("post", "/_test/calls"), ("get", "/_test/deliveries")):
        response = getattr(client, method)(path, json={})
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"


def test_a_call_needs_an_api_key_when_keys_are_configured(make_app):
    client = make_app(TEST_MODE=True, API_KEYS="the-key").test_client()
    response = client.post("/_test/calls", json={"assistant_id": "x"})
    assert response.status_code == 401


def test_a_call_and_the_journal_are_what_the_openapi_document_says(call_of, double):
    _, call = call_of()
    document = double.get("/openapi.json").get_json()
    registry = jsonschema_rs.Registry([("urn:agents-api", document)])

    def conforms(component, value):
        reference = {"$ref": f"urn:agents-api#/components/schemas/{component}"}
        validator = jsonschema_rs.Draft202012Validator(reference, registry=registry)
        return [error.message for error in validator.iter_errors(value)]

    operation = document["paths"]["/_test/calls"]["post"]
    assert operation["summary"].startswith("Play the platform's side of a call")
    assert {"201", "400", "404"} <= set(operation["responses"])
    assert conforms("CallEnvelope", {"call": call}) == []
    assert conforms("DeliveryList", double.get("/_test/deliveries").get_json()) == []
    assert conforms("CallList", double.get("/_test/calls").get_json()) == []
    assert conforms("CallEnvelope", {"call": {**call, "surprise": 1}}) != []
