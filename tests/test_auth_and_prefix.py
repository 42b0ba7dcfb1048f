"""Contract section 9 (API keys) and the configurable URL prefix of section 1."""

import re
import uuid

import pytest

from tests.conftest import VALID_AGENT

KEYS = ("key-alpha-7f3c9d2e", "key-bravo-22d1e8aa")
PREFIX = "/api/v1"


def keys_shown_in(response):
    """The configured keys that appear anywhere in a response, headers included."""
    shown = response.get_data(as_text=True) + str(response.headers)
    return [key for key in KEYS if key in shown]


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


# --- authentication ----------------------------------------------------------------------------


@pytest.fixture
def auth_app(make_app):
    return make_app(API_KEYS=",".join(KEYS))


@pytest.fixture
def auth_client(auth_app):
    return auth_app.test_client()


@pytest.fixture
def stored_agent(auth_client):
    response = auth_client.post("/agents", json=VALID_AGENT, headers=bearer(KEYS[0]))
    assert response.status_code == 201
    return response.get_json()["agent"]


AGENTS_ROUTES = {
    "list": ("GET", "/agents"),
    "list with a trailing slash": ("GET", "/agents/"),
    "create": ("POST", "/agents"),
    "get": ("GET", "/agents/{id}"),
    "patch": ("PATCH", "/agents/{id}"),
    "delete": ("DELETE", "/agents/{id}"),
    "an agent that does not exist": ("GET", f"/agents/{uuid.uuid4()}"),
    "a method the route lacks": ("PUT", "/agents"),
}


def refusal(response):
    """What matters about a refused request: status, code, challenge, and no key shown."""
    body = response.get_json() if response.mimetype == "application/json" else {}
    return (
        response.status_code,
        body.get("code"),
        isinstance(body.get("error"), str),
        bool(re.match(r"Bearer\b", response.headers.get("WWW-Authenticate", ""))),
        keys_shown_in(response),
    )


UNAUTHORIZED = (401, "unauthorized", True, True, [])


def assert_unauthorized(response):
    assert refusal(response) == UNAUTHORIZED


def test_every_agents_route_refuses_a_request_without_a_key(auth_client, stored_agent):
    observed = {
        route: refusal(
            auth_client.open(path.format(id=stored_agent["id"]), method=method, json={"name": "x"})
        )
        for route, (method, path) in AGENTS_ROUTES.items()
    }

    assert observed == {route: UNAUTHORIZED for route in AGENTS_ROUTES}


BAD_AUTHORIZATIONS = {
    "an unknown key": "Bearer key-charlie-00000000",
    "a known key with a different case": f"Bearer {KEYS[0].upper()}",
    "a prefix of a known key": f"Bearer {KEYS[0][:-1]}",
    "both keys at once": f"Bearer {KEYS[0]},{KEYS[1]}",
    "the basic scheme": f"Basic {KEYS[0]}",
    "a token scheme": f"Token {KEYS[0]}",
    "a key without a scheme": KEYS[0],
    "a scheme without a key": "Bearer",
    "an empty header": "",
}


def test_a_wrong_or_malformed_authorization_is_unauthorized(auth_client):
    observed = {
        case: refusal(auth_client.get("/agents", headers={"Authorization": authorization}))
        for case, authorization in BAD_AUTHORIZATIONS.items()
    }

    assert observed == {case: UNAUTHORIZED for case in BAD_AUTHORIZATIONS}


def test_a_refused_write_changes_nothing(auth_client, stored_agent):
    url = f"/agents/{stored_agent['id']}"
    wrong = {"Authorization": "Bearer wrong-key-123"}

    responses = [
        auth_client.post("/agents", json=VALID_AGENT, headers=wrong),
        auth_client.patch(url, json={"name": "Hijacked"}, headers=wrong),
        auth_client.delete(url, headers=wrong),
    ]

    assert [response.status_code for response in responses] == [401, 401, 401]
    listed = auth_client.get("/agents", headers=bearer(KEYS[1])).get_json()["agents"]
    assert listed == [stored_agent]


ACCEPTED_AUTHORIZATIONS = {
    "the first key": f"Bearer {KEYS[0]}",
    "the second key": f"Bearer {KEYS[1]}",
    "a lowercase scheme": f"bearer {KEYS[0]}",
}


@pytest.mark.parametrize(
    "authorization", ACCEPTED_AUTHORIZATIONS.values(), ids=ACCEPTED_AUTHORIZATIONS.keys()
)
def test_a_configured_key_opens_every_agents_route_and_is_never_echoed(auth_client, authorization):
    headers = {"Authorization": authorization}

    created = auth_client.post("/agents", json=VALID_AGENT, headers=headers)
    url = created.headers["Location"]
    responses = [
        created,
        auth_client.get("/agents", headers=headers),
        auth_client.get(url, headers=headers),
        auth_client.patch(url, json={"name": "Renamed"}, headers=headers),
        auth_client.delete(url, headers=headers),
    ]

    assert [response.status_code for response in responses] == [201, 200, 200, 200, 200]
    assert [keys_shown_in(response) for response in responses] == [[]] * len(responses)


def test_a_key_list_with_blanks_and_spaces_still_accepts_each_key(make_app):
    client = make_app(API_KEYS=f" {KEYS[0]} ,, {KEYS[1]} ").test_client()

    assert client.get("/agents", headers=bearer(KEYS[0])).status_code == 200
    assert client.get("/agents", headers=bearer(KEYS[1])).status_code == 200
    assert client.get("/agents", headers=bearer("")).status_code == 401


OPEN_ROUTES = ["/healthz", "/readyz", "/openapi.json", "/docs"]


def test_the_operational_routes_stay_open_when_keys_are_configured(auth_client):
    observed = {}
    for path in OPEN_ROUTES:
        response = auth_client.get(path)
        observed[path] = (response.status_code, keys_shown_in(response))

    assert observed == {path: (200, []) for path in OPEN_ROUTES}


def test_the_api_keys_environment_variable_turns_authentication_on(make_app, monkeypatch):
    monkeypatch.setenv("AGENTS_API_KEYS", ",".join(KEYS))
    client = make_app().test_client()

    assert_unauthorized(client.get("/agents"))
    assert client.get("/agents", headers=bearer(KEYS[1])).status_code == 200


def test_without_configured_keys_no_authorization_is_needed(client):
    assert client.get("/agents").status_code == 200


# --- the URL prefix ----------------------------------------------------------------------------


@pytest.fixture
def prefixed_client(make_app):
    return make_app(URL_PREFIX=PREFIX).test_client()


def test_with_a_prefix_the_agents_routes_live_under_it(prefixed_client):
    created = prefixed_client.post(f"{PREFIX}/agents", json=VALID_AGENT)
    agent = created.get_json()["agent"]
    url = f"{PREFIX}/agents/{agent['id']}"

    assert created.status_code == 201
    assert created.headers["Location"] == url
    assert prefixed_client.get(f"{PREFIX}/agents").get_json()["agents"] == [agent]
    assert prefixed_client.get(f"{PREFIX}/agents/").status_code == 200
    assert prefixed_client.get(url).get_json() == {"agent": agent}
    assert prefixed_client.patch(url, json={"name": "Renamed"}).status_code == 200
    assert prefixed_client.delete(url).get_json() == {"success": True}
    assert prefixed_client.get(url).get_json() == {
        "error": "Agent not found.",
        "code": "not_found",
        "type": "not_found",
    }


def test_with_a_prefix_the_unprefixed_agents_routes_are_not_found(prefixed_client):
    agent = prefixed_client.post(f"{PREFIX}/agents", json=VALID_AGENT).get_json()["agent"]

    for route, (method, path) in AGENTS_ROUTES.items():
        response = prefixed_client.open(
            path.format(id=agent["id"]), method=method, json={"name": "x"}
        )

        assert response.status_code == 404, route
        assert response.mimetype == "application/json", route
        assert response.get_json()["code"] == "not_found", route


def test_with_a_prefix_the_next_page_link_keeps_it(prefixed_client):
    for number in range(3):
        prefixed_client.post(f"{PREFIX}/agents", json={"name": f"Agent {number}"})

    first = prefixed_client.get(f"{PREFIX}/agents?limit=1")

    next_url = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"]).group(1)
    assert next_url.startswith(f"{PREFIX}/agents?")
    following = prefixed_client.get(next_url)
    assert following.status_code == 200
    assert following.get_json()["agents"][0]["id"] != first.get_json()["agents"][0]["id"]


def test_with_a_prefix_the_openapi_document_names_it_as_the_server_url(prefixed_client):
    spec = prefixed_client.get("/openapi.json").get_json()

    assert [server["url"] for server in spec["servers"]] == [PREFIX]
    assert "/agents" in spec["paths"]


def test_with_a_prefix_the_operational_routes_stay_at_the_root(prefixed_client):
    for path in OPEN_ROUTES:
        assert prefixed_client.get(path).status_code == 200, path


@pytest.mark.parametrize("spelling", ["api/v1", "/api/v1/"])
def test_a_prefix_means_the_same_however_its_slashes_are_written(make_app, spelling):
    client = make_app(URL_PREFIX=spelling).test_client()

    created = client.post(f"{PREFIX}/agents", json=VALID_AGENT)

    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{PREFIX}/agents/")


def test_the_url_prefix_environment_variable_moves_the_routes(make_app, monkeypatch):
    monkeypatch.setenv("AGENTS_URL_PREFIX", PREFIX)
    client = make_app().test_client()

    assert client.get(f"{PREFIX}/agents").status_code == 200
    assert client.get("/agents").status_code == 404


def test_a_prefix_and_keys_together_protect_the_prefixed_routes(make_app):
    client = make_app(URL_PREFIX=PREFIX, API_KEYS=",".join(KEYS)).test_client()

    assert_unauthorized(client.get(f"{PREFIX}/agents"))
    assert client.get(f"{PREFIX}/agents", headers=bearer(KEYS[0])).status_code == 200
    assert client.get("/healthz").status_code == 200


# Paths that Werkzeug would redirect to a merged or slash-corrected spelling, with a Location
# built from the client's Host header and an HTML body.
REDIRECT_PRONE_PATHS = [
    f"{PREFIX}//agents",
    f"/{PREFIX}/agents",
    f"{PREFIX}//agents/0b6f5bd4-3c1e-4a55-9d0e-6f1c2a7e8b90",
    f"{PREFIX}/agents//0b6f5bd4-3c1e-4a55-9d0e-6f1c2a7e8b90",
    "/api//v1/agents",
    "//healthz",
    "/readyz//",
    "//openapi.json",
    "/docs//",
    "//docs",
    "/_test//requests",
    "//_test/faults",
]


@pytest.mark.parametrize("path", REDIRECT_PRONE_PATHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("authorization", [{}, bearer(KEYS[0])], ids=["without a key", "with one"])
def test_a_path_with_doubled_slashes_is_answered_in_json_and_never_redirected(
    make_app, path, method, authorization
):
    client = make_app(URL_PREFIX=PREFIX, API_KEYS=",".join(KEYS), TEST_MODE=True).test_client()
    headers = {"Host": "attacker.example", **authorization}

    response = client.open(path, method=method, headers=headers, json={"name": "x"})

    assert response.status_code in (401, 404, 405), response.status_code
    assert "Location" not in response.headers
    assert "attacker.example" not in response.get_data(as_text=True) + str(response.headers)
    assert response.mimetype == "application/json"
    assert set(response.get_json()) >= {"error", "code"}
