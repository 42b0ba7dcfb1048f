"""A call's faults: duplicate, delay, wrong or missing signature, stale or future timestamp and
drop, each recorded in the journal as what was really sent, and refused by a strict receiver."""

import time

import pytest

from tests.simulated_calls import SECRET, agent_fields, create, platform_signature, simulate

EVENTS = ["assistant-request", "status-update", "status-update", "end-of-call-report"]


@pytest.fixture
def strict(webhook_receiver):
    """The receiver checks every signature as the SDK does and answers 401 when one fails."""
    webhook_receiver.verify_with(SECRET, reject=True)
    return webhook_receiver


@pytest.fixture
def agent(double, webhook_receiver):
    return create(double, **agent_fields(webhook_receiver))


def journal(double, event):
    return double.get(f"/_test/deliveries?event={event}").get_json()["deliveries"]


def test_without_faults_every_delivery_verifies(double, agent, strict):
    simulate(double, agent["id"])

    assert strict.events() == EVENTS
    assert all(delivery.verified for delivery in strict.deliveries)


def test_a_duplicate_is_the_same_delivery_twice_and_the_first_answer_counts(double, agent, strict):
    strict.answer("assistant-request", json={"error": "Closed."}, times=1)
    fault = {"event": "assistant-request", "duplicate": True}
    call = simulate(double, agent["id"], faults=[fault])

    first, second = strict.of("assistant-request")
    assert (first.headers, first.body) == (second.headers, second.body)
    assert call["resolution"]["answer"] == "error"  # the first answer; the replay got {}
    entries = journal(double, "assistant-request")
    assert [entry["fault"] for entry in entries] == [fault, fault]
    assert entries[0]["request"] == entries[1]["request"]
    assert [entry["response"]["body"] for entry in entries] == ['{"error": "Closed."}', "{}"]


def test_a_delay_holds_each_delivery_of_its_event_back(double, agent, webhook_receiver):
    simulate(double, agent["id"], faults=[{"event": "status-update", "delay_ms": 300}])

    request, in_progress, ended, report = webhook_receiver.deliveries
    assert in_progress.received_at - request.received_at >= 0.3
    assert ended.received_at - in_progress.received_at >= 0.3
    assert report.received_at - ended.received_at < 0.3
    assert [e["fault"]["delay_ms"] for e in journal(double, "status-update")] == [300, 300]


def test_a_wrong_signature_is_well_formed_but_not_the_secrets(double, agent, strict):
    simulate(double, agent["id"], faults=[{"event": "end-of-call-report", "signature": "wrong"}])

    [report] = strict.of("end-of-call-report")
    signature = report.header("X-Webhook-Signature")
    timestamp = report.header("X-Webhook-Timestamp")
    assert signature.startswith("sha256=") and len(signature) == 71
    assert signature != platform_signature(SECRET, timestamp, report.body)
    assert (report.verified, report.verification_error) == (False, "Invalid webhook signature")
    assert all(delivery.verified for delivery in strict.deliveries[:-1])
    [entry] = journal(double, "end-of-call-report")
    assert entry["request"]["headers"]["X-Webhook-Signature"] == signature
    assert entry["response"]["status"] == 401


def test_a_missing_signature_is_left_out(double, agent, strict):
    simulate(double, agent["id"], faults=[{"event": "status-update", "signature": "missing"}])

    updates = strict.of("status-update")
    assert [update.header("X-Webhook-Signature") for update in updates] == [None, None]
    assert {update.verification_error for update in updates} == {
        "Missing signature, timestamp, or secret"
    }
    entries = journal(double, "status-update")
    assert all("X-Webhook-Signature" not in entry["request"]["headers"] for entry in entries)
    assert [entry["response"]["status"] for entry in entries] == [401, 401]


@pytest.mark.parametrize(("kind", "offset"), [("stale", -600), ("future", 600)])
def test_a_stale_or_future_timestamp_is_600_seconds_off_and_signed_as_sent(
    double, agent, strict, kind, offset
):
    before = int(time.time())
    simulate(double, agent["id"], faults=[{"event": "assistant-request", "timestamp": kind}])
    after = int(time.time())

    [request] = strict.of("assistant-request")
    timestamp = request.header("X-Webhook-Timestamp")
    assert before + offset <= int(timestamp) <= after + offset
    # Only the age is wrong: the signature is right for the timestamp it came with.
    assert request.header("X-Webhook-Signature") == platform_signature(
        SECRET, timestamp, request.body
    )
    assert request.verification_error == "Webhook timestamp is too old or invalid"
    assert all(delivery.verified for delivery in strict.deliveries[1:])
    [entry] = journal(double, "assistant-request")
    assert entry["request"]["headers"]["X-Webhook-Timestamp"] == timestamp


def test_a_dropped_event_is_never_sent_but_journalled_as_it_would_have_been(
    double, agent, webhook_receiver
):
    call = simulate(double, agent["id"], faults=[{"event": "end-of-call-report", "drop": True}])

    assert webhook_receiver.events() == EVENTS[:-1]
    [entry] = journal(double, "end-of-call-report")
    assert (entry["sent"], entry["error"], entry["response"]) == (False, "dropped", None)
    assert entry["request"]["body"].startswith('{"message":{"type":"end-of-call-report"')
    assert call["deliveries"][-1] == entry


def test_a_dropped_assistant_request_leaves_the_stored_agent(double, agent, webhook_receiver):
    call = simulate(double, agent["id"], faults=[{"event": "assistant-request", "drop": True}])

    assert call["resolution"] == {"answer": "none", "reason": None}
    assert webhook_receiver.events() == EVENTS[1:]


def test_faults_combine_on_one_event(double, agent, strict):
    fault = {"event": "end-of-call-report", "duplicate": True, "signature": "wrong"}
    simulate(double, agent["id"], faults=[fault])

    reports = strict.of("end-of-call-report")
    assert [report.verification_error for report in reports] == ["Invalid webhook signature"] * 2


@pytest.mark.parametrize(
    ("faults", "fields"),
    [
        (
            [{"event": "hang-up", "drop": True}],
            {
                "faults.0.event": [
                    "faults.0.event must be one of: assistant-request, tool-calls, status-update, "
                    "end-of-call-report."
                ]
            },
        ),
        (
            [{"event": "tool-calls"}],
            {
                "faults.0.event": [
                    "faults.0.event must have at least one of duplicate, delay_ms, signature, "
                    "timestamp, drop."
                ]
            },
        ),
        (
            [{"event": "tool-calls", "drop": True, "delay_ms": 5}],
            {
                "faults.0.drop": [
                    "faults.0.drop cannot be combined with other faults: nothing is sent."
                ]
            },
        ),
        (
            [{"event": "tool-calls", "delay_ms": 10_001}],
            {"faults.0.delay_ms": ["faults.0.delay_ms must be between 0 and 10000."]},
        ),
        (
            [{"event": "tool-calls", "signature": "forged"}],
            {"faults.0.signature": ["faults.0.signature must be one of: wrong, missing."]},
        ),
        (
            [{"event": "tool-calls", "timestamp": "stale", "colour": "red"}],
            {"faults.0.colour": ["faults.0.colour is not a known field."]},
        ),
        (
            [{"event": "tool-calls", "drop": True}, {"event": "tool-calls", "duplicate": True}],
            {
                "faults.1.event": [
                    "faults.1.event must be unique; faults.0 is already for tool-calls."
                ]
            },
        ),
    ],
)
def test_a_bad_fault_is_a_400_naming_it_and_nothing_is_delivered(
    double, agent, webhook_receiver, faults, fields
):
    body = simulate(double, agent["id"], status=400, faults=faults)

    assert body["code"] == "validation_error"
    assert body["fields"] == fields
    assert webhook_receiver.deliveries == []
    assert double.get("/_test/calls").get_json() == {"calls": []}
