"""Fixtures: a fresh app on its own SQLite file, its test client and CLI runner."""

import pytest

from app import create_app
from schemas import AGENT, READ_ONLY_FIELDS

VALID_AGENT = {
    "name": "Customer Support Agent",
    "business_name": "Acme Corp",
    "first_message": "Hallo, welkom bij Acme. Waarmee kan ik u helpen?",
    "stt_config": {"provider": "deepgram", "model": "nova-3-general", "language": "nl",
                   "keyterms": ["ja", "nee", "oké"]},
    "llm_config": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.7,
                   "messages": [{"role": "system", "content": "You are a helpful assistant."}]},
    "tts_config": {"provider": "openai", "voice_id": "alloy", "language": "nl"},
}


@pytest.fixture
def database_path(tmp_path):
    return tmp_path / "agents.db"


@pytest.fixture
def make_app(database_path):
    """Build an app on the test's database file with extra settings."""

    def make(**settings):
        return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database_path}", **settings})

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def create_agent(client):
    """POST an agent built from VALID_AGENT plus overrides; returns the response JSON agent."""

    def create(**overrides):
        response = client.post("/agents", json={**VALID_AGENT, **overrides})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["agent"]

    return create


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """One gunicorn with two workers on a fresh database, shared by the tests that need it."""
    from tests.live_server import LiveServer

    with LiveServer(tmp_path_factory.mktemp("live") / "agents.db") as server:
        yield server


def assert_valid_as_stored(agent):
    """A stored agent, as served, passes the API's own validation unchanged."""
    fields = {key: value for key, value in agent.items() if key not in READ_ONLY_FIELDS}
    assert AGENT.load(fields) == fields, agent["id"]
