"""Hypothesis throws malformed and hostile JSON at POST and PATCH: never a 5xx, never a bad agent.

Bodies are near-valid agents with one spot replaced by raw text: deep nesting, numbers beyond
any float, NaN and Infinity literals, invalid UTF-8, lone surrogates, 10,000-item arrays, or any
JSON value at all. Whatever was accepted is read back at the end and must pass the API's own
validation unchanged.
"""

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import AgentSchema
from tests.conftest import VALID_AGENT, assert_valid_as_stored

POST_EXAMPLES = 100
PATCH_EXAMPLES = 100
SPOT = "\u2063spot\u2063"

KEYS = sorted(
    {*AgentSchema().fields, "type", "function", "tools", "role", "content", "provider", "unknown"}
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def repeat(item, times=10_000):
    return "[" + ",".join([item] * times) + "]"


hostile_text = st.one_of(
    st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 5_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.integers(20, 6_000).map(lambda digits: "-" * (digits % 2) + "9" * digits),
    st.sampled_from(["1e400", "-1e999", "1.7976931348623159e308", "4.9e-325", "1" * 400 + ".5"]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf", "+1", "01", ".5", "0x10"]),
    st.sampled_from(
        ['"\\ud800"', '"a\\udfffb"', '"\\udc00\\ud800"', '{"\\ud83d": 1}', '["\\ud800"]']
    ),
    # Invalid UTF-8, written as the surrogateescape characters that encode to those bytes.
    st.sampled_from(
        ['"\udcff"', '"\udcc3("', '"\udced\udca0\udc80"', '"\udcc0\udcaf"', '"\udcf8\udc88\udc80"']
    ),
    st.sampled_from(
        [
            repeat("1"),
            repeat('"ja"'),
            repeat('{"role":"user","content":"x"}'),
            repeat('"tool-calls"'),
            repeat('{"name":"t","description":"d"}'),
        ]
    ),
    json_values.map(json.dumps),
)

# Where in an agent the hostile text goes: a top-level field, or one inside a nested config.
spots = st.sampled_from(
    [
        ("name",),
        ("max_duration_seconds",),
        ("webhook_events",),
        ("webhook_secret",),
        ("unknown",),
        ("stt_config", "keyterms"),
        ("llm_config", "temperature"),
        ("llm_config", "messages"),
        ("llm_config", "tools"),
        ("llm_config", "tools", 0, "function", "parameters", "default"),
        ("tts_config", "speed"),
        ("analysis_plan",),
        ("analysis_plan", "structured_data_plan"),
        ("analysis_plan", "structured_data_plan", "schema", "examples"),
    ]
)

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def with_spot(agent, path):
    agent = json.loads(json.dumps(agent))
    target = agent
    for key in path[:-1]:
        if isinstance(key, str) and not isinstance(target.get(key), dict | list):
            target[key] = {}
        target = target[key]
    target[path[-1]] = SPOT
    return agent


def body_with(path, hostile, keep=lambda key: True):
    """A near-valid agent as raw bytes, with the raw text `hostile` at `path`."""
    agent = {**VALID_AGENT, "llm_config": {**VALID_AGENT["llm_config"], "tools": [TOOL]}}
    agent = {key: value for key, value in agent.items() if key in ("name", path[0]) or keep(key)}
    text = json.dumps(with_spot(agent, path), ensure_ascii=False)
    return text.replace(json.dumps(SPOT, ensure_ascii=False), hostile).encode(
        "utf-8", "surrogateescape"
    )


@st.composite
def bodies(draw):
    """Raw request bytes: a whole hostile document, or a near-valid agent with a hostile spot."""
    if draw(st.integers(0, 9)) == 0:
        return draw(hostile_text).encode("utf-8", "surrogateescape")
    keep_all = draw(st.booleans())
    return body_with(draw(spots), draw(hostile_text), lambda key: keep_all or draw(st.booleans()))


# Every kind of hostile input once, wherever it does the most harm, before the random ones.
EXAMPLES = [
    body_with(("llm_config", "tools", 0, "function", "parameters", "default"), "1e400"),
    body_with(("analysis_plan", "structured_data_plan", "schema", "examples"), "[-1e999]"),
    body_with(("max_duration_seconds",), "NaN"),
    body_with(("llm_config", "temperature"), "Infinity"),
    body_with(("max_duration_seconds",), "9" * 5_000),
    body_with(("name",), '"\\ud800"'),
    body_with(("analysis_plan", "structured_data_plan", "schema", "examples"), '[{"\\ud83d": 1}]'),
    body_with(("name",), '"\udcff"'),
    body_with(("name",), "[" * 100_000 + "]" * 100_000),
    body_with(
        ("llm_config", "tools", 0, "function", "parameters", "default"),
        '{"a":' * 5_000 + "1" + "}" * 5_000,
    ),
    body_with(("llm_config", "tools"), repeat('{"name":"t","description":"d"}')),
    body_with(("stt_config", "keyterms"), repeat('"ja"')),
    body_with(("webhook_events",), repeat('"tool-calls"')),
]


def assert_answer_in_contract(response, success):
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    body = response.get_json()
    if response.status_code == success:
        assert_valid_as_stored(body["agent"])
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(body["error"], str) and isinstance(body["code"], str)
        assert "Traceback" not in body["error"]


def assert_everything_stored_is_valid(client):
    agents = client.get("/agents").get_json()["agents"]
    for agent in agents:
        assert_valid_as_stored(agent)
    return agents


def run_with(strategy, explicit, examples, check):
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def run(value):
        check(value)

    for value in explicit:
        run = example(value)(run)
    run()


def test_hostile_post_bodies_never_cause_a_server_error_or_store_a_bad_agent(client):
    created = []

    def post(body):
        response = client.post("/agents", data=body, content_type="application/json")
        assert_answer_in_contract(response, 201)
        if response.status_code == 201:
            created.append(response.get_json()["agent"]["id"])

    run_with(bodies(), EXAMPLES, POST_EXAMPLES, post)

    assert {agent["id"] for agent in assert_everything_stored_is_valid(client)} == set(created)


def test_hostile_patch_bodies_never_cause_a_server_error_or_store_a_bad_agent(client, create_agent):
    agent = create_agent(webhook_secret="original-secret")
    url = f"/agents/{agent['id']}"
    content_types = st.sampled_from(["application/json", "application/merge-patch+json"])

    def patch(example):
        body, content_type = example
        assert_answer_in_contract(client.patch(url, data=body, content_type=content_type), 200)

    explicit = [(body, "application/merge-patch+json") for body in EXAMPLES]
    run_with(st.tuples(bodies(), content_types), explicit, PATCH_EXAMPLES, patch)

    [stored] = assert_everything_stored_is_valid(client)
    assert stored["id"] == agent["id"]
