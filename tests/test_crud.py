"""Contract sections 1 and 2: the endpoints, their envelopes, and what every response looks like."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.conftest import VALID_AGENT

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NOT_FOUND = {"error": "Agent not found.", "code": "not_found", "type": "not_found"}

# Every field of contract section 3 but the write-only webhook_secret, with its default.
DEFAULTS = {
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
SERVER_FIELDS = {"id", "created_at", "updated_at"}
AGENT_FIELDS = {"name", *DEFAULTS, *SERVER_FIELDS}

# Ids that are not UUIDs, and a UUID that names no agent: all the same 404.
MISSING_IDS = {
    "not a uuid": "not-a-uuid",
    "a number": "12345",
    "a uuid without hyphens": uuid.uuid4().hex,
    "a uuid with a trailing character": f"{uuid.uuid4()}0",
    "a uuid in braces": f"{{{uuid.uuid4()}}}",
    "an unknown uuid": str(uuid.uuid4()),
}


def json_object_in(response):
    """The body when it is a JSON object labelled application/json, else None."""
    if response.mimetype != "application/json":
        return None
    try:
        body = json.loads(response.get_data(as_text=True))
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def assert_json_object(response):
    body = json_object_in(response)
    assert body is not None, (
        response.status_code,
        response.content_type,
        response.get_data()[:200],
    )
    return body


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = assert_json_object(response)
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"].endswith(".")
    return body


def parse_timestamp(text):
    assert TIMESTAMP.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# --- list and create ---------------------------------------------------------------------------


def test_listing_no_agents_returns_the_empty_list_envelope(client):
    response = client.get("/agents")

    assert response.status_code == 200
    assert assert_json_object(response) == {"agents": [], "has_more": False, "next_cursor": None}


def test_listing_returns_each_stored_agent_exactly_as_a_get_shows_it(client, create_agent):
    created = [create_agent(name=f"Agent {number}") for number in range(3)]

    body = client.get("/agents").get_json()

    assert set(body) == {"agents", "has_more", "next_cursor"}
    assert sorted(body["agents"], key=lambda agent: agent["id"]) == sorted(
        created, key=lambda agent: agent["id"]
    )
    for agent in body["agents"]:
        assert client.get(f"/agents/{agent['id']}").get_json() == {"agent": agent}


def test_creating_an_agent_answers_201_with_the_agent_envelope_and_its_location(client):
    response = client.post("/agents", json=VALID_AGENT)

    assert response.status_code == 201
    body = assert_json_object(response)
    assert set(body) == {"agent"}
    agent = body["agent"]
    assert UUID4.match(agent["id"]), agent["id"]
    assert response.headers["Location"] == f"/agents/{agent['id']}"
    for key in ("name", "business_name", "first_message"):
        assert agent[key] == VALID_AGENT[key]
    for key in ("stt_config", "llm_config", "tts_config"):
        assert {name: agent[key][name] for name in VALID_AGENT[key]} == VALID_AGENT[key]


def test_the_location_of_a_created_agent_serves_that_agent(client):
    response = client.post("/agents", json=VALID_AGENT)

    fetched = client.get(response.headers["Location"])

    assert fetched.status_code == 200
    assert fetched.get_json() == response.get_json()


def test_a_minimal_agent_comes_back_with_every_field_and_its_defaults(create_agent):
    agent = create_agent(**{key: None for key in VALID_AGENT if key != "name"})

    assert set(agent) == AGENT_FIELDS
    assert {key: agent[key] for key in DEFAULTS} == DEFAULTS


def test_every_created_agent_gets_its_own_server_generated_id(create_agent):
    ids = [create_agent()["id"] for _ in range(5)]

    assert len(set(ids)) == 5
    assert all(UUID4.match(agent_id) for agent_id in ids)


def test_a_new_agent_has_utc_millisecond_timestamps_of_the_moment_it_was_created(create_agent):
    before = datetime.now(UTC) - timedelta(seconds=1)
    agent = create_agent()
    after = datetime.now(UTC) + timedelta(seconds=1)

    assert agent["created_at"] == agent["updated_at"]
    assert before <= parse_timestamp(agent["created_at"]) <= after


# --- get and delete ----------------------------------------------------------------------------


def test_getting_an_agent_returns_it_in_the_agent_envelope(client, create_agent):
    agent = create_agent()

    response = client.get(f"/agents/{agent['id']}")

    assert response.status_code == 200
    assert assert_json_object(response) == {"agent": agent}


def test_deleting_an_agent_answers_success_and_then_it_is_gone(client, create_agent):
    agent = create_agent()
    url = f"/agents/{agent['id']}"

    response = client.delete(url)

    assert response.status_code == 200
    assert assert_json_object(response) == {"success": True}
    second = client.delete(url)
    assert second.status_code == 404 and second.get_json() == NOT_FOUND
    fetched = client.get(url)
    assert fetched.status_code == 404 and fetched.get_json() == NOT_FOUND
    assert client.get("/agents").get_json()["agents"] == []


def test_deleting_one_agent_leaves_the_others(client, create_agent):
    kept, deleted = create_agent(name="Kept"), create_agent(name="Deleted")

    client.delete(f"/agents/{deleted['id']}")

    assert client.get("/agents").get_json()["agents"] == [kept]


def test_an_id_that_is_not_a_uuid_or_names_no_agent_is_agent_not_found(client, create_agent):
    create_agent()
    observed = {}

    for case, agent_id in MISSING_IDS.items():
        for method, body in (("GET", {}), ("PATCH", {"json": {"name": "Renamed"}}), ("DELETE", {})):
            response = client.open(f"/agents/{agent_id}", method=method, **body)
            observed[f"{method} {case}"] = (response.status_code, json_object_in(response))

    assert observed == {request: (404, NOT_FOUND) for request in observed}


# --- paths -------------------------------------------------------------------------------------


def test_a_post_to_agents_with_a_trailing_slash_creates_the_agent_without_a_redirect(client):
    response = client.post("/agents/", json=VALID_AGENT)

    assert response.status_code == 201
    assert client.get(response.headers["Location"]).status_code == 200


def test_a_get_of_agents_with_a_trailing_slash_lists_without_a_redirect(client, create_agent):
    agent = create_agent()

    response = client.get("/agents/")

    assert response.status_code == 200
    assert response.get_json()["agents"] == [agent]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_agent_url_with_a_trailing_slash_works_without_a_redirect(client, create_agent, method):
    agent = create_agent()
    body = {"json": {"name": "Renamed"}} if method == "PATCH" else {}

    response = client.open(f"/agents/{agent['id']}/", method=method, **body)

    assert response.status_code == 200, response.headers
    if method == "PATCH":
        assert client.get(f"/agents/{agent['id']}").get_json()["agent"]["name"] == "Renamed"
    if method == "DELETE":
        assert client.get(f"/agents/{agent['id']}").status_code == 404


def test_an_unknown_route_is_not_found_in_the_error_shape(client, create_agent):
    agent = create_agent()

    for path in ("/nope", "/agent", f"/agents/{agent['id']}/calls", "/api/v1/agents"):
        assert_error(client.get(path), 404, "not_found")


WRONG_METHODS = {
    "PUT /agents": ("PUT", "/agents", {"GET", "POST"}),
    "DELETE /agents": ("DELETE", "/agents", {"GET", "POST"}),
    "POST /agents/{id}": ("POST", "/agents/{id}", {"GET", "PATCH", "DELETE"}),
    "PUT /agents/{id}": ("PUT", "/agents/{id}", {"GET", "PATCH", "DELETE"}),
}


def test_a_wrong_method_is_method_not_allowed_with_an_allow_header(client, create_agent):
    agent = create_agent()
    observed, expected = {}, {}

    for case, (method, path, allowed) in WRONG_METHODS.items():
        response = client.open(path.format(id=agent["id"]), method=method, json={"name": "x"})
        allow = {name.strip() for name in response.headers.get("Allow", "").split(",")}
        code = (json_object_in(response) or {}).get("code")
        observed[case] = (response.status_code, code, allowed <= allow)
        expected[case] = (405, "method_not_allowed", True)

    assert observed == expected


# --- every response is a JSON object -----------------------------------------------------------

EVERY_KIND_OF_RESPONSE = {
    "list": ("GET", "/agents", {}),
    "list page": ("GET", "/agents?limit=1", {}),
    "create": ("POST", "/agents", {"json": VALID_AGENT}),
    "get": ("GET", "/agents/{id}", {}),
    "patch": ("PATCH", "/agents/{id}", {"json": {"name": "Renamed"}}),
    "delete": ("DELETE", "/agents/{id}", {}),
    "health": ("GET", "/healthz", {}),
    "readiness": ("GET", "/readyz", {}),
    "openapi": ("GET", "/openapi.json", {}),
    "validation error": ("POST", "/agents", {"json": {"name": ""}}),
    "bad query parameter": ("GET", "/agents?limit=0", {}),
    "body not json": ("POST", "/agents", {"data": "{", "content_type": "application/json"}),
    "body a json array": ("POST", "/agents", {"data": "[]", "content_type": "application/json"}),
    "not a json content type": (
        "POST",
        "/agents",
        {"data": "name=x", "content_type": "text/plain"},
    ),
    "body too large": (
        "POST",
        "/agents",
        {"data": "x" * (1024 * 1024 + 1), "content_type": "application/json"},
    ),
    "agent not found": ("GET", f"/agents/{uuid.uuid4()}", {}),
    "unknown route": ("GET", "/nope", {}),
    "method not allowed": ("PUT", "/agents", {}),
}


def test_every_response_is_a_json_object_labelled_application_json(client, create_agent):
    agent = create_agent()
    offenders = {}

    for kind, (method, path, extra) in EVERY_KIND_OF_RESPONSE.items():
        response = client.open(path.format(id=agent["id"]), method=method, **extra)
        if json_object_in(response) is None:
            offenders[kind] = (
                f"{response.status_code} {response.content_type} {response.get_data()[:80]!r}"
            )

    assert offenders == {}


def test_an_options_request_is_answered_with_a_json_object_too(client, create_agent):
    agent = create_agent()

    offenders = {}
    for path in ("/agents", f"/agents/{agent['id']}"):
        response = client.options(path)
        if json_object_in(response) is None:
            offenders[path] = (
                f"{response.status_code} {response.content_type} {response.get_data()[:80]!r}"
            )

    assert offenders == {}


# --- operations endpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_health_probes_answer_status_ok(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert assert_json_object(response) == {"status": "ok"}


def test_the_openapi_document_is_openapi_3_1_describing_the_agents_routes_and_fields(client):
    response = client.get("/openapi.json")

    assert response.status_code == 200
    spec = assert_json_object(response)
    assert spec["openapi"].startswith("3.1")
    assert "/agents" in spec["paths"]
    assert {"get", "post"} <= set(spec["paths"]["/agents"])
    [agent_path] = [path for path in spec["paths"] if re.fullmatch(r"/agents/\{\w+\}", path)]
    assert {"get", "patch", "delete"} <= set(spec["paths"][agent_path])
    assert AGENT_FIELDS <= set(spec["components"]["schemas"]["Agent"]["properties"])


def make_unreadable(database_path):
    """Replace the database file with bytes SQLite cannot open."""
    for suffix in ("-wal", "-shm"):
        database_path.with_name(database_path.name + suffix).unlink(missing_ok=True)
    database_path.write_bytes(b"this is not a database\n" * 200)


def test_readiness_is_503_in_the_error_shape_when_the_database_does_not_answer(
    client, database_path
):
    assert client.get("/readyz").status_code == 200
    make_unreadable(database_path)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = assert_json_object(response)
    assert isinstance(body["error"], str) and isinstance(body["code"], str)


def test_liveness_answers_without_touching_the_database(client, database_path):
    make_unreadable(database_path)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


class _AssetCollector(HTMLParser):
    """The URLs of the scripts, stylesheets and icons a page loads."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


DOCS_HOST = "http://agents.internal.example"


@pytest.fixture
def docs_page(client):
    # Served under a host that is not localhost, so no localhost special case hides anything.
    response = client.get("/docs", base_url=DOCS_HOST)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_the_docs_page_loads_every_script_and_stylesheet_from_the_service_itself(client, docs_page):
    collector = _AssetCollector()
    collector.feed(docs_page)

    assert any(url.endswith(".js") for url in collector.urls)
    assert any(url.endswith(".css") for url in collector.urls)
    for url in collector.urls:
        parts = urlsplit(url)
        assert parts.netloc in ("", urlsplit(DOCS_HOST).netloc), url
        with client.get(parts.path, base_url=DOCS_HOST) as asset:
            assert asset.status_code == 200, url


def test_the_docs_page_names_no_host_but_the_service_itself(docs_page):
    hosts = {urlsplit(url).netloc for url in re.findall(r"(?:https?:)?//[^\s\"'<>)]+", docs_page)}

    assert hosts <= {urlsplit(DOCS_HOST).netloc}


def test_the_docs_page_points_at_the_services_own_openapi_document(docs_page):
    assert '"/openapi.json"' in docs_page


def test_the_docs_page_turns_off_swagger_uis_online_validator(docs_page):
    # Unless validatorUrl is null or "none", Swagger UI on any host but localhost shows a badge
    # loaded from https://validator.swagger.io: a request that fails offline and sends the spec's
    # URL to a third party.
    if "swagger-ui" not in docs_page:
        pytest.skip("the reference page is not Swagger UI")

    assert re.search(r"""["']?validatorUrl["']?\s*:\s*(null|["']none["'])""", docs_page)


# --- persistence -------------------------------------------------------------------------------


def test_agents_persist_across_two_app_instances_on_the_same_database_file(make_app):
    first = make_app().test_client()
    created = first.post("/agents", json=VALID_AGENT).get_json()["agent"]
    deleted = first.post("/agents", json={"name": "Short-lived"}).get_json()["agent"]
    first.delete(f"/agents/{deleted['id']}")

    second = make_app().test_client()

    assert second.get(f"/agents/{created['id']}").get_json() == {"agent": created}
    assert second.get(f"/agents/{deleted['id']}").status_code == 404
    assert second.get("/agents").get_json()["agents"] == [created]
