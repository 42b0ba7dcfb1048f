"""The `agents_api` fixture this project ships as a pytest plugin, and its helpers.

Every test here runs against a service with AGENTS_URL_PREFIX=/api/v1, so the helpers are shown
to add the prefix to API paths and to keep the /_test routes at the root.
"""

import pytest
import requests

from pytest_agents_api import TestModeError

SUPPORT = {"name": "Support"}


@pytest.fixture(scope="module", autouse=True)
def url_prefix():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AGENTS_API_URL", raising=False)
        patch.setenv("AGENTS_URL_PREFIX", "/api/v1")
        yield "/api/v1"


def create(agents_api, **fields):
    response = requests.post(f"{agents_api.url}/agents", json={**SUPPORT, **fields},
                             headers=agents_api.headers, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["agent"]


def test_the_fixture_serves_the_api_on_loopback_at_its_url(agents_api):
    assert agents_api.url.startswith("http://127.0.0.1:")
    assert agents_api.url.endswith("/api/v1")
    assert create(agents_api)["name"] == "Support"


def test_each_test_starts_from_a_reset_service_1(agents_api):
    create(agents_api)
    agents_api.fail("GET", "/agents", status=500)
    agents_api.freeze("2025-12-13T10:00:00.000Z")


def test_each_test_starts_from_a_reset_service_2(agents_api):
    # The test before this one left an agent, a fault and a frozen clock behind.
    assert agents_api.faults() == []
    response = requests.get(f"{agents_api.url}/agents", timeout=5)
    assert response.json()["agents"] == []
    assert create(agents_api)["created_at"] != "2025-12-13T10:00:00.000Z"


def test_requests_filters_by_method_and_by_path_without_the_prefix(agents_api):
    agent = create(agents_api)
    requests.get(f"{agents_api.url}/agents/{agent['id']}", timeout=5)
    assert [e["method"] for e in agents_api.requests()] == ["POST", "GET"]
    assert [e["path"] for e in agents_api.requests("GET", "/agents/{id}")] == [
        f"/api/v1/agents/{agent['id']}"
    ]
    agents_api.clear_requests()
    assert agents_api.requests() == []


def test_fail_returns_the_fault_and_clear_faults_removes_it(agents_api):
    fault = agents_api.fail("POST", "/agents", status=429, retry_after=2, times=-1)
    assert (fault["path"], fault["times"]) == ("/api/v1/agents", -1)
    response = requests.post(f"{agents_api.url}/agents", json=SUPPORT, timeout=5)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
    agents_api.clear_faults()
    assert agents_api.faults() == []


def test_freeze_and_unfreeze(agents_api):
    agents_api.freeze("2025-12-13T10:00:00.000Z")
    assert create(agents_api)["created_at"] == "2025-12-13T10:00:00.000Z"
    agents_api.unfreeze()
    assert create(agents_api)["created_at"] != "2025-12-13T10:00:00.000Z"


def test_reset_with_a_seed_repeats_ids(agents_api):
    agents_api.reset(seed=11)
    first = create(agents_api)["id"]
    agents_api.reset(seed=11)
    assert create(agents_api)["id"] == first


def test_load_snapshot_and_restore(agents_api):
    [loaded] = agents_api.load([{"id": "00000000-0000-4000-8000-000000000042", **SUPPORT}])
    agents_api.snapshot("one-agent")
    agents_api.reset()
    agents_api.restore("one-agent")
    response = requests.get(f"{agents_api.url}/agents/{loaded['id']}", timeout=5)
    assert response.json() == {"agent": loaded}


def test_a_refused_helper_call_raises_with_the_services_message(agents_api):
    with pytest.raises(TestModeError, match=r"^400: agents\.0\.name is required\.$") as refused:
        agents_api.load([{}])
    assert refused.value.body["code"] == "validation_error"
    with pytest.raises(TestModeError, match="^404: No snapshot is named never-saved.$"):
        agents_api.restore("never-saved")
