"""What the service accepts and rejects in an agent body: API.md sections 3 and 4, over HTTP.

Each rejection row names one broken rule: the body sent, the dotted field path the service must
name, and the exact sentence(s) it must say there; every rejection also checks that nothing was
stored. The tables follow section 3 from top to bottom, then section 4 (types, unknown and
read-only fields, the error body, broken JSON, media types, body size, rejected PATCHes), then
the accepted side: defaults, the inclusive edges of every range, and exact round trips.
"""

import json
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

import models
from app import create_app
from strict_fields import is_utc_timestamp
from tests.conftest import LLM_UNSET, STT_UNSET, TTS_UNSET, VALID_AGENT

# The contract's lists, written out here rather than imported, so the tests check the service.
GROK_MODELS = [
    "grok-4-1-fast-non-reasoning",
    "grok-4-1-fast-reasoning",
    "grok-4-fast-non-reasoning",
    "grok-4-fast-reasoning",
    "grok-code-fast-1",
    "grok-4-0709",
    "grok-3-mini",
    "grok-3",
]
ELEVENLABS_MODELS = [
    "eleven_flash_v2_5",
    "eleven_v3",
    "eleven_multilingual_v2",
    "eleven_turbo_v2_5",
    "eleven_monolingual_v1",
]
# The shipped catalog's lists: the reference page's, and the platform's added since.
XAI_MODELS = ["grok-4.3", *GROK_MODELS]
ELEVENLABS_CATALOG_MODELS = [
    "eleven_flash_v2_5",
    "eleven_v4_turbo",
    "eleven_v4",
    "eleven_v3",
    "eleven_multilingual_v2",
    "eleven_turbo_v2_5",
    "eleven_monolingual_v1",
]
STT_PROVIDERS = "must be one of: deepgram, elevenlabs, gladia, mistral, google."
TTS_PROVIDERS = (
    "must be one of: elevenlabs, inworld, openai, cartesia, local, google, xai, voicedock."
)
OTHER_TTS_PROVIDERS = ["openai", "cartesia", "local"]
WEBHOOK_EVENTS = ["assistant-request", "tool-calls", "status-update", "end-of-call-report"]
ORDER_PARAMETERS = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "The order number."}},
    "required": ["order_id"],
}
EXTRACTION_SCHEMA = {
    "type": "object",
    "properties": {"outcome": {"type": "string", "enum": ["resolved", "escalated"]}},
    "required": ["outcome"],
}

# Sentence endings the service puts after a field path.
NAME_PATTERN = "must be 1 to 64 letters, digits, underscores or hyphens."
EVENT_CHOICES = "must be one of: assistant-request, tool-calls, status-update, end-of-call-report."
ROLE_CHOICES = "must be one of: system, user, assistant."
LLM_PROVIDERS = (
    "must be one of: openai, anthropic, groq, mistral, xai, xai_realtime, google, "
    "google_realtime, openai_live."
)
LANGUAGE_TAG = "must be a BCP 47 language tag such as nl, en, en-US or multi."
HTTP_URL = "must be an absolute http or https URL."
OBJECT_SCHEMA = 'must be a JSON Schema whose type is "object".'
VALID_SCHEMA = "must be a valid JSON Schema"  # followed by the checker's own words
REALTIME = (
    "must be null when llm_config.provider is xai_realtime, which is speech-to-speech "
    "and brings its own speech handling."
)
PLACEHOLDERS = "may use only the placeholders {{schema}}, {{transcript}}, {{ended_reason}};"


# --- body builders ---------------------------------------------------------------------------


def agent(**fields):
    """The smallest valid agent plus `fields`."""
    return {"name": "Support", **fields}


def stt(**overrides):
    return {"provider": "deepgram", "model": "nova-3-general", "language": "nl", **overrides}


def llm(**overrides):
    return {"provider": "openai", "model": "gpt-4o-mini", **overrides}


def tts(**overrides):
    return {"provider": "openai", "voice_id": "alloy", "language": "nl", **overrides}


def eleven(**overrides):
    return tts(**{"provider": "elevenlabs", "voice_id": "21m00Tcm4TlvDq8ikWAM", **overrides})


def nested_tool(name="lookup_order", **function):
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Look up an order.",
            "parameters": ORDER_PARAMETERS,
            **function,
        },
    }


def flat_tool(name="lookup_order", **overrides):
    return {
        "name": name,
        "description": "Look up an order.",
        "parameters": ORDER_PARAMETERS,
        **overrides,
    }


def with_tools(*tools):
    return agent(llm_config=llm(tools=list(tools)))


def with_plan(**overrides):
    return agent(analysis_plan={"structured_data_plan": {"schema": EXTRACTION_SCHEMA, **overrides}})


def analysis_message(content, role="system"):
    return with_plan(messages=[{"role": role, "content": content}])


def merged(base, **extra):
    return {**base, **extra}


def omit(mapping, *keys):
    return {key: value for key, value in mapping.items() if key not in keys}


def at(document, path):
    """The value at a dotted path; list items by index."""
    for segment in path.split("."):
        document = document[int(segment)] if isinstance(document, list) else document[segment]
    return document


class StartsWith:
    """A sentence whose end quotes a library (e-mail or JSON Schema checker) word for word."""

    def __init__(self, prefix):
        self.prefix = prefix

    def __eq__(self, other):
        return isinstance(other, str) and other.startswith(self.prefix) and other.endswith(".")

    def __repr__(self):
        return f"StartsWith({self.prefix!r})"


def reject(case_id, body, path, *messages):
    """A row: `body` is refused, naming `path` with exactly `messages`."""
    return pytest.param(body, path, list(messages), id=case_id)


def accept(case_id, body, path):
    """A row: `body` is stored, and the value at `path` comes back as sent."""
    return pytest.param(body, path, id=case_id)


# --- fixtures and HTTP helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_database(tmp_path_factory):
    """A real SQLite file; in RAM (/dev/shm) where there is one, as every commit fsyncs."""
    ram = Path("/dev/shm")
    if ram.is_dir() and os.access(ram, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="agents-validation-", dir=ram))
        yield folder / "agents.db"
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("validation") / "agents.db"


@pytest.fixture(scope="module")
def shared_app(shared_database):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{shared_database}"})


@pytest.fixture
def client(shared_app, shared_database):
    """Overrides conftest's `client`: one app for the module (an app per case is slow), on a
    database every test finds empty. Clearing it afterwards is the one step not done over HTTP,
    only because listing and deleting after each of hundreds of cases doubles the run time."""
    yield shared_app.test_client()
    with shared_app.extensions["store"].activated(), models.db.connection_context():
        models.Agent.delete().execute()


def error_of(response, status, code):
    """The error body, after checking status, code, and the one error shape."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"].endswith(".")
    return body


def assert_nothing_stored(client):
    assert client.get("/agents").get_json()["agents"] == []


def expect_invalid(client, body, path, messages):
    """POST `body`: a 400 validation_error saying exactly `messages` at `path`, storing nothing."""
    error = error_of(client.post("/agents", json=body), 400, "validation_error")
    assert error["fields"].get(path) == messages, error
    assert error["details"] == [m for sentences in error["fields"].values() for m in sentences]
    assert error["error"] == " ".join(error["details"])
    assert_nothing_stored(client)
    return error


def expect_created(client, body):
    response = client.post("/agents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["agent"]


def post_raw(client, data, content_type="application/json"):
    return client.post("/agents", data=data, content_type=content_type)


# --- 3. top-level fields ---------------------------------------------------------------------

TOP_LEVEL_REJECTIONS = [
    reject("a missing name is required", {}, "name", "name is required."),
    reject(
        "an empty name is blank, in one sentence", agent(name=""), "name", "name must not be blank."
    ),
    reject("a name of only spaces is blank", agent(name="   "), "name", "name must not be blank."),
    reject(
        "a name of 201 characters is too long",
        agent(name="n" * 201),
        "name",
        "name must be at most 200 characters long.",
    ),
    reject(
        "a business name of 201 characters is too long",
        agent(business_name="b" * 201),
        "business_name",
        "business_name must be at most 200 characters long.",
    ),
    *[
        reject(
            f"a notification email {label} is not an e-mail address",
            agent(notification_email=address),
            "notification_email",
            StartsWith("notification_email must be a valid e-mail address"),
        )
        for label, address in [
            ("without an at sign", "not-an-email"),
            ("without a domain", "support@"),
            ("without a local part", "@acme.com"),
            ("on a domain without a dot", "support@acme"),
            ("with a space", "a b@acme.com"),
            ("with a display name", "Acme <support@acme.com>"),
        ]
    ],
    reject(
        "a first message of 2001 characters is too long",
        agent(first_message="f" * 2001),
        "first_message",
        "first_message must be at most 2000 characters long.",
    ),
    reject(
        "a voicemail message of 2001 characters is too long",
        agent(voicemail_message="v" * 2001),
        "voicemail_message",
        "voicemail_message must be at most 2000 characters long.",
    ),
    *[
        reject(
            f"a max duration of {seconds} seconds is out of range",
            agent(max_duration_seconds=seconds),
            "max_duration_seconds",
            "max_duration_seconds must be between 1 and 86400.",
        )
        for seconds in [0, -1, 86_401]
    ],
    *[
        reject(
            f"a webhook url {label} is not an absolute http url",
            agent(webhook_url=url),
            "webhook_url",
            f"webhook_url {HTTP_URL}",
        )
        for label, url in [
            ("on ftp", "ftp://acme.com/hooks"),
            ("without a scheme", "acme.com/hooks"),
            ("that is only a path", "/hooks"),
            ("without a host", "https://"),
            ("running javascript", "javascript:alert(1)"),
        ]
    ],
    reject(
        "a webhook url of 2049 characters is too long",
        agent(webhook_url="https://acme.com/" + "h" * 2032),
        "webhook_url",
        "webhook_url must be at most 2048 characters long.",
    ),
    reject(
        "a webhook secret of 7 characters is too short",
        agent(webhook_secret="s" * 7),
        "webhook_secret",
        "webhook_secret must be between 8 and 256 characters long.",
    ),
    reject(
        "a webhook secret of 257 characters is too long",
        agent(webhook_secret="s" * 257),
        "webhook_secret",
        "webhook_secret must be between 8 and 256 characters long.",
    ),
    reject(
        "a webhook event the platform does not send is named by its index",
        agent(webhook_events=["tool-calls", "call-started"]),
        "webhook_events.1",
        f"webhook_events.1 {EVENT_CHOICES}",
    ),
    reject(
        "a webhook event listed twice is a duplicate",
        agent(webhook_events=["tool-calls", "status-update", "tool-calls"]),
        "webhook_events",
        "webhook_events must not repeat a value; tool-calls appears twice.",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), TOP_LEVEL_REJECTIONS)
def test_a_top_level_field_breaking_its_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- 3.1 stt_config --------------------------------------------------------------------------

STT_REJECTIONS = [
    *[
        reject(
            f"stt_config without {field} is rejected",
            agent(stt_config=omit(stt(), field)),
            f"stt_config.{field}",
            f"stt_config.{field} is required.",
        )
        for field in ["provider", "model", "language"]
    ],
    reject(
        "an stt provider other than deepgram is rejected",
        agent(stt_config=stt(provider="whisper")),
        "stt_config.provider",
        f"stt_config.provider {STT_PROVIDERS}",
    ),
    *[
        reject(
            f"an stt model {label} is rejected",
            agent(stt_config=stt(model=model)),
            "stt_config.model",
            "stt_config.model must be between 1 and 100 characters long.",
        )
        for label, model in [("that is empty", ""), ("of 101 characters", "m" * 101)]
    ],
    *[
        reject(
            f"the stt language {language!r} is not a BCP 47 tag",
            agent(stt_config=stt(language=language)),
            "stt_config.language",
            f"stt_config.language {LANGUAGE_TAG}",
        )
        for language in ["en_US", "", "e", "1234", "nl-", "dutch language"]
    ],
    reject(
        "101 keyterms are too many",
        agent(stt_config=stt(keyterms=[f"term{i}" for i in range(101)])),
        "stt_config.keyterms",
        "stt_config.keyterms must have at most 100 items.",
    ),
    reject(
        "an empty keyterm is rejected by its index",
        agent(stt_config=stt(keyterms=["ja", ""])),
        "stt_config.keyterms.1",
        "stt_config.keyterms.1 must be between 1 and 100 characters long.",
    ),
    reject(
        "a keyterm of 101 characters is rejected",
        agent(stt_config=stt(keyterms=["k" * 101])),
        "stt_config.keyterms.0",
        "stt_config.keyterms.0 must be between 1 and 100 characters long.",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), STT_REJECTIONS)
def test_an_stt_config_breaking_its_rules_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- 3.2 llm_config --------------------------------------------------------------------------

REALTIME_LLM = llm(provider="xai_realtime", model="grok-3")

LLM_REJECTIONS = [
    *[
        reject(
            f"llm_config without {field} is rejected",
            agent(llm_config=omit(llm(), field)),
            f"llm_config.{field}",
            f"llm_config.{field} is required.",
        )
        for field in ["provider", "model"]
    ],
    reject(
        "an llm provider the platform does not offer is rejected",
        agent(llm_config=llm(provider="cohere")),
        "llm_config.provider",
        f"llm_config.provider {LLM_PROVIDERS}",
    ),
    *[
        reject(
            f"an llm model {label} is rejected",
            agent(llm_config=llm(model=model)),
            "llm_config.model",
            "llm_config.model must be between 1 and 100 characters long.",
        )
        for label, model in [("that is empty", ""), ("of 101 characters", "m" * 101)]
    ],
    *[
        reject(
            f"the xai provider with the model {model} is not a listed grok model",
            agent(llm_config=llm(provider="xai", model=model)),
            "llm_config.model",
            f"llm_config.model must be one of the xai models: {', '.join(XAI_MODELS)}.",
        )
        for model in ["gpt-4o-mini", "grok-2", "GROK-3"]
    ],
    *[
        reject(
            f"a temperature of {value} is out of range",
            agent(llm_config=llm(temperature=value)),
            "llm_config.temperature",
            "llm_config.temperature must be between 0 and 2.",
        )
        for value in [-0.01, 2.01, 3]
    ],
    reject(
        "101 llm messages are too many",
        agent(llm_config=llm(messages=[{"role": "user", "content": "hi"}] * 101)),
        "llm_config.messages",
        "llm_config.messages must have at most 100 items.",
    ),
    reject(
        "a message role other than system user or assistant is rejected",
        agent(llm_config=llm(messages=[{"role": "tool", "content": "hi"}])),
        "llm_config.messages.0.role",
        f"llm_config.messages.0.role {ROLE_CHOICES}",
    ),
    reject(
        "a message without a role is rejected",
        agent(llm_config=llm(messages=[{"content": "hi"}])),
        "llm_config.messages.0.role",
        "llm_config.messages.0.role is required.",
    ),
    reject(
        "a message without content is rejected",
        agent(llm_config=llm(messages=[{"role": "system"}])),
        "llm_config.messages.0.content",
        "llm_config.messages.0.content is required.",
    ),
    *[
        reject(
            f"a message content {label} is rejected",
            agent(llm_config=llm(messages=[{"role": "system", "content": content}])),
            "llm_config.messages.0.content",
            "llm_config.messages.0.content must be between 1 and 100000 characters long.",
        )
        for label, content in [("that is empty", ""), ("of 100001 characters", "c" * 100_001)]
    ],
    reject(
        "a message that is not an object is rejected by its index",
        agent(llm_config=llm(messages=[{"role": "user", "content": "hi"}, "hello"])),
        "llm_config.messages.1",
        "llm_config.messages.1 must be an object.",
    ),
    reject(
        "an xai_realtime agent with an stt_config is rejected saying why",
        agent(llm_config=REALTIME_LLM, stt_config=stt()),
        "stt_config",
        f"stt_config {REALTIME}",
    ),
    reject(
        "an xai_realtime agent with a tts_config is rejected saying why",
        agent(llm_config=REALTIME_LLM, tts_config=tts()),
        "tts_config",
        f"tts_config {REALTIME}",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), LLM_REJECTIONS)
def test_an_llm_config_breaking_its_rules_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


def test_an_xai_realtime_agent_with_both_speech_configs_is_told_about_both(client):
    body = agent(llm_config=REALTIME_LLM, stt_config=stt(), tts_config=tts())
    error = expect_invalid(client, body, "stt_config", [f"stt_config {REALTIME}"])
    assert error["fields"]["tts_config"] == [f"tts_config {REALTIME}"]


# --- 3.2 tools, in both shapes ---------------------------------------------------------------

# shape, its builder, where its function members sit, where its url sits, a tool with a url
SHAPES = [
    (
        "nested",
        nested_tool,
        "function.",
        "server.url",
        lambda url: merged(nested_tool(), server={"url": url}),
    ),
    ("flat", flat_tool, "", "url", lambda url: flat_tool(url=url)),
]


def _rows_for_each_tool_shape():
    for shape, tool, inner, url_at, tool_with_url in SHAPES:
        name, description, parameters = (
            f"llm_config.tools.0.{inner}{member}"
            for member in ("name", "description", "parameters")
        )
        for label, bad_name in [
            ("with a space", "get weather"),
            ("that is empty", ""),
            ("of 65 characters", "t" * 65),
            ("with a dot", "get.weather"),
            ("with an accented letter", "naïve"),
            ("with a slash", "orders/lookup"),
        ]:
            yield reject(
                f"a {shape} tool name {label} breaks the name pattern",
                with_tools(tool(bad_name)),
                name,
                f"{name} {NAME_PATTERN}",
            )
        yield reject(
            f"a {shape} tool description of 1025 characters is too long",
            with_tools(tool(description="d" * 1025)),
            description,
            f"{description} must be at most 1024 characters long.",
        )
        for label, schema in [
            ("of type string", {"type": "string"}),
            ("of type array", {"type": "array", "items": {"type": "string"}}),
            ("without a type", {"properties": {"order_id": {"type": "string"}}}),
        ]:
            yield reject(
                f"{shape} tool parameters {label} are not an object schema",
                with_tools(tool(parameters=schema)),
                parameters,
                f"{parameters} {OBJECT_SCHEMA}",
            )
        for label, schema in [
            ("with an unknown type name", {"type": "objekt"}),
            (
                "with a numeric property type",
                {"type": "object", "properties": {"order_id": {"type": 5}}},
            ),
            ("with required not being a list", {"type": "object", "required": "order_id"}),
        ]:
            yield reject(
                f"{shape} tool parameters {label} are not a valid JSON Schema",
                with_tools(tool(parameters=schema)),
                parameters,
                StartsWith(f"{parameters} {VALID_SCHEMA}"),
            )
        yield reject(
            f"{shape} tool parameters that are not an object are rejected",
            with_tools(tool(parameters="order_id")),
            parameters,
            f"{parameters} must be an object.",
        )
        for label, url in [
            ("on ftp", "ftp://acme.com/tools"),
            ("without a scheme", "acme.com/x"),
            ("that is empty", ""),
        ]:
            yield reject(
                f"a {shape} tool url {label} is not an absolute http url",
                with_tools(tool_with_url(url)),
                f"llm_config.tools.0.{url_at}",
                f"llm_config.tools.0.{url_at} {HTTP_URL}",
            )
        yield reject(
            f"a {shape} tool async flag given as a string is rejected",
            with_tools(merged(tool(), **{"async": "yes"})),
            "llm_config.tools.0.async",
            "llm_config.tools.0.async must be true or false.",
        )


def duplicate(case_id, tools, index, name_at):
    path = f"llm_config.tools.{index}.{name_at}"
    return reject(
        case_id,
        with_tools(*tools),
        path,
        f"{path} must be unique within the agent; lookup_order is already the name of "
        "llm_config.tools.0.",
    )


TOOL_REJECTIONS = [
    *_rows_for_each_tool_shape(),
    duplicate(
        "two nested tools may not share a name", [nested_tool(), nested_tool()], 1, "function.name"
    ),
    duplicate("two flat tools may not share a name", [flat_tool(), flat_tool()], 1, "name"),
    duplicate(
        "a flat tool may not reuse a nested tool's name", [nested_tool(), flat_tool()], 1, "name"
    ),
    duplicate(
        "a nested tool may not reuse a flat tool's name",
        [flat_tool(), nested_tool()],
        1,
        "function.name",
    ),
    duplicate(
        "a third tool reusing the first tool's name is named by index 2",
        [nested_tool(), flat_tool("cancel_order"), nested_tool()],
        2,
        "function.name",
    ),
    reject(
        "129 tools are too many",
        with_tools(*[flat_tool(f"tool_{i}") for i in range(129)]),
        "llm_config.tools",
        "llm_config.tools must have at most 128 items.",
    ),
    reject(
        "a tool that is not an object is rejected by its index",
        with_tools(nested_tool(), "lookup_order"),
        "llm_config.tools.1",
        "llm_config.tools.1 must be an object.",
    ),
    reject(
        "a nested tool whose type is not function is rejected",
        with_tools(merged(nested_tool(), type="webhook")),
        "llm_config.tools.0.type",
        "llm_config.tools.0.type must be one of: function.",
    ),
    reject(
        "a nested tool without its function is rejected",
        with_tools({"type": "function"}),
        "llm_config.tools.0.function",
        "llm_config.tools.0.function is required.",
    ),
    reject(
        "a nested tool whose function has no name is rejected",
        with_tools({"type": "function", "function": {"description": "Look up an order."}}),
        "llm_config.tools.0.function.name",
        "llm_config.tools.0.function.name is required.",
    ),
    reject(
        "a nested tool whose server has no url is rejected",
        with_tools(merged(nested_tool(), server={})),
        "llm_config.tools.0.server.url",
        "llm_config.tools.0.server.url is required.",
    ),
    reject(
        "a nested tool with a flat tool's name member mixes the shapes",
        with_tools(merged(nested_tool(), name="lookup_order")),
        "llm_config.tools.0.name",
        "llm_config.tools.0.name is not a known field.",
    ),
    *[
        reject(
            f"a flat tool without a {field} is rejected",
            with_tools(omit(flat_tool(), field)),
            f"llm_config.tools.0.{field}",
            f"llm_config.tools.0.{field} is required.",
        )
        for field in ["name", "description"]
    ],
    reject(
        "a flat tool async_response that is not a string is rejected",
        with_tools(flat_tool(async_response=1)),
        "llm_config.tools.0.async_response",
        "llm_config.tools.0.async_response must be a string.",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), TOOL_REJECTIONS)
def test_a_tool_breaking_its_rules_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


def test_a_bad_third_tool_is_named_by_its_index(client):
    body = with_tools(nested_tool("a"), flat_tool("b"), nested_tool("not valid"))
    expect_invalid(
        client,
        body,
        "llm_config.tools.2.function.name",
        [f"llm_config.tools.2.function.name {NAME_PATTERN}"],
    )


# --- 3.3 tts_config --------------------------------------------------------------------------

TTS_REJECTIONS = [
    *[
        reject(
            f"tts_config without {field} is rejected",
            agent(tts_config=omit(tts(), field)),
            f"tts_config.{field}",
            f"tts_config.{field} is required.",
        )
        for field in ["provider", "voice_id", "language"]
    ],
    reject(
        "a tts provider the platform does not offer is rejected",
        agent(tts_config=tts(provider="polly")),
        "tts_config.provider",
        f"tts_config.provider {TTS_PROVIDERS}",
    ),
    *[
        reject(
            f"a voice id {label} is rejected",
            agent(tts_config=tts(voice_id=voice)),
            "tts_config.voice_id",
            "tts_config.voice_id must be between 1 and 200 characters long.",
        )
        for label, voice in [("that is empty", ""), ("of 201 characters", "v" * 201)]
    ],
    reject(
        "a tts language that is not a BCP 47 tag is rejected",
        agent(tts_config=tts(language="nl_NL")),
        "tts_config.language",
        f"tts_config.language {LANGUAGE_TAG}",
    ),
    reject(
        "an elevenlabs model that elevenlabs does not offer is rejected",
        agent(tts_config=eleven(model="eleven_v2")),
        "tts_config.model",
        "tts_config.model must be one of the elevenlabs models: "
        f"{', '.join(ELEVENLABS_CATALOG_MODELS)}.",
    ),
    *[
        reject(
            f"eleven_monolingual_v1 cannot speak {language}",
            agent(tts_config=eleven(model="eleven_monolingual_v1", language=language)),
            "tts_config.language",
            "tts_config.language must be en or en-* with eleven_monolingual_v1, which speaks "
            "en only.",
        )
        for language in ["nl", "de", "multi", "eng"]
    ],
    *[
        reject(
            f"a model {label} for another provider is rejected",
            agent(tts_config=tts(model=model)),
            "tts_config.model",
            "tts_config.model must be between 1 and 100 characters long.",
        )
        for label, model in [("of 101 characters", "m" * 101), ("that is empty", "")]
    ],
    *[
        reject(
            f"an elevenlabs model sent with {provider} says to clear it",
            agent(tts_config=tts(provider=provider, model="eleven_v3")),
            "tts_config.model",
            f"tts_config.model is an elevenlabs model; set it to null or to a model that "
            f"{provider} offers.",
        )
        for provider in OTHER_TTS_PROVIDERS
    ],
    *[
        reject(
            f"an elevenlabs speed of {speed} is outside 0.5 to 2.0",
            agent(tts_config=eleven(speed=speed)),
            "tts_config.speed",
            "tts_config.speed must be between 0.5 and 2.0 for elevenlabs.",
        )
        for speed in [0.49, 2.01, 4.0]
    ],
    *[
        reject(
            f"with {provider} a speed of {speed} is outside 0.25 to 4.0",
            agent(tts_config=tts(provider=provider, speed=speed)),
            "tts_config.speed",
            f"tts_config.speed must be between 0.25 and 4.0 for {provider}.",
        )
        for provider in OTHER_TTS_PROVIDERS
        for speed in [0.24, 4.01]
    ],
    *[
        reject(
            f"an elevenlabs {field} of {value} is outside 0 to 1",
            agent(tts_config=eleven(**{field: value})),
            f"tts_config.{field}",
            f"tts_config.{field} must be between 0 and 1.",
        )
        for field in ["stability", "similarity_boost"]
        for value in [-0.01, 1.01]
    ],
    *[
        reject(
            f"{field} sent with {provider} names the field and the provider",
            agent(tts_config=tts(provider=provider, **{field: value})),
            f"tts_config.{field}",
            f"tts_config.{field} is only for the elevenlabs provider, not {provider}; set it "
            f"to null to use {provider}.",
        )
        for field, value in [
            ("stability", 0.5),
            ("similarity_boost", 0.75),
            ("use_speaker_boost", False),
        ]
        for provider in OTHER_TTS_PROVIDERS
    ],
]


@pytest.mark.parametrize(("body", "path", "messages"), TTS_REJECTIONS)
def test_a_tts_config_breaking_its_rules_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- 3.4 analysis_plan -----------------------------------------------------------------------

PLAN = "analysis_plan.structured_data_plan"

ANALYSIS_REJECTIONS = [
    reject(
        "a structured data plan without a schema is rejected",
        agent(analysis_plan={"structured_data_plan": {"enabled": True}}),
        f"{PLAN}.schema",
        f"{PLAN}.schema is required unless template_id is given.",
    ),
    reject(
        "a structured data schema that is not an object is rejected",
        with_plan(schema="outcome"),
        f"{PLAN}.schema",
        f"{PLAN}.schema must be an object.",
    ),
    *[
        reject(
            f"a structured data schema {label} fails the 2020-12 meta-schema",
            with_plan(schema=schema),
            f"{PLAN}.schema",
            StartsWith(f"{PLAN}.schema {VALID_SCHEMA}"),
        )
        for label, schema in [
            ("with an unknown type name", {"type": "objekt"}),
            (
                "with a numeric property type",
                {"type": "object", "properties": {"outcome": {"type": 5}}},
            ),
            ("with a negative minLength", {"type": "string", "minLength": -1}),
            ("with required not being a list", {"type": "object", "required": "outcome"}),
            (
                "with prefixItems not being a list",
                {"type": "array", "prefixItems": {"type": "string"}},
            ),
        ]
    ],
    *[
        reject(
            f"an analysis message using the unknown placeholder {placeholder} is rejected",
            analysis_message(f"Extract {placeholder} from {{{{transcript}}}}."),
            f"{PLAN}.messages.0.content",
            f"{PLAN}.messages.0.content {PLACEHOLDERS} {placeholder} is not one of them.",
        )
        for placeholder in ["{{summary}}", "{{Transcript}}", "{{}}"]
    ],
    reject(
        "an analysis message role other than system user or assistant is rejected",
        analysis_message("Extract the outcome.", role="tool"),
        f"{PLAN}.messages.0.role",
        f"{PLAN}.messages.0.role {ROLE_CHOICES}",
    ),
    reject(
        "an empty analysis message content is rejected",
        analysis_message(""),
        f"{PLAN}.messages.0.content",
        f"{PLAN}.messages.0.content must be between 1 and 100000 characters long.",
    ),
    reject(
        "a negative min messages threshold is rejected",
        agent(analysis_plan={"min_messages_threshold": -1}),
        "analysis_plan.min_messages_threshold",
        "analysis_plan.min_messages_threshold must be at least 0.",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), ANALYSIS_REJECTIONS)
def test_an_analysis_plan_breaking_its_rules_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- 4. wrong JSON types: nothing is coerced -------------------------------------------------

# path -> a body putting a value there
BOOLEANS = {
    "is_active": lambda value: agent(is_active=value),
    "voicemail_detection": lambda value: agent(voicemail_detection=value),
    "autonomous_silence_handling": lambda value: agent(autonomous_silence_handling=value),
    "tts_config.use_speaker_boost": lambda value: agent(tts_config=eleven(use_speaker_boost=value)),
    "llm_config.tools.0.async": lambda value: with_tools(merged(nested_tool(), **{"async": value})),
    f"{PLAN}.enabled": lambda value: with_plan(enabled=value),
}
INTEGERS = {
    "max_duration_seconds": lambda value: agent(max_duration_seconds=value),
    "analysis_plan.min_messages_threshold": lambda value: agent(
        analysis_plan={"min_messages_threshold": value}
    ),
}
NUMBERS = {
    "llm_config.temperature": lambda value: agent(llm_config=llm(temperature=value)),
    "tts_config.speed": lambda value: agent(tts_config=eleven(speed=value)),
    "tts_config.stability": lambda value: agent(tts_config=eleven(stability=value)),
    "tts_config.similarity_boost": lambda value: agent(tts_config=eleven(similarity_boost=value)),
}
STRINGS = {
    "name": lambda value: agent(name=value),
    "business_name": lambda value: agent(business_name=value),
    "notification_email": lambda value: agent(notification_email=value),
    "first_message": lambda value: agent(first_message=value),
    "voicemail_message": lambda value: agent(voicemail_message=value),
    "webhook_url": lambda value: agent(webhook_url=value),
    "webhook_secret": lambda value: agent(webhook_secret=value),
    "webhook_events.0": lambda value: agent(webhook_events=[value]),
    "stt_config.model": lambda value: agent(stt_config=stt(model=value)),
    "stt_config.keyterms.0": lambda value: agent(stt_config=stt(keyterms=[value])),
    "llm_config.model": lambda value: agent(llm_config=llm(model=value)),
    "llm_config.messages.0.content": lambda value: agent(
        llm_config=llm(messages=[{"role": "user", "content": value}])
    ),
    "llm_config.tools.0.name": lambda value: with_tools(flat_tool(name=value)),
    "tts_config.voice_id": lambda value: agent(tts_config=tts(voice_id=value)),
    "tts_config.model": lambda value: agent(tts_config=tts(model=value)),
}
NOT_NULL = {
    **{
        path: BOOLEANS[path]
        for path in ["is_active", "voicemail_detection", "autonomous_silence_handling"]
    },
    **INTEGERS,
    "name": STRINGS["name"],
    "llm_config.temperature": NUMBERS["llm_config.temperature"],
    "webhook_events": lambda value: agent(webhook_events=value),
    "stt_config.provider": lambda value: agent(stt_config=stt(provider=value)),
    "stt_config.keyterms": lambda value: agent(stt_config=stt(keyterms=value)),
    "llm_config.messages": lambda value: agent(llm_config=llm(messages=value)),
    "llm_config.tools": lambda value: agent(llm_config=llm(tools=value)),
    "tts_config.voice_id": STRINGS["tts_config.voice_id"],
}
OBJECTS = {
    "stt_config": lambda value: agent(stt_config=value),
    "llm_config": lambda value: agent(llm_config=value),
    "tts_config": lambda value: agent(tts_config=value),
    "analysis_plan": lambda value: agent(analysis_plan=value),
    PLAN: lambda value: agent(analysis_plan={"structured_data_plan": value}),
}
ARRAYS = {
    path: NOT_NULL[path]
    for path in ["webhook_events", "stt_config.keyterms", "llm_config.messages", "llm_config.tools"]
}


def wrong_types(fields, values, kind, message):
    return [
        reject(
            f"{path} given as {json.dumps(value)} is not {kind}",
            build(value),
            path,
            f"{path} {message}",
        )
        for path, build in fields.items()
        for value in values
    ]


TYPE_REJECTIONS = [
    *wrong_types(BOOLEANS, ["true", 1, 0], "a boolean", "must be true or false."),
    *wrong_types(INTEGERS, [600.0, "600", True, 2.5], "an integer", "must be an integer."),
    *wrong_types(NUMBERS, ["0.7", True], "a number", "must be a number."),
    *wrong_types(STRINGS, [5, 0.7, ["x"]], "a string", "must be a string."),
    *wrong_types(NOT_NULL, [None], "allowed", "must not be null."),
    *wrong_types(OBJECTS, ["config", [], 1, True], "an object", "must be an object."),
    *wrong_types(ARRAYS, ["tool-calls", {}], "an array", "must be an array."),
]


@pytest.mark.parametrize(("body", "path", "messages"), TYPE_REJECTIONS)
def test_a_value_of_the_wrong_json_type_is_rejected_not_coerced(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- 4. unknown and read-only fields ---------------------------------------------------------

UNKNOWN_FIELD_REJECTIONS = [
    reject(f"an unknown field {path} is rejected", body, path, f"{path} is not a known field.")
    for path, body in [
        ("nickname", agent(nickname="Sam")),
        ("Name", agent(Name="Support")),
        ("webhookUrl", agent(webhookUrl="https://acme.com/hooks")),
        ("stt_config.punctuate", agent(stt_config=stt(punctuate=True))),
        ("llm_config.max_tokens", agent(llm_config=llm(max_tokens=256))),
        (
            "llm_config.messages.0.name",
            agent(llm_config=llm(messages=[{"role": "user", "content": "hi", "name": "Sam"}])),
        ),
        ("llm_config.tools.0.strict", with_tools(merged(nested_tool(), strict=True))),
        ("llm_config.tools.0.function.strict", with_tools(nested_tool(strict=True))),
        (
            "llm_config.tools.0.server.headers",
            with_tools(merged(nested_tool(), server={"url": "https://acme.com/t", "headers": {}})),
        ),
        ("llm_config.tools.0.method", with_tools(flat_tool(method="POST"))),
        ("tts_config.pitch", agent(tts_config=tts(pitch=1.0))),
        ("analysis_plan.summary_plan", agent(analysis_plan={"summary_plan": {}})),
        (f"{PLAN}.timeout", with_plan(timeout=5)),
    ]
]


@pytest.mark.parametrize(("body", "path", "messages"), UNKNOWN_FIELD_REJECTIONS)
def test_an_unknown_field_is_rejected_not_dropped(client, body, path, messages):
    expect_invalid(client, body, path, messages)


READ_ONLY_VALUES = {
    "id": "17a0cb75-fa09-4bdd-9a44-92a70d829c88",
    "created_at": "2025-12-13T10:00:00.000Z",
    "updated_at": "2025-12-13T10:00:00.000Z",
    "webhook_secret_set": False,
}


@pytest.mark.parametrize("field", READ_ONLY_VALUES)
def test_a_read_only_field_in_a_post_body_is_rejected_as_read_only(client, field):
    expect_invalid(
        client, agent(**{field: READ_ONLY_VALUES[field]}), field, [f"{field} is read-only."]
    )


@pytest.mark.parametrize("field", READ_ONLY_VALUES)
def test_a_read_only_field_in_a_patch_body_is_rejected_and_changes_nothing(
    client, create_agent, field
):
    stored = create_agent()
    response = client.patch(f"/agents/{stored['id']}", json={field: READ_ONLY_VALUES[field]})
    assert error_of(response, 400, "validation_error")["fields"] == {
        field: [f"{field} is read-only."]
    }
    assert client.get(f"/agents/{stored['id']}").get_json()["agent"] == stored


# --- 4. the error body -----------------------------------------------------------------------


def test_a_missing_name_gives_the_reference_text_exactly(client):
    assert error_of(client.post("/agents", json={}), 400, "validation_error") == {
        "error": "name is required.",
        "code": "validation_error",
        "type": "validation_error",
        "param": "name",
        "details": ["name is required."],
        "fields": {"name": ["name is required."]},
    }


def test_every_problem_is_listed_at_once_exactly_as_in_the_contract_example(client):
    response = client.post("/agents", json={"llm_config": llm(temperature=3)})
    assert error_of(response, 400, "validation_error") == {
        "error": "name is required. llm_config.temperature must be between 0 and 2.",
        "code": "validation_error",
        "type": "validation_error",
        "param": "name",
        "details": ["name is required.", "llm_config.temperature must be between 0 and 2."],
        "fields": {
            "name": ["name is required."],
            "llm_config.temperature": ["llm_config.temperature must be between 0 and 2."],
        },
    }
    assert_nothing_stored(client)


def test_problems_are_reported_in_section_3_field_order_whatever_order_they_were_sent_in(client):
    body = {  # every object's members sent last-first; `name` is missing
        "analysis_plan": {"min_messages_threshold": -1},
        "tts_config": {"speed": 9, "language": "nl_NL", "voice_id": "", "provider": "openai"},
        "llm_config": {"temperature": 3, "model": "gpt-4o-mini", "provider": "cohere"},
        "stt_config": stt(language="en_US"),
        "webhook_events": ["call-started"],
        "max_duration_seconds": 0,
        "business_name": "b" * 201,
    }
    expected = [
        ("name", "name is required."),
        ("business_name", "business_name must be at most 200 characters long."),
        ("max_duration_seconds", "max_duration_seconds must be between 1 and 86400."),
        ("webhook_events.0", f"webhook_events.0 {EVENT_CHOICES}"),
        ("stt_config.language", f"stt_config.language {LANGUAGE_TAG}"),
        ("llm_config.provider", f"llm_config.provider {LLM_PROVIDERS}"),
        ("llm_config.temperature", "llm_config.temperature must be between 0 and 2."),
        ("tts_config.voice_id", "tts_config.voice_id must be between 1 and 200 characters long."),
        ("tts_config.language", f"tts_config.language {LANGUAGE_TAG}"),
        ("tts_config.speed", "tts_config.speed must be between 0.25 and 4.0 for openai."),
        (
            "analysis_plan.min_messages_threshold",
            "analysis_plan.min_messages_threshold must be at least 0.",
        ),
    ]
    error = error_of(client.post("/agents", json=body), 400, "validation_error")
    assert error["details"] == [message for _, message in expected]
    assert error["error"] == " ".join(message for _, message in expected)
    assert list(error["fields"].items()) == [(path, [message]) for path, message in expected]
    assert_nothing_stored(client)


def test_every_message_is_a_sentence_led_by_its_dotted_field_path(client):
    body = agent(
        name="",
        notification_email="nope",
        webhook_events=["tool-calls", "tool-calls"],
        stt_config=stt(keyterms=[""]),
        llm_config=llm(temperature="hot", tools=[flat_tool(url="x")]),
        tts_config=tts(stability=0.5),
        analysis_plan={"structured_data_plan": {"schema": []}},
        surprise=True,
    )
    error = error_of(client.post("/agents", json=body), 400, "validation_error")
    assert list(error["fields"]) == [
        "name",
        "notification_email",
        "webhook_events",
        "stt_config.keyterms.0",
        "llm_config.temperature",
        "llm_config.tools.0.url",
        "tts_config.stability",
        f"{PLAN}.schema",
        "surprise",
    ]
    for path, messages in error["fields"].items():
        assert all(m.startswith(f"{path} ") and m.endswith(".") for m in messages), messages


def test_a_rejected_secret_is_never_echoed_in_the_error(client):
    secret = "sh0rt!!"
    error = expect_invalid(
        client,
        agent(webhook_secret=secret),
        "webhook_secret",
        ["webhook_secret must be between 8 and 256 characters long."],
    )
    assert secret not in json.dumps(error)


# --- 4. bodies that are not a JSON object ----------------------------------------------------


def nested_lists(levels):
    """A body nesting `levels` deep, counting the body object as the first level."""
    return '{"name": "x", "extra": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


INVALID_JSON_BODIES = [
    pytest.param(b"", id="an empty body is not JSON"),
    pytest.param(b'{"name": "x"', id="a truncated object is not JSON"),
    pytest.param(b"{'name': 'x'}", id="single quotes are not JSON"),
    pytest.param(b'{"name": "x",}', id="a trailing comma is not JSON"),
    pytest.param(b'{"name": "x"} {"name": "y"}', id="two objects in a row are not JSON"),
    pytest.param(b"name=x", id="a form-encoded body is not JSON"),
    pytest.param(b"[]", id="an array is not a JSON object"),
    pytest.param(b'[{"name": "x"}]', id="an array holding an agent is not a JSON object"),
    pytest.param(b'"x"', id="a string is not a JSON object"),
    pytest.param(b"42", id="a number is not a JSON object"),
    pytest.param(b"null", id="null is not a JSON object"),
    pytest.param(b"true", id="true is not a JSON object"),
    pytest.param(
        b'{"name": "x", "llm_config": {"provider": "openai", "model": "m", "temperature": NaN}}',
        id="a NaN literal is not JSON",
    ),
    pytest.param(
        b'{"name": "x", "max_duration_seconds": Infinity}', id="an Infinity literal is not JSON"
    ),
    pytest.param(
        b'{"name": "x", "max_duration_seconds": -Infinity}',
        id="a minus Infinity literal is not JSON",
    ),
    pytest.param(b'{"name": "\xff\xfe"}', id="invalid UTF-8 bytes are not JSON"),
    pytest.param(b'{"name": "ok\xc3"}', id="a truncated UTF-8 sequence is not JSON"),
    pytest.param(b'{"name": "\xed\xa0\x80"}', id="a surrogate encoded in bytes is not UTF-8"),
    pytest.param(b'{"name": "\\ud800"}', id="a lone surrogate escape is not Unicode text"),
    pytest.param(b'{"name": "x", "\\udc00": 1}', id="a lone surrogate escape in a key is refused"),
    pytest.param(
        b'{"name": "x", "llm_config": {"provider": "openai", "model": "m", "messages": '
        b'[{"role": "user", "content": "hi \\ud83d"}]}}',
        id="a lone surrogate deep inside the body is refused",
    ),
    pytest.param(
        '{"name": "\ud800"}'.encode("utf-16-le", "surrogatepass"),
        id="a lone surrogate in a UTF-16 body is refused",
    ),
    pytest.param(
        '{"name": "\udfff"}'.encode("utf-32", "surrogatepass"),
        id="a lone surrogate in a UTF-32 body is refused",
    ),
    pytest.param(nested_lists(65).encode(), id="nesting 65 levels deep is refused"),
    pytest.param(
        b"[" * 100_000 + b"]" * 100_000, id="nesting that would exhaust a parser is refused"
    ),
]


@pytest.mark.parametrize("data", INVALID_JSON_BODIES)
def test_a_body_that_is_not_a_json_object_is_invalid_json(client, data):
    error = error_of(post_raw(client, data), 400, "invalid_json")
    assert "fields" not in error
    assert_nothing_stored(client)


def test_nesting_exactly_64_levels_deep_is_still_parsed(client):
    error = error_of(post_raw(client, nested_lists(64)), 400, "validation_error")
    assert error["fields"] == {"extra": ["extra is not a known field."]}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'{"name": "x", "llm_config": {"provider": "openai", "model": "m", "tools": '
            b'[{"name": "a", "description": "d", "parameters": '
            b'{"type": "object", "maximum": 1e400}}]}}',
            id="in tool parameters",
        ),
        pytest.param(
            b'{"name": "x", "analysis_plan": {"structured_data_plan": {"schema": '
            b'{"type": "number", "maximum": 1e400}}}}',
            id="in a structured data schema",
        ),
        pytest.param(
            b'{"name": "x", "llm_config": {"provider": "openai", "model": "m", '
            b'"temperature": 1e400}}',
            id="as a temperature",
        ),
    ],
)
def test_a_number_too_large_for_a_double_is_refused_with_400_not_a_server_error(client, data):
    response = post_raw(client, data)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] in ("invalid_json", "validation_error")
    assert_nothing_stored(client)


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text plain is not JSON"),
        pytest.param("application/x-www-form-urlencoded", id="a form is not JSON"),
        pytest.param("multipart/form-data; boundary=x", id="multipart is not JSON"),
        pytest.param("text/json", id="text json is not the JSON media type"),
        pytest.param(None, id="no content type is not JSON"),
    ],
)
def test_a_post_without_a_json_content_type_is_unsupported_media_type(client, content_type):
    data = json.dumps(agent())
    response = (
        client.post("/agents", data=data)
        if content_type is None
        else post_raw(client, data, content_type)
    )
    assert "fields" not in error_of(response, 415, "unsupported_media_type")
    assert_nothing_stored(client)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_a_post_with_a_json_content_type_is_accepted(client, content_type):
    assert post_raw(client, json.dumps(agent()), content_type).status_code == 201


def body_of_size(size):
    padding = json.dumps(agent(first_message=""))
    data = json.dumps(agent(first_message="p" * (size - len(padding))))
    assert len(data.encode()) == size
    return data


def test_a_body_over_the_size_limit_is_payload_too_large_and_stores_nothing(make_app):
    client = make_app(MAX_BODY_BYTES=1000).test_client()
    error_of(post_raw(client, body_of_size(1001)), 413, "payload_too_large")
    assert_nothing_stored(client)


def test_a_body_exactly_at_the_size_limit_is_accepted(make_app):
    client = make_app(MAX_BODY_BYTES=1000).test_client()
    assert post_raw(client, body_of_size(1000)).status_code == 201


# --- 4. a rejected PATCH changes nothing -----------------------------------------------------

REJECTED_PATCHES = [
    pytest.param(
        {"llm_config": {"temperature": 2.5}},
        "application/json",
        400,
        "validation_error",
        id="an out of range value",
    ),
    pytest.param({"name": None}, "application/json", 400, "validation_error", id="a null name"),
    pytest.param(
        {"max_duration_seconds": "900"},
        "application/json",
        400,
        "validation_error",
        id="a string for an integer",
    ),
    pytest.param(
        {"is_active": False, "nickname": "Sam"},
        "application/json",
        400,
        "validation_error",
        id="a good change beside an unknown field",
    ),
    pytest.param(
        {"tts_config": {"stability": 0.5}},
        "application/json",
        400,
        "validation_error",
        id="an elevenlabs-only field for the openai voice",
    ),
    pytest.param(
        {"llm_config": REALTIME_LLM},
        "application/json",
        400,
        "validation_error",
        id="switching to xai_realtime while speech configs remain",
    ),
    pytest.param(
        b'{"is_active": false', "application/json", 400, "invalid_json", id="malformed JSON"
    ),
    pytest.param(b"[]", "application/json", 400, "invalid_json", id="a JSON array"),
    pytest.param(
        b'{"is_active": false}',
        "text/plain",
        415,
        "unsupported_media_type",
        id="a body not sent as JSON",
    ),
]


@pytest.mark.parametrize(("patch", "content_type", "status", "code"), REJECTED_PATCHES)
def test_a_rejected_patch_leaves_the_stored_agent_unchanged(
    client, create_agent, patch, content_type, status, code
):
    stored = create_agent()
    before = client.get(f"/agents/{stored['id']}")
    data = patch if isinstance(patch, bytes) else json.dumps(patch)
    response = client.patch(f"/agents/{stored['id']}", data=data, content_type=content_type)
    error_of(response, status, code)
    after = client.get(f"/agents/{stored['id']}")
    assert after.get_json() == before.get_json() == {"agent": stored}
    assert after.headers["ETag"] == before.headers["ETag"]


def test_a_patch_over_the_size_limit_leaves_the_stored_agent_unchanged(make_app):
    client = make_app(MAX_BODY_BYTES=1000).test_client()
    stored = client.post("/agents", json=agent()).get_json()["agent"]
    response = client.patch(
        f"/agents/{stored['id']}", data=body_of_size(1001), content_type="application/json"
    )
    error_of(response, 413, "payload_too_large")
    assert client.get(f"/agents/{stored['id']}").get_json() == {"agent": stored}


# --- the accepted side: defaults -------------------------------------------------------------


def test_a_minimal_agent_gets_every_field_with_its_default(client):
    created = expect_created(client, {"name": "x"})
    assert set(created) == {
        "id",
        "name",
        "business_name",
        "notification_email",
        "first_message",
        "is_active",
        "voicemail_detection",
        "voicemail_message",
        "max_duration_seconds",
        "autonomous_silence_handling",
        "silence_timeout_seconds",
        "gdpr_mode",
        "webhook_url",
        "webhook_secret_set",
        "webhook_events",
        "stt_config",
        "llm_config",
        "tts_config",
        "analysis_plan",
        "created_at",
        "updated_at",
    }
    assert omit(created, "id", "created_at", "updated_at") == {
        "name": "x",
        "business_name": None,
        "notification_email": None,
        "first_message": None,
        "is_active": True,
        "voicemail_detection": False,
        "voicemail_message": None,
        "max_duration_seconds": 600,
        "autonomous_silence_handling": False,
        "silence_timeout_seconds": None,
        "gdpr_mode": False,
        "webhook_url": None,
        "webhook_secret_set": False,
        "webhook_events": [],
        "stt_config": None,
        "llm_config": None,
        "tts_config": None,
        "analysis_plan": None,
    }


NO_VOICE_CONTROLS = {
    "speed": None,
    "stability": None,
    "similarity_boost": None,
    "use_speaker_boost": None,
    **TTS_UNSET,
}
EMPTY_OBJECT_SCHEMA = {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("field", "sent", "returned"),
    [
        pytest.param(
            "stt_config",
            stt(),
            {**stt(), "keyterms": [], **STT_UNSET},
            id="stt_config keyterms default to an empty list",
        ),
        pytest.param(
            "llm_config",
            llm(),
            {**llm(), "temperature": 0.7, "messages": [], "tools": [], **LLM_UNSET},
            id="llm_config defaults to temperature 0.7 and no messages or tools",
        ),
        pytest.param(
            "tts_config",
            tts(),
            {**tts(), "model": None, **NO_VOICE_CONTROLS},
            id="tts_config for openai leaves model and voice controls null",
        ),
        pytest.param(
            "tts_config",
            eleven(),
            {**eleven(), "model": "eleven_flash_v2_5", **NO_VOICE_CONTROLS},
            id="tts_config for elevenlabs defaults the model to eleven_flash_v2_5",
        ),
        pytest.param(
            "tts_config",
            eleven(model=None),
            {**eleven(), "model": "eleven_flash_v2_5", **NO_VOICE_CONTROLS},
            id="a null elevenlabs model also becomes eleven_flash_v2_5",
        ),
        pytest.param(
            "analysis_plan",
            {},
            {"structured_data_plan": None, "min_messages_threshold": 2},
            id="analysis_plan defaults to no structured data and a threshold of 2",
        ),
        pytest.param(
            "analysis_plan",
            {"structured_data_plan": {"schema": EXTRACTION_SCHEMA}},
            {
                "structured_data_plan": {
                    "enabled": True,
                    "schema": EXTRACTION_SCHEMA,
                    "messages": [],
                    "template_id": None,
                },
                "min_messages_threshold": 2,
            },
            id="a structured data plan is enabled with no messages by default",
        ),
        pytest.param(
            "llm_config",
            llm(tools=[{"type": "function", "function": {"name": "ping"}}]),
            {
                **llm(),
                "temperature": 0.7,
                "messages": [],
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "ping", "parameters": EMPTY_OBJECT_SCHEMA},
                    }
                ],
                **LLM_UNSET,
            },
            id="nested tool parameters default to an empty object schema",
        ),
        pytest.param(
            "llm_config",
            llm(tools=[{"name": "ping", "description": "Ping."}]),
            {
                **llm(),
                "temperature": 0.7,
                "messages": [],
                "tools": [
                    {"name": "ping", "description": "Ping.", "parameters": EMPTY_OBJECT_SCHEMA}
                ],
                **LLM_UNSET,
            },
            id="flat tool parameters default to an empty object schema",
        ),
    ],
)
def test_a_nested_config_gets_its_defaults_filled_in(client, field, sent, returned):
    created = expect_created(client, agent(**{field: sent}))
    assert created[field] == returned
    assert client.get(f"/agents/{created['id']}").get_json()["agent"][field] == returned


def test_the_webhook_secret_is_never_returned_only_whether_one_is_set(client):
    secret = "s3cret-for-signing"
    created = expect_created(client, agent(webhook_secret=secret))
    fetched = client.get(f"/agents/{created['id']}")
    listed = client.get("/agents")
    assert created["webhook_secret_set"] is True
    assert fetched.get_json()["agent"]["webhook_secret_set"] is True
    assert listed.get_json()["agents"][0]["webhook_secret_set"] is True
    for text in (
        json.dumps(created),
        fetched.get_data(as_text=True),
        listed.get_data(as_text=True),
    ):
        assert '"webhook_secret"' not in text and secret not in text


# --- the accepted side: the inclusive edges of every rule ------------------------------------

ACCEPTED_EDGES = [
    accept("a one-character name is accepted", agent(name="x"), "name"),
    accept("a 200-character name is accepted", agent(name="n" * 200), "name"),
    accept(
        "a 200-character business name is accepted", agent(business_name="b" * 200), "business_name"
    ),
    accept(
        "a plain e-mail address is accepted",
        agent(notification_email="support@acme.com"),
        "notification_email",
    ),
    accept(
        "an e-mail address with a tag and a subdomain is accepted",
        agent(notification_email="first.last+calls@mail.acme.nl"),
        "notification_email",
    ),
    accept(
        "a 2000-character first message is accepted",
        agent(first_message="f" * 2000),
        "first_message",
    ),
    accept(
        "a 2000-character voicemail message is accepted",
        agent(voicemail_message="v" * 2000),
        "voicemail_message",
    ),
    *[
        accept(f"{field} set to {value} is accepted", agent(**{field: value}), field)
        for field in ["is_active", "voicemail_detection", "autonomous_silence_handling"]
        for value in [True, False]
    ],
    accept(
        "a max duration of 1 second is accepted",
        agent(max_duration_seconds=1),
        "max_duration_seconds",
    ),
    accept(
        "a max duration of 86400 seconds is accepted",
        agent(max_duration_seconds=86_400),
        "max_duration_seconds",
    ),
    accept(
        "an https webhook url with a query is accepted",
        agent(webhook_url="https://acme.com/hooks?x=1"),
        "webhook_url",
    ),
    accept(
        "an http webhook url on localhost with a port is accepted",
        agent(webhook_url="http://localhost:8080/hooks"),
        "webhook_url",
    ),
    accept(
        "a webhook url of 2048 characters is accepted",
        agent(webhook_url="https://acme.com/" + "h" * 2031),
        "webhook_url",
    ),
    accept(
        "every webhook event at once is accepted",
        agent(webhook_events=WEBHOOK_EVENTS),
        "webhook_events",
    ),
    *[
        accept(
            f"the stt language {language} is accepted",
            agent(stt_config=stt(language=language)),
            "stt_config.language",
        )
        for language in ["nl", "en", "en-US", "de", "multi", "zh-Hant-TW", "es-419"]
    ],
    accept(
        "100 keyterms are accepted",
        agent(stt_config=stt(keyterms=[f"term{i}" for i in range(100)])),
        "stt_config.keyterms",
    ),
    accept(
        "a 100-character keyterm is accepted",
        agent(stt_config=stt(keyterms=["k" * 100])),
        "stt_config.keyterms",
    ),
    accept(
        "a 100-character stt model is accepted",
        agent(stt_config=stt(model="m" * 100)),
        "stt_config.model",
    ),
    *[
        accept(
            f"the llm provider {provider} is accepted",
            agent(llm_config=llm(provider=provider, model="grok-3")),
            "llm_config.provider",
        )
        for provider in ["openai", "anthropic", "groq", "mistral", "xai", "xai_realtime"]
    ],
    *[
        accept(
            f"the xai provider accepts the grok model {model}",
            agent(llm_config=llm(provider="xai", model=model)),
            "llm_config.model",
        )
        for model in GROK_MODELS
    ],
    accept(
        "a 100-character llm model is accepted",
        agent(llm_config=llm(model="m" * 100)),
        "llm_config.model",
    ),
    accept(
        "an xai text agent may carry its own stt and tts configs",
        agent(llm_config=llm(provider="xai", model="grok-3"), stt_config=stt(), tts_config=tts()),
        "tts_config.provider",
    ),
    accept(
        "an xai_realtime agent with explicitly null speech configs is accepted",
        agent(llm_config=REALTIME_LLM, stt_config=None, tts_config=None),
        "llm_config.provider",
    ),
    *[
        accept(
            f"a temperature of {value} is accepted",
            agent(llm_config=llm(temperature=value)),
            "llm_config.temperature",
        )
        for value in [0, 2]
    ],
    accept(
        "100 llm messages are accepted",
        agent(llm_config=llm(messages=[{"role": "user", "content": "hi"}] * 100)),
        "llm_config.messages",
    ),
    accept(
        "a message of 100000 characters is accepted",
        agent(llm_config=llm(messages=[{"role": "system", "content": "c" * 100_000}])),
        "llm_config.messages",
    ),
    accept(
        "messages in every role are accepted",
        agent(
            llm_config=llm(
                messages=[
                    {"role": role, "content": role} for role in ("system", "user", "assistant")
                ]
            )
        ),
        "llm_config.messages",
    ),
    accept(
        "128 tools are accepted",
        with_tools(*[flat_tool(f"tool_{i}") for i in range(128)]),
        "llm_config.tools",
    ),
    *[
        accept(
            f"a {shape} tool named {name} is accepted", with_tools(tool(name)), "llm_config.tools"
        )
        for shape, tool, *_ in SHAPES
        for name in ["a", "t" * 64, "Get-Order_2"]
    ],
    *[
        accept(
            f"a {shape} tool description of 1024 characters is accepted",
            with_tools(tool(description="d" * 1024)),
            "llm_config.tools",
        )
        for shape, tool, *_ in SHAPES
    ],
    *[
        accept(
            f"a {shape} tool url {url} is accepted",
            with_tools(tool_with_url(url)),
            f"llm_config.tools.0.{url_at}",
        )
        for shape, _, _, url_at, tool_with_url in SHAPES
        for url in ["https://api.acme.com/tools/lookup", "http://localhost:9000/tool"]
    ],
    accept(
        "tool names differing only in case are distinct names",
        with_tools(flat_tool("lookup"), nested_tool("Lookup")),
        "llm_config.tools",
    ),
    *[
        accept(
            f"the tts provider {provider} is accepted",
            agent(tts_config=tts(provider=provider)),
            "tts_config.provider",
        )
        for provider in ["openai", "elevenlabs", "cartesia", "local"]
    ],
    accept(
        "a 200-character voice id is accepted",
        agent(tts_config=tts(voice_id="v" * 200)),
        "tts_config.voice_id",
    ),
    *[
        accept(
            f"the elevenlabs model {model} is accepted",
            agent(tts_config=eleven(model=model, language="en")),
            "tts_config.model",
        )
        for model in ELEVENLABS_MODELS
    ],
    *[
        accept(
            f"eleven_monolingual_v1 speaks {language}",
            agent(tts_config=eleven(model="eleven_monolingual_v1", language=language)),
            "tts_config.language",
        )
        for language in ["en", "en-US", "en-GB"]
    ],
    accept(
        "a free 100-character model for another provider is accepted",
        agent(tts_config=tts(provider="cartesia", model="m" * 100)),
        "tts_config.model",
    ),
    *[
        accept(
            f"an elevenlabs speed of {speed} is accepted",
            agent(tts_config=eleven(speed=speed)),
            "tts_config.speed",
        )
        for speed in [0.5, 2.0]
    ],
    *[
        accept(
            f"with {provider} a speed of {speed} is accepted",
            agent(tts_config=tts(provider=provider, speed=speed)),
            "tts_config.speed",
        )
        for provider in OTHER_TTS_PROVIDERS
        for speed in [0.25, 4.0]
    ],
    *[
        accept(
            f"an elevenlabs {field} of {value} is accepted",
            agent(tts_config=eleven(**{field: value})),
            f"tts_config.{field}",
        )
        for field, value in [
            ("stability", 0),
            ("stability", 1),
            ("similarity_boost", 0),
            ("similarity_boost", 1),
            ("use_speaker_boost", True),
            ("use_speaker_boost", False),
        ]
    ],
    accept(
        "elevenlabs-only fields set to null are accepted with another provider",
        agent(tts_config=tts(stability=None, similarity_boost=None, use_speaker_boost=None)),
        "tts_config.use_speaker_boost",
    ),
    accept(
        "a min messages threshold of 0 is accepted",
        agent(analysis_plan={"min_messages_threshold": 0}),
        "analysis_plan.min_messages_threshold",
    ),
    accept(
        "a null structured data plan is accepted",
        agent(analysis_plan={"structured_data_plan": None}),
        PLAN,
    ),
    *[
        accept(
            f"a structured data schema {label} is accepted",
            with_plan(schema=schema),
            f"{PLAN}.schema",
        )
        for label, schema in [
            ("describing an object", EXTRACTION_SCHEMA),
            ("that is empty", {}),
            (
                "declaring the 2020-12 dialect",
                {"$schema": "https://json-schema.org/draft/2020-12/schema", **EXTRACTION_SCHEMA},
            ),
            (
                "using prefixItems and $defs",
                {
                    "type": "array",
                    "prefixItems": [{"$ref": "#/$defs/name"}],
                    "$defs": {"name": {"type": "string"}},
                },
            ),
        ]
    ],
    accept(
        "a disabled structured data plan is accepted", with_plan(enabled=False), f"{PLAN}.enabled"
    ),
    accept(
        "an analysis message using every placeholder is accepted",
        analysis_message("Fill {{schema}} from {{transcript}}; the call ended: {{ended_reason}}."),
        f"{PLAN}.messages",
    ),
    accept(
        "an analysis message with single braces is accepted",
        analysis_message('Answer as JSON like {"outcome": "resolved"}.'),
        f"{PLAN}.messages",
    ),
]


@pytest.mark.parametrize(("body", "path"), ACCEPTED_EDGES)
def test_a_value_at_the_edge_of_its_rule_is_accepted_and_returned_as_sent(client, body, path):
    assert at(expect_created(client, body), path) == at(body, path)


# --- the accepted side: exact round trips ----------------------------------------------------

TOOL_SHAPES = [
    pytest.param(
        merged(
            nested_tool(), server={"url": "https://api.acme.com/tools/lookup"}, **{"async": True}
        ),
        id="a nested tool with a server and async",
    ),
    pytest.param(nested_tool(), id="a nested tool without a server"),
    pytest.param(
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}},
        id="a nested tool without a description",
    ),
    pytest.param(
        flat_tool(
            url="https://api.acme.com/tools/lookup",
            async_response="One moment.",
            **{"async": False},
        ),
        id="a flat tool with url async and async_response",
    ),
    pytest.param(flat_tool(), id="a flat tool without a url"),
]


@pytest.mark.parametrize("tool", TOOL_SHAPES)
def test_a_tool_is_returned_exactly_in_the_shape_it_was_sent(client, tool):
    created = expect_created(client, with_tools(tool))
    fetched = client.get(f"/agents/{created['id']}").get_json()["agent"]
    # A server says whether it has a secret; none was sent.
    shown = (
        merged(tool, server={**tool["server"], "secret_set": False}) if "server" in tool else tool
    )
    assert created["llm_config"]["tools"] == [shown]
    assert fetched["llm_config"]["tools"] == [shown]


@pytest.mark.parametrize(
    "tool",
    [merged(nested_tool(), **{"async": True}), flat_tool(**{"async": True})],
    ids=["nested", "flat"],
)
def test_an_agent_whose_tool_is_async_can_still_be_patched(client, tool):
    created = expect_created(client, with_tools(tool))
    response = client.patch(f"/agents/{created['id']}", json={"is_active": False})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["agent"]["llm_config"]["tools"] == [tool]


def test_tools_of_both_shapes_keep_their_shape_and_order_side_by_side(client):
    tools = [nested_tool("b_nested"), flat_tool("a_flat"), nested_tool("c_nested")]
    assert expect_created(client, with_tools(*tools))["llm_config"]["tools"] == tools


def test_the_reference_agent_round_trips_through_storage_unchanged(client):
    created = expect_created(client, VALID_AGENT)
    assert client.get(f"/agents/{created['id']}").get_json()["agent"] == created
    for field, value in VALID_AGENT.items():
        if isinstance(value, dict):  # sent members come back as sent, beside the defaults
            assert value.items() <= created[field].items()
        else:
            assert created[field] == value


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param(agent(name="oké"), "name", id="a name with an accented letter"),
        pytest.param(
            agent(business_name="Café Zoë & Søn"),
            "business_name",
            id="a business name with Latin-1 letters",
        ),
        pytest.param(
            agent(first_message="Grüß Gott 👋, 您好!"),
            "first_message",
            id="a first message with an emoji and CJK",
        ),
        pytest.param(
            agent(stt_config=stt(keyterms=["ja", "nee", "oké"])),
            "stt_config.keyterms",
            id="the reference keyterms",
        ),
        *[
            pytest.param(
                agent(llm_config=llm(temperature=value)),
                "llm_config.temperature",
                id=f"a temperature of {value}",
            )
            for value in [0.7, 0.1, 1.2345678901234567]
        ],
        pytest.param(
            agent(tts_config=eleven(speed=1.15)), "tts_config.speed", id="a speed of 1.15"
        ),
        pytest.param(
            agent(tts_config=eleven(stability=0.33)),
            "tts_config.stability",
            id="a stability of 0.33",
        ),
    ],
)
def test_unicode_text_and_floats_round_trip_exactly(client, body, path):
    created = expect_created(client, body)
    fetched = client.get(f"/agents/{created['id']}").get_json()["agent"]
    assert repr(at(created, path)) == repr(at(fetched, path)) == repr(at(body, path))


@pytest.mark.parametrize(
    "text",
    [
        "2025-12-13T10:00:00.000Z",
        "2024-02-29T23:59:59.999Z",
        "2023-02-29T00:00:00.000Z",
        "2025-04-31T00:00:00.000Z",
        "0000-01-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z",
        "2025-00-10T00:00:00.000Z",
        "2025-13-01T00:00:00.000Z",
        "2025-01-00T00:00:00.000Z",
        "2025-01-32T00:00:00.000Z",
        "2025-01-01T24:00:00.000Z",
        "2025-01-01T00:60:00.000Z",
        "2025-01-01T00:00:60.000Z",
        "2025-01-01T00:00:61.000Z",
        "2025-01-01t00:00:00.000z",
        "２０２５-01-01T00:00:00.000Z",
        "2025-1-01T00:00:00.0000Z",
        "2025-01-01T00:00:00.000Z\n",
        "2025-01-01 00:00:00.000Z",
    ],
)
def test_a_timestamp_is_accepted_exactly_as_strptime_accepts_it(text):
    """Timestamps in their written form are read without strptime; what is accepted stays what
    strptime and the length of 24 accepted."""
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
        parsed = len(text) == 24
    except ValueError:
        parsed = False
    assert is_utc_timestamp(text) == parsed
