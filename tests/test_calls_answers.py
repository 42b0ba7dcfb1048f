"""The answers a call reads: assistant-request's four forms and its 5 s fallback, a tool's four
answer forms and its 10 s limit, and async tools, which are not waited for."""

import json
import time

import pytest

from pytest_agents_api import WebhookReceiver
from tests.simulated_calls import (
    LLM,
    SECRET,
    agent_fields,
    create,
    platform_signature,
    simulate,
    tool,
)

HELLO = [{"role": "user", "content": "Hallo"}]
AFTER_THE_ANSWER = ["status-update", "status-update", "end-of-call-report"]


@pytest.fixture
def agent(double, webhook_receiver):
    return create(double, **agent_fields(webhook_receiver, tools=[tool("lookup")]))


def after_assistant_request(receiver):
    return receiver.deliveries[1:]


def test_an_empty_answer_keeps_the_stored_agent(double, agent, webhook_receiver):
    webhook_receiver.answer("assistant-request", json={})
    call = simulate(double, agent["id"], script=HELLO)

    assert call["resolution"] == {"answer": "stored", "reason": None}
    assert call["assistant"]["id"] == agent["id"]
    assert [d.event for d in after_assistant_request(webhook_receiver)] == AFTER_THE_ANSWER


def test_a_transient_assistant_takes_over_at_the_agents_own_webhook(
    double, agent, webhook_receiver
):
    transient = {"name": "Night shift", "first_message": "Goedenavond!", "llm_config": LLM}
    webhook_receiver.answer("assistant-request", json={"assistant": transient})
    call = simulate(double, agent["id"], script=HELLO)

    assert call["resolution"] == {"answer": "transient", "reason": None}
    shown = call["assistant"]
    assert (shown["id"], shown["name"], shown["first_message"]) == (
        None,
        "Night shift",
        "Goedenavond!",
    )
    assert shown["llm_config"]["temperature"] == 0.7  # filled in as for a POST
    assert (shown["webhook_secret_set"], shown["created_at"]) == (False, None)
    later = after_assistant_request(webhook_receiver)
    assert [d.event for d in later] == AFTER_THE_ANSWER
    assert all(d.message["assistant"] == shown for d in later)
    # Without a webhook of its own it keeps the called agent's, and that agent's secret.
    assert all(d.path == "/hook" for d in later)
    for delivery in later:
        timestamp = delivery.header("X-Webhook-Timestamp")
        assert delivery.header("X-Webhook-Signature") == platform_signature(
            SECRET, timestamp, delivery.body
        )


def test_a_transient_assistant_is_validated_like_a_post_body(double, agent, webhook_receiver):
    webhook_receiver.answer("assistant-request", json={"assistant": {"name": " ", "extra": 1}})
    call = simulate(double, agent["id"], script=HELLO)

    assert call["resolution"]["answer"] == "invalid"
    assert call["resolution"]["reason"] == (
        "The answer's agent is not valid: name must not be blank. extra is not a known field."
    )
    assert call["assistant"]["id"] == agent["id"]
    assert [d.event for d in after_assistant_request(webhook_receiver)] == AFTER_THE_ANSWER


def test_a_transient_webhook_url_that_no_involved_agent_stores_gets_nothing(
    double, agent, webhook_receiver
):
    with WebhookReceiver() as elsewhere:
        transient = {
            "name": "Redirected",
            "webhook_url": elsewhere.url_for("/hook"),
            "webhook_events": ["status-update", "end-of-call-report"],
        }
        webhook_receiver.answer("assistant-request", json={"assistant": transient})
        call = simulate(double, agent["id"], script=HELLO)

        assert elsewhere.deliveries == []
    assert webhook_receiver.events() == ["assistant-request"]
    assert call["skipped"] == [
        {"event": "status-update", "reason": "url_not_stored"},
        {"event": "status-update", "reason": "url_not_stored"},
        {"event": "end-of-call-report", "reason": "url_not_stored"},
    ]


def test_an_assistant_id_answer_continues_with_that_agent_shallow_merged_with_the_override(
    double, agent, webhook_receiver
):
    other = create(
        double,
        **agent_fields(
            webhook_receiver,
            path="/other-hook",
            events=["status-update"],
            name="Billing",
            webhook_secret="other-secret-1",
            first_message="Billing here.",
            llm_config={**LLM, "temperature": 0.2},
        ),
    )
    override = {"first_message": "Hoi Anna!", "llm_config": {**LLM, "model": "gpt-4o"}}
    webhook_receiver.answer(
        "assistant-request", json={"assistant_id": other["id"], "assistant_override": override}
    )
    call = simulate(double, agent["id"], script=HELLO)

    assert call["resolution"] == {"answer": "assistant_id", "reason": None}
    shown = call["assistant"]
    assert (shown["id"], shown["name"], shown["first_message"]) == (
        other["id"],
        "Billing",
        "Hoi Anna!",
    )
    # Shallow: llm_config is replaced whole, so the other agent's temperature is gone.
    assert shown["llm_config"]["model"] == "gpt-4o"
    assert shown["llm_config"]["temperature"] == 0.7
    # The other agent's webhook, subscription and secret from here on.
    later = after_assistant_request(webhook_receiver)
    assert [(d.path, d.event) for d in later] == [("/other-hook", "status-update")] * 2
    timestamp = later[0].header("X-Webhook-Timestamp")
    assert later[0].header("X-Webhook-Signature") == platform_signature(
        "other-secret-1", timestamp, later[0].body
    )


def test_an_assistant_id_without_an_override_is_that_agent_as_stored(
    double, agent, webhook_receiver
):
    other = create(double, **agent_fields(webhook_receiver, name="Sales"))
    webhook_receiver.answer("assistant-request", json={"assistant_id": other["id"]})
    call = simulate(double, agent["id"])

    assert call["assistant"] == double.get(f"/agents/{other['id']}").get_json()["agent"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            {"assistant_id": "00000000-0000-4000-8000-000000000000"},
            "The answer's assistant_id 00000000-0000-4000-8000-000000000000 names no stored agent.",
        ),
        ({"assistant_id": 7}, "The answer's assistant_id is not a string."),
        ({"assistant": "Support"}, "The answer's assistant is not an object."),
        (
            {"assistant_override": {"name": "x"}},
            ("The answer has none of assistant, assistant_id and error."),
        ),
        ([], "The answer is not a JSON object."),
    ],
)
def test_an_answer_that_cannot_be_used_leaves_the_stored_agent_and_says_why(
    double, agent, webhook_receiver, answer, reason
):
    webhook_receiver.answer("assistant-request", json=answer)
    call = simulate(double, agent["id"])

    assert call["resolution"] == {"answer": "invalid", "reason": reason}
    assert call["assistant"]["id"] == agent["id"]


def test_an_override_that_breaks_a_rule_leaves_the_stored_agent(double, agent, webhook_receiver):
    other = create(double, **agent_fields(webhook_receiver, name="Sales"))
    answer = {"assistant_id": other["id"], "assistant_override": {"max_duration_seconds": 0}}
    webhook_receiver.answer("assistant-request", json=answer)
    call = simulate(double, agent["id"])

    assert call["resolution"]["reason"] == (
        "The answer's agent is not valid: max_duration_seconds must be between 1 and 86400."
    )
    assert call["assistant"]["id"] == agent["id"]


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"assistant_id": "x"}', "The receiver answered 500."),
        (200, b"<html>busy</html>", "The answer is not JSON."),
        (200, b'{"a": NaN}', "The answer is not JSON."),
    ],
)
def test_a_failed_or_garbled_answer_leaves_the_stored_agent(
    double, agent, webhook_receiver, status, body, reason
):
    webhook_receiver.answer("assistant-request", status=status, body=body)
    call = simulate(double, agent["id"])

    assert call["resolution"] == {"answer": "invalid", "reason": reason}
    assert webhook_receiver.events()[1:] == ["status-update", "status-update", "end-of-call-report"]


def test_an_error_answer_refuses_the_call_with_one_status_update(double, agent, webhook_receiver):
    webhook_receiver.answer("assistant-request", json={"error": "We are closed on Sundays."})
    call = simulate(double, agent["id"], script=HELLO + [{"tool": "lookup"}])

    assert webhook_receiver.events() == ["assistant-request", "status-update"]
    refused = webhook_receiver.deliveries[1].message
    assert refused["status"] == "ended-with-error"
    assert refused["error"] == "We are closed on Sundays."
    assert refused["end_reason"] == "assistant-request-error"
    assert refused["call"]["status"] == "ended-with-error"
    assert call["status"] == "ended-with-error"
    assert call["error"] == "We are closed on Sundays."
    assert call["resolution"] == {"answer": "error", "reason": "We are closed on Sundays."}
    assert (call["messages"], call["tool_calls"], call["analysis"]) == ([], [], None)


def test_no_answer_within_5_seconds_means_the_stored_agent_is_used(double, agent, webhook_receiver):
    webhook_receiver.answer("assistant-request", json={"error": "too late"}, delay=7)
    started = time.monotonic()
    call = simulate(double, agent["id"], script=HELLO)
    waited = time.monotonic() - started

    assert 5 <= waited < 6.5
    assert call["resolution"] == {"answer": "invalid", "reason": "No answer came within 5 s."}
    [request] = [d for d in call["deliveries"] if d["event"] == "assistant-request"]
    assert (request["error"], request["response"]) == ("timeout", None)
    assert 5000 <= request["duration_ms"] < 6500
    assert call["status"] == "ended"
    assert webhook_receiver.events()[1:] == AFTER_THE_ANSWER


def tool_call_id(delivery):
    return delivery.message["tool_call_list"][0]["id"]


@pytest.mark.parametrize(
    ("answer", "form", "result", "content"),
    [
        (
            lambda d: {"results": [{"tool_call_id": tool_call_id(d), "result": {"eta": "mon"}}]},
            "results",
            {"eta": "mon"},
            '{"eta":"mon"}',
        ),
        ({"result": "Shipped yesterday."}, "result", "Shipped yesterday.", "Shipped yesterday."),
        ({"error": "Order not found"}, "error", {"error": "Order not found"}, None),
        ({"status": "shipped"}, "raw", {"status": "shipped"}, '{"status":"shipped"}'),
        ([1, 2], "raw", [1, 2], "[1,2]"),
    ],
)
def test_a_tools_answer_forms_give_its_result_to_the_transcript(
    double, webhook_receiver, answer, form, result, content
):
    agent = create(double, **agent_fields(webhook_receiver, tools=[tool("lookup")]))
    webhook_receiver.answer("tool-calls", json=answer)
    call = simulate(double, agent["id"], script=[{"tool": "lookup", "arguments": {"id": 1}}])

    [entry] = call["tool_calls"]
    assert (entry["form"], entry["result"], entry["reason"]) == (form, result, None)
    assert entry["id"] == tool_call_id(webhook_receiver.of("tool-calls")[0])
    assert entry["arguments"] == {"id": 1} and entry["async"] is False
    expected = content or '{"error":"Order not found"}'
    assert call["messages"] == [{"role": "tool", "content": expected}]
    [report] = webhook_receiver.of("end-of-call-report")
    assert report.message["messages"] == call["messages"]


def test_results_for_another_tool_call_give_no_result(double, webhook_receiver):
    agent = create(double, **agent_fields(webhook_receiver, tools=[tool("lookup")]))
    webhook_receiver.answer("tool-calls", json={"results": [{"tool_call_id": "x", "result": 1}]})
    call = simulate(double, agent["id"], script=[{"tool": "lookup"}])

    [entry] = call["tool_calls"]
    assert entry["form"] == "none"
    assert entry["reason"] == f"The answer's results hold none for {entry['id']}."
    assert json.loads(call["messages"][0]["content"]) == {"error": entry["reason"]}


def test_a_tool_the_agent_does_not_have_is_skipped_and_the_call_goes_on(double, agent):
    call = simulate(double, agent["id"], script=[{"tool": "refund"}, *HELLO])

    assert {"event": "tool-calls", "tool": "refund", "reason": "unknown_tool"} in call["skipped"]
    assert call["tool_calls"][0]["reason"] == "The agent has no tool called refund."
    assert call["messages"][1] == HELLO[0]


def test_a_tool_that_answers_after_10_seconds_gives_no_result(double, webhook_receiver):
    agent = create(double, **agent_fields(webhook_receiver, tools=[tool("slow")]))
    webhook_receiver.answer("tool-calls", json={"result": "late"}, delay=12)
    started = time.monotonic()
    call = simulate(double, agent["id"], script=[{"tool": "slow"}])
    waited = time.monotonic() - started

    assert 10 <= waited < 11.5
    [entry] = call["tool_calls"]
    assert (entry["form"], entry["reason"]) == ("none", "No answer came within 10 s.")
    assert [d["error"] for d in call["deliveries"] if d["event"] == "tool-calls"] == ["timeout"]
    assert webhook_receiver.events()[-2:] == ["status-update", "end-of-call-report"]


def test_an_async_tool_is_delivered_and_not_waited_for(double, webhook_receiver):
    tools = [
        tool("notify", webhook_receiver.url_for("/async"), **{"async": True}),
        tool("log", webhook_receiver.url_for("/async"), async_response="Logging it now."),
    ]
    tools[1]["async"] = True
    agent = create(double, **agent_fields(webhook_receiver, tools=tools))
    webhook_receiver.answer("tool-calls", path="/async", json={"result": "never read"}, delay=3)
    started = time.monotonic()
    call = simulate(double, agent["id"], script=[{"tool": "notify"}, {"tool": "log"}])

    assert time.monotonic() - started < 2
    assert [(e["async"], e["form"], e["result"]) for e in call["tool_calls"]] == [
        (True, "async", None)
    ] * 2
    assert [m["content"] for m in call["messages"]] == [
        "The tool runs asynchronously; its result is not awaited.",
        "Logging it now.",
    ]
    sent = [d for d in call["deliveries"] if d["event"] == "tool-calls"]
    assert [(d["sent"], d["awaited"], d["response"], d["error"]) for d in sent] == [
        (True, False, None, None)
    ] * 2
    # Sent one after the other, on two connections the receiver serves in threads of their own:
    # which it records first is its own affair.
    arrived = webhook_receiver.wait_for("tool-calls", count=2)
    names = [d.message["tool_call_list"][0]["function"]["name"] for d in arrived]
    assert sorted(names) == ["log", "notify"]
