"""The fields and providers the platform added since the reference page (API.md 3, 3.1-3.4).

Table-driven like tests/test_validation.py: each rejection row names one broken rule, the path
the service must name and the exact sentence it must say there, and checks nothing was stored;
each acceptance row shows the value coming back as sent. Lists below are the shipped catalog's,
written out so the tests check the service.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import models
from app import create_app

XAI_VOICES = (
    "ara, eve, leo, rex, sal, altair, atlas, carina, castor, celeste, cosmo, helios, helix, "
    "iris, kepler, lumen, luna, lux, naksh, orion, perseus, rigel, sirius, ursa, zagan, zenith"
)
ELEVENLABS_STT_ONLY = {"tag_audio_events": True, "include_timestamps": False, "sample_rate": 16000}
GLADIA_ONLY = {
    "languages": ["nl", "en"],
    "code_switching": True,
    "region": "eu-west",
    "endpointing": 0.05,
    "custom_vocabulary": ["HMS Sovereign", "Flireo"],
    "translation_enabled": False,
    "translation_target_languages": ["de"],
}
ELEVENLABS_TTS_ONLY = {
    "stability": 0.5,
    "similarity_boost": 0.75,
    "use_speaker_boost": True,
    "style": 0.3,
}
LANGUAGE_TAG = "must be a BCP 47 language tag such as nl, en, en-US or multi."
REALTIME = "which is speech-to-speech and brings its own speech handling."
SECRET = "tool-secret-Correct-Horse-4417"


def agent(**fields):
    return {"name": "Support", **fields}


def stt(provider="deepgram", **fields):
    models_by_provider = {
        "deepgram": "nova-3-general",
        "elevenlabs": "scribe_v2_realtime",
        "gladia": "solaria-1",
        "mistral": "voxtral-mini-latest",
        "google": "chirp_3",
    }
    return {"provider": provider, "model": models_by_provider[provider], "language": "nl", **fields}


def llm(provider="openai", model="gpt-4o-mini", **fields):
    return {"provider": provider, "model": model, **fields}


def realtime(model="grok-voice-think-fast-2.0", **fields):
    return llm("xai_realtime", model, **fields)


def tts(provider="openai", voice_id="alloy", **fields):
    return {"provider": provider, "voice_id": voice_id, "language": "nl", **fields}


def server_tool(**server):
    return {
        "type": "function",
        "function": {"name": "lookup_order", "description": "Look up an order."},
        "server": {"url": "https://tools.acme.example/orders", **server},
    }


def with_tools(*tools):
    return agent(llm_config=llm(tools=list(tools)))


def plan(**fields):
    return agent(analysis_plan={"structured_data_plan": fields})


def at(document, path):
    for segment in path.split("."):
        document = document[int(segment)] if isinstance(document, list) else document[segment]
    return document


def reject(case_id, body, path, *messages):
    return pytest.param(body, path, list(messages), id=case_id)


def accept(case_id, body, path):
    return pytest.param(body, path, id=case_id)


@pytest.fixture(scope="module")
def shared_app():
    ram = Path("/dev/shm")
    folder = Path(
        tempfile.mkdtemp(prefix="agents-platform-", dir=ram if os.access(ram, os.W_OK) else None)
    )
    yield create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / 'agents.db'}"})
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def client(shared_app):
    """One app for the module, on a database each test finds empty (as in test_validation)."""
    yield shared_app.test_client()
    with shared_app.extensions["store"].activated(), models.db.connection_context():
        models.Agent.delete().execute()


def expect_invalid(client, body, path, messages):
    response = client.post("/assistants", json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()
    assert error["code"] == "validation_error"
    assert error["fields"].get(path) == messages, error
    assert client.get("/assistants").get_json()["assistants"] == []
    return error


def expect_created(client, body):
    response = client.post("/assistants", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["assistant"]


def only_for(path, providers, provider):
    return f"{path} is only for the {providers}, not {provider}; set it to null to use {provider}."


# --- top-level fields ----------------------------------------------------------------------

TOP_LEVEL_REJECTIONS = [
    *[
        reject(
            f"a silence timeout of {seconds} is out of range",
            agent(silence_timeout_seconds=seconds),
            "silence_timeout_seconds",
            "silence_timeout_seconds must be between 1 and 3600.",
        )
        for seconds in [0, -5, 3601]
    ],
    *[
        reject(
            f"a silence timeout of {value!r} is not an integer",
            agent(silence_timeout_seconds=value),
            "silence_timeout_seconds",
            "silence_timeout_seconds must be an integer.",
        )
        for value in [8.5, 8.0, "8", True]
    ],
    *[
        reject(
            f"gdpr_mode of {value!r} is not a boolean",
            agent(gdpr_mode=value),
            "gdpr_mode",
            "gdpr_mode must be true or false.",
        )
        for value in ["true", 1, 0]
    ],
    reject(
        "gdpr_mode may not be null",
        agent(gdpr_mode=None),
        "gdpr_mode",
        "gdpr_mode must not be null.",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), TOP_LEVEL_REJECTIONS)
def test_a_new_top_level_field_breaking_its_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


def test_the_new_top_level_fields_default_to_null_and_false(client):
    created = expect_created(client, agent())
    assert created["silence_timeout_seconds"] is None and created["gdpr_mode"] is False
    keys = list(created)
    assert keys.index("autonomous_silence_handling") + 1 == keys.index("silence_timeout_seconds")
    assert keys.index("silence_timeout_seconds") + 1 == keys.index("gdpr_mode")


# --- stt_config ----------------------------------------------------------------------------

STT_REJECTIONS = [
    *[
        reject(
            f"a {provider} model the catalog does not list is rejected",
            agent(stt_config=stt(provider, model="nova-3")),
            "stt_config.model",
            f"stt_config.model must be one of the {provider} models: {model}.",
        )
        for provider, model in [
            ("elevenlabs", "scribe_v2_realtime"),
            ("gladia", "solaria-1"),
            ("mistral", "voxtral-mini-latest"),
        ]
    ],
    *[
        reject(
            f"the elevenlabs-only {field} with {provider} is rejected naming both",
            agent(stt_config=stt(provider, **{field: value})),
            f"stt_config.{field}",
            only_for(f"stt_config.{field}", "elevenlabs provider", provider),
        )
        for field, value in ELEVENLABS_STT_ONLY.items()
        for provider in ["deepgram", "gladia", "mistral"]
    ],
    *[
        reject(
            f"the gladia-only {field} with {provider} is rejected naming both",
            agent(stt_config=stt(provider, **{field: value})),
            f"stt_config.{field}",
            only_for(f"stt_config.{field}", "gladia provider", provider),
        )
        for field, value in GLADIA_ONLY.items()
        for provider in ["deepgram", "elevenlabs", "mistral"]
    ],
    *[
        reject(
            f"a sample rate of {value!r} is rejected",
            agent(stt_config=stt("elevenlabs", sample_rate=value)),
            "stt_config.sample_rate",
            f"stt_config.sample_rate {message}",
        )
        for value, message in [
            (44100, "must be one of: 8000, 16000."),
            (16000.0, "must be an integer."),
            ("16000", "must be an integer."),
        ]
    ],
    reject(
        "a flag of ElevenLabs Scribe given as a string is rejected",
        agent(stt_config=stt("elevenlabs", tag_audio_events="yes")),
        "stt_config.tag_audio_events",
        "stt_config.tag_audio_events must be true or false.",
    ),
    reject(
        "a gladia region other than eu-west and us-west is rejected",
        agent(stt_config=stt("gladia", region="ap-south")),
        "stt_config.region",
        "stt_config.region must be one of: eu-west, us-west.",
    ),
    *[
        reject(
            f"a gladia endpointing of {value!r} is rejected",
            agent(stt_config=stt("gladia", endpointing=value)),
            "stt_config.endpointing",
            f"stt_config.endpointing {message}",
        )
        for value, message in [
            (0, "must be between 0.01 and 1."),
            (1.01, "must be between 0.01 and 1."),
            ("0.5", "must be a number."),
        ]
    ],
    reject(
        "a gladia language that is not a BCP 47 tag is named by its index",
        agent(stt_config=stt("gladia", languages=["nl", "en_US"])),
        "stt_config.languages.1",
        f"stt_config.languages.1 {LANGUAGE_TAG}",
    ),
    reject(
        "101 gladia languages are too many",
        agent(stt_config=stt("gladia", languages=["nl"] * 101)),
        "stt_config.languages",
        "stt_config.languages must have at most 100 items.",
    ),
    reject(
        "gladia languages that are not an array are rejected",
        agent(stt_config=stt("gladia", languages="nl")),
        "stt_config.languages",
        "stt_config.languages must be an array.",
    ),
    reject(
        "an empty custom vocabulary entry is rejected",
        agent(stt_config=stt("gladia", custom_vocabulary=["Acme", ""])),
        "stt_config.custom_vocabulary.1",
        "stt_config.custom_vocabulary.1 must be between 1 and 100 characters long.",
    ),
    reject(
        "a translation target that is not a BCP 47 tag is rejected",
        agent(stt_config=stt("gladia", translation_target_languages=["x y"])),
        "stt_config.translation_target_languages.0",
        f"stt_config.translation_target_languages.0 {LANGUAGE_TAG}",
    ),
    *[
        reject(
            f"the gladia flag {field} given as 1 is rejected",
            agent(stt_config=stt("gladia", **{field: 1})),
            f"stt_config.{field}",
            f"stt_config.{field} must be true or false.",
        )
        for field in ["code_switching", "translation_enabled"]
    ],
]


@pytest.mark.parametrize(("body", "path", "messages"), STT_REJECTIONS)
def test_an_stt_config_breaking_a_platform_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- llm_config ----------------------------------------------------------------------------

LLM_REJECTIONS = [
    *[
        reject(
            f"a voice with the {provider} text provider is rejected",
            agent(llm_config=llm(provider, model, voice="ara")),
            "llm_config.voice",
            f"llm_config.voice is only for realtime (speech-to-speech) providers, not {provider}; "
            f"set it to null to use {provider}.",
        )
        for provider, model in [("openai", "gpt-4o-mini"), ("xai", "grok-3"), ("mistral", "m")]
    ],
    reject(
        "a voice xai_realtime does not offer is rejected with the list",
        agent(llm_config=realtime(voice="bob")),
        "llm_config.voice",
        f"llm_config.voice must be one of the xai_realtime voices: {XAI_VOICES}.",
    ),
    reject(
        "an empty voice is rejected",
        agent(llm_config=realtime(voice="")),
        "llm_config.voice",
        "llm_config.voice must be between 1 and 100 characters long.",
    ),
    reject(
        "a google text model the catalog does not list is rejected",
        agent(llm_config=llm("google", "gpt-4o")),
        "llm_config.model",
        "llm_config.model must be one of the google models: gemini-3.5-flash-lite, "
        "gemini-3.5-flash, gemini-2.5-flash-lite, gemini-2.5-flash.",
    ),
    *[
        reject(
            f"a {provider} agent with {name} is rejected as speech-to-speech",
            agent(llm_config=llm(provider, model), **{name: config}),
            name,
            f"{name} must be null when llm_config.provider is {provider}, {REALTIME}",
        )
        for provider, model in [
            ("google_realtime", "gemini-3.1-flash-live-preview"),
            ("openai_live", "gpt-live-1"),
        ]
        for name, config in [("stt_config", stt()), ("tts_config", tts())]
    ],
]


@pytest.mark.parametrize(("body", "path", "messages"), LLM_REJECTIONS)
def test_an_llm_config_breaking_a_platform_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- tts_config ----------------------------------------------------------------------------

TTS_REJECTIONS = [
    *[
        reject(
            f"the elevenlabs-only {field} with {provider} is rejected naming both",
            agent(tts_config=tts(provider, **{field: value})),
            f"tts_config.{field}",
            only_for(f"tts_config.{field}", "elevenlabs provider", provider),
        )
        for field, value in ELEVENLABS_TTS_ONLY.items()
        for provider in ["inworld", "openai", "cartesia", "local"]
    ],
    *[
        reject(
            f"a style of {value!r} is rejected",
            agent(tts_config=tts("elevenlabs", "21m00Tcm4TlvDq8ikWAM", style=value)),
            "tts_config.style",
            f"tts_config.style {message}",
        )
        for value, message in [
            (-0.01, "must be between 0 and 1."),
            (1.01, "must be between 0 and 1."),
            ("0.5", "must be a number."),
        ]
    ],
    *[
        reject(
            f"an inworld speed of {speed} is out of the platform's range",
            agent(tts_config=tts("inworld", "Ashley", speed=speed)),
            "tts_config.speed",
            "tts_config.speed must be between 0.5 and 2.0 for inworld.",
        )
        for speed in [0.4, 2.1]
    ],
    reject(
        "an inworld model the catalog does not list is rejected",
        agent(tts_config=tts("inworld", "Ashley", model="inworld-tts-9")),
        "tts_config.model",
        "tts_config.model must be one of the inworld models: inworld-tts-2, inworld-tts-2-flash, "
        "inworld-tts-1.5-max, inworld-tts-1.5-mini.",
    ),
    reject(
        "an inworld model with the openai provider is named as inworld's",
        agent(tts_config=tts("openai", model="inworld-tts-2")),
        "tts_config.model",
        "tts_config.model is an inworld model; set it to null or to a model that openai offers.",
    ),
    reject(
        "a voice the xai speech provider does not offer is rejected",
        agent(tts_config=tts("xai", "bob")),
        "tts_config.voice_id",
        f"tts_config.voice_id must be one of the xai voices: {XAI_VOICES}.",
    ),
    reject(
        "speed with a provider that takes none is rejected naming those that do",
        agent(tts_config=tts("xai", "ara", speed=1)),
        "tts_config.speed",
        only_for(
            "tts_config.speed", "elevenlabs, inworld, openai, cartesia and local providers", "xai"
        ),
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), TTS_REJECTIONS)
def test_a_tts_config_breaking_a_platform_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- tools: server.secret --------------------------------------------------------------------

TOOL_REJECTIONS = [
    *[
        reject(
            f"a server secret of {len(secret)} characters is rejected",
            with_tools(server_tool(secret=secret)),
            "llm_config.tools.0.server.secret",
            "llm_config.tools.0.server.secret must be between 8 and 256 characters long.",
        )
        for secret in ["s" * 7, "s" * 257]
    ],
    reject(
        "a server secret that is not a string is rejected",
        with_tools(server_tool(secret=12345678)),
        "llm_config.tools.0.server.secret",
        "llm_config.tools.0.server.secret must be a string.",
    ),
    reject(
        "server.secret_set is read-only",
        with_tools(server_tool(secret_set=True)),
        "llm_config.tools.0.server.secret_set",
        "llm_config.tools.0.server.secret_set is read-only.",
    ),
]


@pytest.mark.parametrize(("body", "path", "messages"), TOOL_REJECTIONS)
def test_a_tool_server_secret_breaking_its_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- analysis_plan ---------------------------------------------------------------------------

PLAN = "analysis_plan.structured_data_plan"
SCHEMA = {"type": "object", "properties": {"outcome": {"type": "string"}}}

ANALYSIS_REJECTIONS = [
    reject(
        "a plan with both a schema and a template is rejected",
        plan(schema=SCHEMA, template_id="tmpl_1"),
        f"{PLAN}.template_id",
        f"{PLAN}.template_id must not be given beside schema; send one of schema and template_id.",
    ),
    reject(
        "a plan with neither a schema nor a template is rejected",
        plan(enabled=True),
        f"{PLAN}.schema",
        f"{PLAN}.schema is required unless template_id is given.",
    ),
    reject(
        "a plan whose schema and template are both null is rejected",
        plan(schema=None, template_id=None),
        f"{PLAN}.schema",
        f"{PLAN}.schema is required unless template_id is given.",
    ),
    *[
        reject(
            f"a template id {label} is rejected",
            plan(template_id=value),
            f"{PLAN}.template_id",
            f"{PLAN}.template_id {message}",
        )
        for label, value, message in [
            ("that is empty", "", "must be between 1 and 200 characters long."),
            ("of 201 characters", "t" * 201, "must be between 1 and 200 characters long."),
            ("that is a number", 7, "must be a string."),
        ]
    ],
]


@pytest.mark.parametrize(("body", "path", "messages"), ANALYSIS_REJECTIONS)
def test_an_analysis_plan_breaking_a_platform_rule_is_rejected(client, body, path, messages):
    expect_invalid(client, body, path, messages)


# --- the accepted side ---------------------------------------------------------------------

ACCEPTED = [
    *[
        accept(
            f"a silence timeout of {seconds} is accepted",
            agent(silence_timeout_seconds=seconds),
            "silence_timeout_seconds",
        )
        for seconds in [1, 8, 3600, None]
    ],
    accept("gdpr_mode true is accepted", agent(gdpr_mode=True), "gdpr_mode"),
    *[
        accept(
            f"the stt provider {provider} is accepted",
            agent(stt_config=stt(provider)),
            "stt_config.provider",
        )
        for provider in ["deepgram", "elevenlabs", "gladia", "mistral", "google"]
    ],
    accept(
        "deepgram takes a model name the catalog does not list, as the reference page allows",
        agent(stt_config=stt(model="nova-2-phonecall")),
        "stt_config.model",
    ),
    accept(
        "elevenlabs takes every ElevenLabs Scribe field",
        agent(stt_config=stt("elevenlabs", **ELEVENLABS_STT_ONLY)),
        "stt_config",
    ),
    accept(
        "a sample rate of 8000 is accepted",
        agent(stt_config=stt("elevenlabs", sample_rate=8000)),
        "stt_config.sample_rate",
    ),
    accept(
        "gladia takes every Gladia field",
        agent(stt_config=stt("gladia", **GLADIA_ONLY)),
        "stt_config",
    ),
    *[
        accept(
            f"a gladia endpointing of {value} is accepted",
            agent(stt_config=stt("gladia", endpointing=value)),
            "stt_config.endpointing",
        )
        for value in [0.01, 1]
    ],
    accept(
        "provider-only fields set to null are accepted with any provider",
        agent(stt_config=stt("mistral", **dict.fromkeys([*ELEVENLABS_STT_ONLY, *GLADIA_ONLY]))),
        "stt_config.provider",
    ),
    *[
        accept(
            f"the xai_realtime voice {voice} is accepted",
            agent(llm_config=realtime(voice=voice)),
            "llm_config.voice",
        )
        for voice in ["ara", "rex", "sal", "eve", "leo"]
    ],
    accept(
        "google_realtime takes its own voice",
        agent(llm_config=llm("google_realtime", "gemini-3.8-live", voice="Puck")),
        "llm_config",
    ),
    accept(
        "openai_live takes its own voice",
        agent(llm_config=llm("openai_live", "gpt-live-1", voice="marin")),
        "llm_config",
    ),
    accept(
        "a null voice with a text provider is accepted",
        agent(llm_config=llm(voice=None)),
        "llm_config.voice",
    ),
    accept(
        "xai takes the platform's grok-4.3 beside the reference's models",
        agent(llm_config=llm("xai", "grok-4.3")),
        "llm_config.model",
    ),
    accept(
        "an xai_realtime model the reference never listed is still accepted",
        agent(llm_config=realtime(model="grok-voice")),
        "llm_config.model",
    ),
    accept(
        "inworld is accepted with its language and speed",
        agent(tts_config=tts("inworld", "Ashley", speed=1.5)),
        "tts_config",
    ),
    *[
        accept(
            f"an inworld speed of {speed} is accepted",
            agent(tts_config=tts("inworld", "Ashley", speed=speed)),
            "tts_config.speed",
        )
        for speed in [0.5, 2.0]
    ],
    *[
        accept(
            f"an elevenlabs style of {style} is accepted",
            agent(tts_config=tts("elevenlabs", "v", style=style)),
            "tts_config.style",
        )
        for style in [0, 0.35, 1]
    ],
    accept(
        "elevenlabs takes every voice control at once",
        agent(tts_config=tts("elevenlabs", "v", **ELEVENLABS_TTS_ONLY)),
        "tts_config",
    ),
    accept(
        "the platform's eleven_v4 model is accepted",
        agent(tts_config=tts("elevenlabs", "v", model="eleven_v4")),
        "tts_config.model",
    ),
    accept(
        "xai speech takes one of its voices",
        agent(tts_config=tts("xai", "ara")),
        "tts_config.voice_id",
    ),
    accept(
        "google speech takes one of its voices",
        agent(tts_config=tts("google", "Kore")),
        "tts_config.voice_id",
    ),
    accept(
        "a template id alone is a plan", plan(template_id="tmpl_appointment"), f"{PLAN}.template_id"
    ),
    accept(
        "a template id of 200 characters is accepted",
        plan(template_id="t" * 200),
        f"{PLAN}.template_id",
    ),
]


@pytest.mark.parametrize(("body", "path"), ACCEPTED)
def test_a_platform_value_within_its_rules_is_accepted_and_returned_as_sent(client, body, path):
    sent, returned = at(body, path), at(expect_created(client, body), path)
    if isinstance(sent, dict):  # every member sent comes back; the rest are defaults
        returned = {member: returned[member] for member in sent}
    assert returned == sent


def test_inworld_gets_its_default_model_and_the_other_speech_fields_null(client):
    created = expect_created(client, agent(tts_config=tts("inworld", "Ashley")))
    assert created["tts_config"] == {
        **tts("inworld", "Ashley"),
        "model": "inworld-tts-2",
        "speed": None,
        "stability": None,
        "similarity_boost": None,
        "use_speaker_boost": None,
        "style": None,
    }


def test_a_template_plan_shows_a_null_schema(client):
    created = expect_created(client, plan(template_id="tmpl_1"))
    assert created["analysis_plan"]["structured_data_plan"] == {
        "enabled": True,
        "schema": None,
        "messages": [],
        "template_id": "tmpl_1",
    }


def test_switching_stt_provider_with_gladia_fields_left_says_which_to_clear(client):
    stored = expect_created(client, agent(stt_config=stt("gladia", region="us-west")))

    response = client.patch(
        f"/assistants/{stored['id']}",
        json={"stt_config": {"provider": "deepgram", "model": "nova-3"}},
    )

    assert response.get_json()["fields"] == {
        "stt_config.region": [only_for("stt_config.region", "gladia provider", "deepgram")]
    }
    patched = client.patch(
        f"/assistants/{stored['id']}",
        json={"stt_config": {"provider": "deepgram", "model": "nova-3", "region": None}},
    )
    assert (
        patched.status_code == 200
        and patched.get_json()["assistant"]["stt_config"]["region"] is None
    )


# --- the tool server's secret, write-only ----------------------------------------------------


def test_a_tool_server_secret_is_stored_but_only_its_presence_is_shown(client):
    created = client.post(
        "/assistants",
        json=with_tools(
            server_tool(secret=SECRET), server_tool(secret=None) | {"function": {"name": "other"}}
        ),
    )
    assert created.status_code == 201
    agent_id = created.get_json()["assistant"]["id"]
    fetched = client.get(f"/agents/{agent_id}")
    listed = client.get("/assistants")

    tools = fetched.get_json()["agent"]["llm_config"]["tools"]
    assert [tool["server"] for tool in tools] == [
        {"url": "https://tools.acme.example/orders", "secret_set": True},
        {"url": "https://tools.acme.example/orders", "secret_set": False},
    ]
    for response in (created, fetched, listed):
        assert SECRET not in response.get_data(as_text=True)


def test_a_patch_that_leaves_the_tools_alone_keeps_their_secrets(client):
    stored = expect_created(client, with_tools(server_tool(secret=SECRET)))
    url = f"/assistants/{stored['id']}"

    kept = client.patch(url, json={"llm_config": {"temperature": 1.1}})
    assert kept.get_json()["assistant"]["llm_config"]["tools"][0]["server"]["secret_set"] is True
    assert SECRET not in kept.get_data(as_text=True)
    # Sending the tools again without the secret removes it, as arrays are replaced whole.
    replaced = client.patch(url, json={"llm_config": {"tools": [server_tool()]}})
    assert (
        replaced.get_json()["assistant"]["llm_config"]["tools"][0]["server"]["secret_set"] is False
    )


def test_a_patch_resending_a_tool_secret_is_answered_as_one_sending_another(client):
    created = client.post("/assistants", json=with_tools(server_tool(secret=SECRET)))
    url = f"/assistants/{created.get_json()['assistant']['id']}"

    # Timestamps are stamped to the millisecond: a write within the same one would show no change.
    time.sleep(0.002)
    resent = client.patch(url, json={"llm_config": {"tools": [server_tool(secret=SECRET)]}})
    time.sleep(0.002)
    other = client.patch(url, json={"llm_config": {"tools": [server_tool(secret=SECRET + "-2")]}})

    # Both are written, so neither answer tells whether a guess of the stored secret was right.
    assert created.headers["ETag"] != resent.headers["ETag"] != other.headers["ETag"]
    for answer in (resent, other):
        assert answer.get_json()["assistant"]["llm_config"]["tools"][0]["server"] == {
            "url": server_tool()["server"]["url"],
            "secret_set": True,
        }
    untouched = client.patch(url, json={"name": other.get_json()["assistant"]["name"]})
    assert untouched.headers["ETag"] == other.headers["ETag"]


def test_a_rejected_body_never_echoes_a_tool_secret(client):
    body = with_tools(server_tool(secret=SECRET))
    body["llm_config"]["temperature"] = 9
    response = client.post("/assistants", json=body)
    assert response.status_code == 400
    assert SECRET not in response.get_data(as_text=True)


def test_the_journal_redacts_a_tool_server_secret_but_not_other_members_named_secret(double):
    parameters = {"type": "object", "properties": {"secret": {"type": "string"}}}
    tool = server_tool(secret=SECRET)
    tool["function"]["parameters"] = parameters
    double.post("/assistants", json=with_tools(tool))
    double.post(
        "/assistants",
        data='{"llm_config": {"tools": [{"server": {"secret": "' + SECRET,
        content_type="application/json",
    )

    parsed, raw = (entry["body"] for entry in double.get("/_test/requests").get_json()["requests"])
    sent = parsed["llm_config"]["tools"][0]
    assert sent["server"]["secret"] == "[redacted]"
    assert sent["function"]["parameters"] == parameters
    # A body that is not JSON is not kept at all: no pattern finds every way to write a secret.
    assert raw == "[not kept: 79 bytes of application/json, not JSON]"


def test_numbers_orjson_cannot_hold_are_stored_and_answered_as_sent(client):
    """Documents are written by orjson, and by the standard encoder where orjson cannot hold a
    value (an integer beyond 64 bits): either way the agent reads back as it was sent."""
    tool = server_tool()
    tool["function"]["parameters"] = {
        "type": "object",
        "properties": {"count": {"type": "integer", "maximum": 2**70, "minimum": -(2**64)}},
    }
    body = with_tools(tool)
    body["llm_config"]["temperature"] = 1e-05

    created = client.post("/assistants", json=body)

    assert created.status_code == 201, created.get_json()
    url = f"/assistants/{created.get_json()['assistant']['id']}"
    fetched = client.get(url)
    assert fetched.data == created.data
    stored = fetched.get_json()["assistant"]["llm_config"]
    assert stored["tools"][0]["function"]["parameters"] == tool["function"]["parameters"]
    assert stored["temperature"] == 1e-05

    # An update reads the stored document back: it keeps what it does not change.
    patched = client.patch(url, json={"name": "Renamed"})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["assistant"]["llm_config"] == stored
