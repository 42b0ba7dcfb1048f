"""The bounds of a simulated call: bad requests are 400s, and a receiver that is down, slow or
hostile is recorded with what happened, never a 500 and never a held worker."""

import contextlib
import socket
import threading
import time

import pytest

from testdouble.calls.bounds import MAX_ANSWER_BYTES, MAX_RECORDED_BODY_BYTES, Timing
from tests.simulated_calls import LLM, agent_fields, create, simulate, tool

HELLO = [{"role": "user", "content": "Hallo"}]


class RawServer:
    """A TCP server on 127.0.0.1 that answers each connection with `behave(connection)`."""

    def __init__(self, behave):
        self.behave = behave
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection):
        with connection, contextlib.suppress(OSError):
            connection.recv(65536)
            self.behave(connection, self.stopping)

    def close(self):
        self.stopping.set()
        self.listener.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(behave):
        servers.append(RawServer(behave))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def quick(make_app):
    """A test-mode client whose calls wait at most half a second per answer, 2 s in all."""
    timing = Timing(connect=0.5, assistant_request=0.5, tool_calls=0.5, other_events=0.5, call=2)
    return make_app(TEST_MODE=True, CALL_TIMING=timing).test_client()


def webhook_agent(client, url, events=("assistant-request", "status-update", "end-of-call-report")):
    return create(
        client, name="Support", webhook_url=url, webhook_events=list(events), llm_config=LLM
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"assistant_id": ["assistant_id is required (or agent_id, its alias)."]}),
        (
            {"assistant_id": "a", "agent_id": "a"},
            {"agent_id": ["agent_id must not be given beside assistant_id, its alias."]},
        ),
        (
            {"assistant_id": "a", "script": [{"role": "user", "content": "x"}] * 101},
            {"script": ["script must have at most 100 items."]},
        ),
        (
            {"assistant_id": "a", "script": [{"role": "system", "content": "x"}]},
            {"script.0.role": ["script.0.role must be one of: user, assistant."]},
        ),
        (
            {"assistant_id": "a", "script": [{"tool": "no spaces", "role": "user"}]},
            {
                "script.0.tool": [
                    "script.0.tool must be 1 to 64 letters, digits, underscores or hyphens."
                ],
                "script.0.role": ["script.0.role is not a known field."],
            },
        ),
        (
            {"assistant_id": "a", "script": ["Hallo"]},
            {"script.0": ["script.0 must be an object."]},
        ),
        (
            {"assistant_id": "a", "type": "pigeon"},
            {"type": ["type must be one of: inbound_phone_call, outbound_phone_call, web_call."]},
        ),
        (
            {"assistant_id": "a", "duration_seconds": -1},
            {"duration_seconds": ["duration_seconds must be between 0 and 86400."]},
        ),
        (
            {"assistant_id": "a", "customer": {"number": 31612345678}},
            {"customer.number": ["customer.number must be a string."]},
        ),
    ],
)
def test_a_bad_call_request_is_a_400_naming_each_problem(double, body, fields):
    response = double.post("/_test/calls", json=body)

    assert response.status_code == 400
    assert response.get_json()["fields"] == fields
    assert double.get("/_test/calls").get_json() == {"calls": []}


def test_a_body_that_is_not_json_is_a_400(double):
    response = double.post("/_test/calls", data="{", content_type="application/json")
    assert (response.status_code, response.get_json()["code"]) == (400, "invalid_json")


def test_a_receiver_that_refuses_connections_is_recorded_and_the_call_goes_on(double):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        url = f"http://127.0.0.1:{taken.getsockname()[1]}/hook"
    agent = webhook_agent(double, url)  # nothing listens there any more

    call = simulate(double, agent["id"], script=HELLO)

    assert [d["error"] for d in call["deliveries"]] == ["connection_refused"] * 4
    assert all(d["response"] is None for d in call["deliveries"])
    assert call["resolution"] == {
        "answer": "invalid",
        "reason": "The receiver refused the connection.",
    }
    assert call["status"] == "ended"


def test_a_receiver_answering_500_is_recorded_as_such(double, webhook_receiver):
    webhook_receiver.answer(status=500, json={"error": "boom"})
    agent = webhook_agent(double, webhook_receiver.url_for("/hook"))

    call = simulate(double, agent["id"])

    assert {(d["response"]["status"], d["error"]) for d in call["deliveries"]} == {(500, None)}


def test_a_receiver_answering_garbage_is_an_invalid_response(double, raw_server):
    server = raw_server(lambda connection, stop: connection.sendall(b"garbage\r\n\r\n"))
    agent = webhook_agent(double, server.url)

    call = simulate(double, agent["id"])

    assert [d["error"] for d in call["deliveries"]] == ["invalid_response"] * 4
    assert call["resolution"]["reason"] == "The receiver's answer was not valid HTTP."


def test_a_50_mb_answer_is_cut_off_and_recorded_as_too_large(double, webhook_receiver):
    webhook_receiver.answer("tool-calls", body=b"[" + b"0," * (25 * 1024 * 1024) + b"0]")
    agent = create(double, **agent_fields(webhook_receiver, tools=[tool("export")]))
    started = time.monotonic()
    call = simulate(double, agent["id"], script=[{"tool": "export"}])

    assert time.monotonic() - started < 5
    [entry] = [d for d in call["deliveries"] if d["event"] == "tool-calls"]
    assert entry["error"] == "too_large"
    assert entry["response"]["status"] == 200
    assert entry["response"]["truncated"] is True
    assert len(entry["response"]["body"]) == MAX_ANSWER_BYTES
    assert call["tool_calls"][0]["reason"] == "The answer was larger than the service reads."


def test_a_slow_receiver_within_the_limit_is_waited_for(double, webhook_receiver):
    webhook_receiver.answer("assistant-request", json={"error": "Closed."}, delay=1)
    agent = webhook_agent(double, webhook_receiver.url_for("/hook"))

    call = simulate(double, agent["id"])

    assert call["resolution"]["answer"] == "error"
    assert call["deliveries"][0]["duration_ms"] >= 1000


def test_a_receiver_that_hangs_holds_no_call_past_its_deadline(quick, webhook_receiver):
    webhook_receiver.answer(json={}, delay=60)
    agent = create(quick, **agent_fields(webhook_receiver, tools=[tool("a"), tool("b"), tool("c")]))
    script = [{"tool": name} for name in ("a", "b", "c")]
    started = time.monotonic()
    call = simulate(quick, agent["id"], script=script)
    waited = time.monotonic() - started

    assert 2 <= waited < 3
    errors = [d["error"] for d in call["deliveries"]]
    assert errors[:4] == ["timeout"] * 4  # assistant-request, in-progress, tools a and b
    assert set(errors[4:]) == {"deadline_exceeded"}
    assert len(errors) == 7
    assert call["error"] == "The call ran past its 2 s deadline."
    assert not any(d["sent"] for d in call["deliveries"][4:])


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(quick, raw_server):
    def drip(connection, stop):
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.1):
            connection.sendall(b"X")

    server = raw_server(drip)
    agent = webhook_agent(quick, server.url, events=["assistant-request"])
    started = time.monotonic()
    call = simulate(quick, agent["id"])

    assert time.monotonic() - started < 1.5
    [request] = call["deliveries"]
    assert request["error"] == "timeout"
    assert 500 <= request["duration_ms"] < 1000


def test_a_redirect_is_not_followed(double, webhook_receiver):
    webhook_receiver.answer(
        "assistant-request",
        status=307,
        body=b"",
        headers={"Location": webhook_receiver.url_for("/elsewhere")},
    )
    agent = webhook_agent(double, webhook_receiver.url_for("/hook"))

    call = simulate(double, agent["id"])

    assert [d.path for d in webhook_receiver.deliveries] == ["/hook"] * 4
    assert call["deliveries"][0]["response"]["status"] == 307
    assert call["resolution"]["reason"] == "The receiver answered 307."


def test_a_long_request_is_sent_whole_and_journalled_up_to_the_cap(double, webhook_receiver):
    agent = webhook_agent(double, webhook_receiver.url_for("/hook"))
    script = [
        {"role": "user", "content": "a" * 50_000},
        {"role": "assistant", "content": "b" * 50_000},
    ]
    call = simulate(double, agent["id"], script=script)

    [report] = webhook_receiver.of("end-of-call-report")
    assert len(report.body) > MAX_RECORDED_BODY_BYTES
    assert report.message["messages"] == script
    entry = call["deliveries"][-1]
    assert entry["request"]["truncated"] is True
    assert entry["request"]["body"].encode() == report.body[:MAX_RECORDED_BODY_BYTES]
    assert entry["request"]["headers"]["Content-Length"] == str(len(report.body))
