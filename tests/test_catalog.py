"""The catalog (API.md 3.5): providers, models, voices and provider-only fields are data.

The shipped catalog is read once when the app is built; AGENTS_CATALOG replaces it with another
file in the platform's config-catalog format, and a file the service cannot read stops it at
start, naming the file and the problem.
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import catalog
from config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def minimal_catalog(**kinds):
    """A catalog of one provider per kind, with `kinds` replacing any kind's providers."""
    document = {
        "version": 1,
        "llm": {"providers": [{"id": "acme_llm", "kind": "text", "models": ["acme-1"]}]},
        "stt": {"providers": [{"id": "acme_stt", "settings": ["languages"]}]},
        "tts": {"providers": [{"id": "acme_tts", "voice_id": "free", "settings": ["speed"]}]},
    }
    for kind, providers in kinds.items():
        document[kind] = {"providers": providers}
    return document


@pytest.fixture
def write(tmp_path):
    def write_file(content, name="catalog.json"):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return write_file


def acme_agent(**overrides):
    return {
        "name": "Acme",
        "stt_config": {"provider": "acme_stt", "model": "any-model", "language": "nl"},
        "llm_config": {"provider": "acme_llm", "model": "acme-1"},
        "tts_config": {"provider": "acme_tts", "voice_id": "v", "language": "nl", "speed": 3},
        **overrides,
    }


def test_a_catalog_with_a_provider_the_shipped_one_lacks_replaces_it(make_app, write):
    client = make_app(CATALOG=str(write(minimal_catalog()))).test_client()

    created = client.post("/assistants", json=acme_agent())
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["assistant"]["tts_config"]["speed"] == 3

    refused = client.post(
        "/assistants",
        json={"name": "Shipped", "llm_config": {"provider": "openai", "model": "gpt-4o-mini"}},
    )
    assert refused.get_json()["fields"] == {
        "llm_config.provider": ["llm_config.provider must be one of: acme_llm."]
    }


def test_the_shipped_catalog_refuses_the_other_catalogs_provider(client):
    refused = client.post("/assistants", json=acme_agent())
    fields = refused.get_json()["fields"]
    assert set(fields) == {"stt_config.provider", "llm_config.provider", "tts_config.provider"}
    assert fields["tts_config.provider"] == [
        "tts_config.provider must be one of: elevenlabs, inworld, openai, cartesia, local, "
        "google, xai, voicedock."
    ]


def test_model_names_are_checked_only_where_the_catalog_lists_them(make_app, write):
    client = make_app(CATALOG=str(write(minimal_catalog()))).test_client()

    unlisted = client.post(
        "/assistants", json=acme_agent(llm_config={"provider": "acme_llm", "model": "acme-2"})
    )
    assert unlisted.get_json()["fields"] == {
        "llm_config.model": ["llm_config.model must be one of the acme_llm models: acme-1."]
    }
    # acme_stt lists no models: any name is taken.
    assert client.post("/assistants", json=acme_agent()).status_code == 201


def test_a_catalogs_settings_decide_which_provider_takes_a_provider_only_field(make_app, write):
    document = minimal_catalog(
        stt=[{"id": "acme_stt", "settings": ["languages"]}, {"id": "plain_stt"}]
    )
    client = make_app(CATALOG=str(write(document))).test_client()
    plain = {"provider": "plain_stt", "model": "m", "language": "nl", "languages": ["nl"]}

    refused = client.post("/assistants", json=acme_agent(stt_config=plain))
    assert refused.get_json()["fields"] == {
        "stt_config.languages": [
            "stt_config.languages is only for the acme_stt provider, not plain_stt; set it to "
            "null to use plain_stt."
        ]
    }
    taken = client.post(
        "/assistants", json=acme_agent(stt_config={**plain, "provider": "acme_stt"})
    )
    assert taken.status_code == 201


def test_a_provider_only_field_no_provider_of_the_catalog_takes_is_refused(make_app, write):
    client = make_app(CATALOG=str(write(minimal_catalog()))).test_client()
    stt_config = {"provider": "acme_stt", "model": "m", "language": "nl", "region": "eu-west"}

    refused = client.post("/assistants", json=acme_agent(stt_config=stt_config))

    assert refused.get_json()["fields"] == {
        "stt_config.region": [
            "stt_config.region is taken by no provider of this service's catalog; set it to "
            "null to use acme_stt."
        ]
    }


def test_without_settings_a_provider_takes_the_fields_its_platform_schema_lists(make_app, write):
    # The platform's own catalog lists settings for few providers; its schemas say the rest.
    document = minimal_catalog(
        stt=[{"id": "gladia", "models": ["solaria-1"]}, {"id": "mistral"}],
    )
    document["schemas"] = {
        "stt": {
            "oneOf": [
                {"properties": {"provider": {"enum": ["gladia"]}, "region": {"type": "string"}}},
                {"properties": {"provider": {"enum": ["mistral"]}, "model": {}}},
            ]
        }
    }
    client = make_app(CATALOG=str(write(document))).test_client()
    gladia = {"provider": "gladia", "model": "solaria-1", "language": "nl", "region": "eu-west"}

    assert client.post("/assistants", json=acme_agent(stt_config=gladia)).status_code == 201
    refused = client.post(
        "/assistants", json=acme_agent(stt_config={**gladia, "provider": "mistral"})
    )
    assert refused.get_json()["fields"]["stt_config.region"] == [
        "stt_config.region is only for the gladia provider, not mistral; set it to null to use "
        "mistral."
    ]


def test_the_catalog_is_read_once_when_the_app_is_built(make_app, write):
    path = write(minimal_catalog())
    client = make_app(CATALOG=str(path)).test_client()
    path.unlink()

    assert client.post("/assistants", json=acme_agent()).status_code == 201


def test_the_openapi_document_lists_the_catalogs_providers(make_app, write):
    client = make_app(CATALOG=str(write(minimal_catalog()))).test_client()
    components = client.get("/openapi.json").get_json()["components"]["schemas"]

    assert components["LlmConfig"]["properties"]["provider"]["enum"] == ["acme_llm"]
    assert components["TtsConfig"]["properties"]["provider"]["enum"] == ["acme_tts"]


BAD_CATALOGS = [
    pytest.param("{", "is not valid JSON: ", id="text that is not JSON"),
    pytest.param("[]", "is not a catalog: it must be a JSON object.", id="an array"),
    pytest.param(
        {**minimal_catalog(), "version": 2},
        "has catalog version 2; this release reads version 1 only.",
        id="version 2",
    ),
    pytest.param(
        {**minimal_catalog(), "version": "1"},
        "has catalog version '1'; this release reads version 1 only.",
        id="a version that is a string",
    ),
    pytest.param(
        {key: value for key, value in minimal_catalog().items() if key != "version"},
        "has catalog version None; this release reads version 1 only.",
        id="no version",
    ),
    pytest.param(
        {key: value for key, value in minimal_catalog().items() if key != "tts"},
        "is not a valid catalog. tts is required.",
        id="a kind left out",
    ),
    pytest.param(
        {**minimal_catalog(), "llm": {"providers": {"id": "acme"}}},
        "is not a valid catalog. llm.providers must be an array.",
        id="providers that are not a list",
    ),
    pytest.param(
        minimal_catalog(stt=[{"label": "No id"}]),
        "is not a valid catalog. stt.providers.0.id is required.",
        id="a provider without an id",
    ),
    pytest.param(
        minimal_catalog(tts=[{"id": "same"}, {"id": "same"}]),
        "is not a valid catalog. tts.providers.1.id must be unique; providers.0 is same too.",
        id="two providers with one id",
    ),
    pytest.param(
        minimal_catalog(llm=[{"id": "acme", "kind": "speech"}]),
        "is not a valid catalog. llm.providers.0.kind must be one of: text, realtime.",
        id="an unknown kind",
    ),
    pytest.param(
        minimal_catalog(tts=[{"id": "acme", "voice_id": "enum"}]),
        "is not a valid catalog. tts.providers.0.voice_id is enum, so voices must list them.",
        id="enum voices without a list",
    ),
    pytest.param(
        minimal_catalog(llm=[{"id": "acme", "models": "acme-1"}]),
        "is not a valid catalog. llm.providers.0.models must be an array.",
        id="models that are not a list",
    ),
    pytest.param(
        minimal_catalog(tts=[{"id": "acme", "params": {"speed": {"min": 2, "max": 1}}}]),
        "is not a valid catalog. tts.providers.0.params.speed.min must not be above max.",
        id="a range upside down",
    ),
]


@pytest.mark.parametrize(("content", "problem"), BAD_CATALOGS)
def test_a_bad_catalog_file_stops_the_app_naming_the_file_and_the_problem(
    make_app, write, content, problem
):
    path = write(content)
    with pytest.raises(ConfigError) as refused:
        make_app(CATALOG=str(path))
    assert str(refused.value).startswith(f"AGENTS_CATALOG: {path} {problem}")


def test_a_catalog_file_that_cannot_be_read_stops_the_app(make_app, tmp_path):
    for path, reason in (
        (tmp_path / "missing.json", "No such file or directory"),
        (tmp_path, "Is a directory"),
    ):
        with pytest.raises(ConfigError) as refused:
            make_app(CATALOG=str(path))
        assert str(refused.value) == f"AGENTS_CATALOG: {path} cannot be read ({reason})."


def test_serve_says_what_is_wrong_with_the_catalog_in_one_error_line(write, tmp_path):
    path = write({**minimal_catalog(), "version": 3})
    served = subprocess.run(
        [str(Path(sys.executable).with_name("agents-api")), "serve", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env={"AGENTS_CATALOG": str(path), "AGENTS_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode != 0
    assert served.stderr.strip().splitlines() == [
        f"Error: AGENTS_CATALOG: {path} has catalog version 3; this release reads version 1 only."
    ]


def test_gunicorn_itself_stops_at_start_on_a_bad_catalog(write, tmp_path):
    path = write("not json")
    served = subprocess.run(
        [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env={"AGENTS_CATALOG": str(path), "AGENTS_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode != 0
    assert f"Error: AGENTS_CATALOG: {path} is not valid JSON" in served.stderr
    assert "Traceback" not in served.stderr


def test_the_shipped_catalog_is_version_1_of_the_platforms_format_with_every_kind():
    shipped = json.loads((ROOT / "catalog" / "platform.json").read_text())

    assert shipped["version"] == 1
    for kind in ("llm", "stt", "tts"):
        ids = [provider["id"] for provider in shipped[kind]["providers"]]
        assert ids == list(catalog.default_catalog().ids(kind))
    # The reference page's providers, and those the platform has added since.
    assert {"openai", "anthropic", "groq", "mistral", "xai", "xai_realtime"} <= set(
        catalog.default_catalog().ids("llm")
    )
    assert set(catalog.default_catalog().ids("stt")) >= {"deepgram", "elevenlabs", "gladia"}


def test_the_wheel_carries_the_shipped_catalog(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"catalog/__init__.py", "catalog/format.py", "catalog/platform.json"} <= names
    assert {"provider_schemas.py", "tool_schemas.py", "ratelimit.py", "stored_form.py"} <= names
