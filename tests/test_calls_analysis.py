"""A call's analysis: generated from the agent's structured-data schema when the call gives
none, valid for every schema of the corpus, the same for the same seed; a clear 400 when the
schema admits no value."""

import hashlib

import jsonschema_rs
import pytest

from testdouble.analysis import generate
from tests.simulated_calls import LLM, agent_fields, create, simulate
from tests.test_analysis import CORPUS

SENTIMENT = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "neutral", "negative"]},
        "callback": {"type": "boolean"},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["sentiment", "score"],
}
IMPOSSIBLE = {
    "type": "object",
    "properties": {"age": {"type": "integer", "minimum": 10, "maximum": 5}},
    "required": ["age"],
}


def plan(schema, enabled=True):
    return {"structured_data_plan": {"enabled": enabled, "schema": schema}}


def reporting_agent(client, receiver, schema, **fields):
    return create(
        client,
        **agent_fields(
            receiver, events=["end-of-call-report"], analysis_plan=plan(schema), **fields
        ),
    )


def expected_seed(namespace_seed, call_id):
    """The seed docs/testing.md gives: SHA-256 of '<namespace seed or none>:<call id>'."""
    digest = hashlib.sha256(f"{namespace_seed}:{call_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@pytest.mark.parametrize("name", CORPUS)
def test_the_analysis_validates_against_each_schema_of_the_corpus(double, webhook_receiver, name):
    schema = CORPUS[name]
    agent = reporting_agent(double, webhook_receiver, schema)

    call = simulate(double, agent["id"])

    assert jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(
        call["analysis"]
    )
    [report] = webhook_receiver.of("end-of-call-report")
    assert report.message["analysis"] == call["analysis"]
    assert call["analysis_error"] is None


def test_the_analysis_is_the_same_for_the_same_seed_and_says_how_it_is_seeded(
    double, webhook_receiver
):
    def analysis_after_reset(seed):
        double.post("/_test/reset", json={"seed": seed})
        agent = reporting_agent(double, webhook_receiver, CORPUS["full_call_analysis"])
        call = simulate(double, agent["id"])
        return call["id"], call["analysis"]

    first_id, first = analysis_after_reset(5)
    again_id, again = analysis_after_reset(5)
    other_id, other = analysis_after_reset(6)

    assert (again_id, again) == (first_id, first)
    assert other_id != first_id
    assert first == generate(CORPUS["full_call_analysis"], expected_seed(5, first_id))
    assert other == generate(CORPUS["full_call_analysis"], expected_seed(6, other_id))


def test_without_a_namespace_seed_the_analysis_follows_the_calls_random_id(
    double, webhook_receiver
):
    agent = reporting_agent(double, webhook_receiver, SENTIMENT)
    call = simulate(double, agent["id"])

    assert call["analysis"] == generate(SENTIMENT, expected_seed("none", call["id"]))


def test_an_analysis_given_by_the_call_is_sent_as_it_is(double, webhook_receiver):
    agent = reporting_agent(double, webhook_receiver, SENTIMENT)
    for given in ({"sentiment": "free text, not checked"}, None, ["any", "json"]):
        call = simulate(double, agent["id"], analysis=given)
        assert call["analysis"] == given
    assert [d.message["analysis"] for d in webhook_receiver.deliveries] == [
        {"sentiment": "free text, not checked"},
        None,
        ["any", "json"],
    ]


def test_no_enabled_plan_means_no_analysis(double, webhook_receiver):
    disabled = create(
        double,
        **agent_fields(webhook_receiver, analysis_plan=plan(SENTIMENT, enabled=False)),
    )
    without = create(double, **agent_fields(webhook_receiver))
    for agent in (disabled, without):
        assert simulate(double, agent["id"])["analysis"] is None


def test_a_schema_that_admits_no_value_is_a_400_and_changes_nothing(double, webhook_receiver):
    double.post("/_test/reset", json={"seed": 9})
    agent = reporting_agent(double, webhook_receiver, IMPOSSIBLE)

    body = simulate(double, agent["id"], status=400)

    assert body["code"] == "validation_error"
    assert body["error"] == (
        "analysis must be given: the agent's analysis_plan.structured_data_plan.schema admits "
        "no value (The schema at /properties/age has minimum 10 above maximum 5, so no value "
        "satisfies it)."
    )
    assert webhook_receiver.deliveries == []
    assert double.get("/_test/calls").get_json() == {"calls": []}
    # The refused call took no seeded id: the next agent's is the one it would have had.
    next_id = create(double, name="Next", llm_config=LLM)["id"]
    double.post("/_test/reset", json={"seed": 9})
    again = reporting_agent(double, webhook_receiver, IMPOSSIBLE)
    assert create(double, name="Next", llm_config=LLM)["id"] == next_id
    # Given an analysis, the same agent's call runs.
    assert simulate(double, again["id"], analysis={"age": 7})["analysis"] == {"age": 7}


def test_a_schema_the_generator_cannot_follow_is_a_400_too(double, webhook_receiver):
    external = {"$ref": "https://example.com/schemas/call.json"}
    agent = reporting_agent(double, webhook_receiver, external)

    body = simulate(double, agent["id"], status=400)

    assert body["fields"]["analysis"] == [
        "analysis must be given: the agent's analysis_plan.structured_data_plan.schema cannot "
        "be used (The schema is not a valid draft 2020-12 JSON Schema: Resource "
        "'https://example.com/schemas/call.json' is not present in a registry and retrieving it "
        "failed: Retrieval is disabled, cannot fetch https://example.com/schemas/call.json)."
    ]


def test_a_transient_agents_plan_gives_the_analysis_and_its_failure_is_reported(
    double, webhook_receiver
):
    agent = create(double, **agent_fields(webhook_receiver))
    transient = {"name": "Survey", "llm_config": LLM, "analysis_plan": plan(SENTIMENT)}
    webhook_receiver.answer("assistant-request", json={"assistant": transient}, times=1)
    call = simulate(double, agent["id"])
    assert call["analysis"] == generate(SENTIMENT, expected_seed("none", call["id"]))

    broken = {**transient, "analysis_plan": plan(IMPOSSIBLE)}
    webhook_receiver.answer("assistant-request", json={"assistant": broken}, times=1)
    call = simulate(double, agent["id"])
    assert call["status"] == "ended" and call["analysis"] is None
    assert call["analysis_error"].startswith(
        "analysis must be given: the agent's analysis_plan.structured_data_plan.schema admits "
        "no value (The schema at /properties/age"
    )
