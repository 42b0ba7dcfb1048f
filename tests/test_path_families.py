"""`/assistants` beside `/agents`: one store, each family in its own envelopes (API.md 1 and 2).

Both families take the same bodies and answer with the same agents, headers and errors; only
the envelope member and the family named in `Location` and `Link` follow the path the request
used. Auth, the journal and faults treat both alike, each by the path as the client sent it.
"""

import pytest

from tests.conftest import VALID_AGENT

FAMILIES = [("assistants", "assistant"), ("agents", "agent")]
OTHER = {"assistants": "agents", "agents": "assistants"}


@pytest.mark.parametrize(("family", "member"), FAMILIES)
def test_each_family_answers_in_its_own_envelopes(client, family, member):
    created = client.post(f"/{family}", json=VALID_AGENT)
    assert created.status_code == 201
    agent = created.get_json()[member]
    assert list(created.get_json()) == [member]
    assert created.headers["Location"] == f"/{family}/{agent['id']}"

    fetched = client.get(f"/{family}/{agent['id']}")
    assert fetched.get_json() == {member: agent}
    assert fetched.headers["ETag"] == created.headers["ETag"]

    listed = client.get(f"/{family}").get_json()
    assert listed == {family: [agent], "has_more": False, "next_cursor": None}

    patched = client.patch(f"/{family}/{agent['id']}", json={"first_message": "Hoi"})
    assert patched.get_json()[member]["first_message"] == "Hoi"

    deleted = client.delete(f"/{family}/{agent['id']}")
    assert deleted.status_code == 200 and deleted.get_json() == {"success": True}
    assert client.get(f"/{family}/{agent['id']}").status_code == 404


@pytest.mark.parametrize(("family", "member"), FAMILIES)
def test_both_families_read_and_write_the_same_agents(client, family, member):
    other = OTHER[family]
    agent = client.post(f"/{family}", json={"name": "Shared"}).get_json()[member]

    seen = client.get(f"/{other}/{agent['id']}")
    assert seen.get_json()[other[:-1]] == agent
    client.patch(f"/{other}/{agent['id']}", json={"gdpr_mode": True})
    assert client.get(f"/{family}/{agent['id']}").get_json()[member]["gdpr_mode"] is True
    assert client.delete(f"/{other}/{agent['id']}").status_code == 200
    assert client.get(f"/{family}/{agent['id']}").get_json()["code"] == "not_found"


@pytest.mark.parametrize(("family", "member"), FAMILIES)
def test_a_page_links_to_the_next_one_in_its_own_family(client, family, member):
    for index in range(3):
        client.post(f"/{family}", json={"name": f"Agent {index}"})

    page = client.get(f"/{family}?limit=2")

    assert len(page.get_json()[family]) == 2
    assert page.headers["Link"].startswith(f"</{family}?limit=2&cursor=")
    cursor = page.get_json()["next_cursor"]
    rest = client.get(f"/{OTHER[family]}?limit=2&cursor={cursor}").get_json()
    assert len(rest[OTHER[family]]) == 1


@pytest.mark.parametrize("family", ["assistants", "agents"])
def test_an_idempotent_create_replays_in_the_family_of_the_retry(client, family):
    key = {"Idempotency-Key": "create-once"}
    first = client.post(f"/{OTHER[family]}", json={"name": "Once"}, headers=key)
    again = client.post(f"/{family}", json={"name": "Once"}, headers=key)

    agent_id = first.get_json()[OTHER[family][:-1]]["id"]
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()[family[:-1]]["id"] == agent_id
    assert again.headers["Location"] == f"/{family}/{agent_id}"
    assert len(client.get("/agents").get_json()["agents"]) == 1


@pytest.mark.parametrize("family", ["assistants", "agents"])
def test_errors_are_the_same_on_both_families(client, family):
    invalid = client.post(f"/{family}", json={"name": ""})
    assert invalid.status_code == 400
    assert invalid.get_json()["fields"] == {"name": ["name must not be blank."]}
    missing = client.get(f"/{family}/2f1c0a4e-6f7b-4d8e-9a51-3c2b1d0e9f87")
    assert missing.get_json() == {
        "error": "Agent not found.",
        "code": "not_found",
        "type": "not_found",
    }
    not_allowed = client.put(f"/{family}")
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize("family", ["assistants", "agents"])
def test_a_trailing_slash_is_the_same_path_on_both_families(client, family):
    created = client.post(f"/{family}/", json={"name": "Slash"})
    assert created.status_code == 201
    agent_id = created.get_json()[family[:-1]]["id"]
    assert client.get(f"/{family}/{agent_id}/").status_code == 200


def test_both_families_sit_under_the_url_prefix_and_need_the_key(make_app):
    client = make_app(URL_PREFIX="/api/v1", API_KEYS="secret-key").test_client()
    key = {"Authorization": "Bearer secret-key"}

    for family in ("assistants", "agents"):
        refused = client.get(f"/api/v1/{family}")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"]
        assert client.get(f"/api/v1/{family}", headers=key).status_code == 200
        assert client.get(f"/{family}", headers=key).status_code == 404
    created = client.post("/api/v1/assistants", json={"name": "Prefixed"}, headers=key)
    agent_id = created.get_json()["assistant"]["id"]
    assert created.headers["Location"] == f"/api/v1/assistants/{agent_id}"


def test_the_journal_keeps_each_request_under_the_path_it_was_sent_to(double):
    double.post("/assistants", json={"name": "Journal"})
    double.get("/agents")

    journal = double.get("/_test/requests").get_json()["requests"]
    assert [(entry["method"], entry["path"]) for entry in journal] == [
        ("POST", "/assistants"),
        ("GET", "/agents"),
    ]
    only = double.get("/_test/requests?path=/assistants").get_json()["requests"]
    assert [entry["path"] for entry in only] == ["/assistants"]


@pytest.mark.parametrize("family", ["assistants", "agents"])
def test_a_fault_answers_only_the_family_it_names(double, family):
    fault = {"method": "GET", "path": f"/{family}", "status": 503, "times": -1}
    assert double.post("/_test/faults", json=fault).status_code == 201

    assert double.get(f"/{family}").status_code == 503
    assert double.get(f"/{OTHER[family]}").status_code == 200
    assert double.get(f"/{family}").get_json()["code"] == "injected_fault"


def test_a_fault_on_an_id_path_of_either_family_is_accepted(double):
    for path in ("/assistants/{id}", "/agents/{id}"):
        fault = {"method": "DELETE", "path": path, "status": 500}
        assert double.post("/_test/faults", json=fault).status_code == 201


def test_a_fault_outside_both_families_is_refused_naming_them(double):
    refused = double.post("/_test/faults", json={"method": "GET", "path": "/calls", "status": 500})
    assert refused.status_code == 400
    assert refused.get_json()["fields"]["path"] == [
        "path must be a path of the API, /assistants or /agents or below, as the client sends it "
        "(such as /assistants/{id})."
    ]


def test_the_openapi_document_describes_both_families_under_their_own_tags(client):
    document = client.get("/openapi.json").get_json()
    paths = document["paths"]

    for family, _ in FAMILIES:
        envelope = "Assistant" if family == "assistants" else "Agent"
        listing = paths[f"/{family}"]["get"]
        assert listing["tags"] == [family]
        assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{envelope}List"
        }
        one = paths[f"/{family}/{{agent_id}}"]["get"]["responses"]["200"]
        assert one["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{envelope}Envelope"
        }
        assert set(paths[f"/{family}/{{agent_id}}"]) >= {"get", "patch", "delete"}
    components = document["components"]["schemas"]
    assert components["AssistantEnvelope"]["required"] == ["assistant"]
    assert components["AssistantList"]["properties"]["assistants"]["items"] == {
        "$ref": "#/components/schemas/Agent"
    }
