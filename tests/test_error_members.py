"""`type` and `param` in every error body (API.md 4), where the platform's SDK reads them.

`type` repeats `code` on every error; `param` names the first failing field (in the order the
error lists them) on validation errors only. Nothing else in the body changes.
"""

import pytest

UNKNOWN_ID = "2f1c0a4e-6f7b-4d8e-9a51-3c2b1d0e9f87"


def error(code, **members):
    return {"code": code, "type": code, **members}


NON_VALIDATION_ERRORS = [
    pytest.param("get", f"/agents/{UNKNOWN_ID}", {}, 404, "not_found", id="an unknown agent"),
    pytest.param("get", "/nowhere", {}, 404, "not_found", id="an unknown path"),
    pytest.param("put", "/assistants", {}, 405, "method_not_allowed", id="a method not allowed"),
    pytest.param(
        "post",
        "/assistants",
        {"data": "name=x", "content_type": "text/plain"},
        415,
        "unsupported_media_type",
        id="a body that is not JSON",
    ),
    pytest.param(
        "post",
        "/agents",
        {"data": "{", "content_type": "application/json"},
        400,
        "invalid_json",
        id="broken JSON",
    ),
    pytest.param(
        "post",
        "/agents",
        {"data": "[]", "content_type": "application/json"},
        400,
        "invalid_json",
        id="JSON that is not an object",
    ),
    pytest.param(
        "patch",
        f"/agents/{UNKNOWN_ID}",
        {"json": {"name": "x"}, "headers": {"If-Match": '"stale"'}},
        404,
        "not_found",
        id="a patch of an unknown agent",
    ),
]


@pytest.mark.parametrize(("method", "path", "options", "status", "code"), NON_VALIDATION_ERRORS)
def test_an_error_that_is_not_about_a_field_carries_type_but_no_param(
    client, method, path, options, status, code
):
    response = getattr(client, method)(path, **options)

    assert response.status_code == status
    body = response.get_json()
    assert body["code"] == body["type"] == code
    assert "param" not in body and "fields" not in body and "details" not in body
    assert list(body) == ["error", "code", "type"]


VALIDATION_ERRORS = [
    pytest.param({}, "name", id="a missing name"),
    pytest.param(
        {"name": "", "max_duration_seconds": 0}, "name", id="the first of two fields in order"
    ),
    pytest.param(
        {"max_duration_seconds": 0, "name": "x", "llm_config": {"provider": "nobody"}},
        "max_duration_seconds",
        id="contract order, not the order sent",
    ),
    pytest.param(
        {"name": "x", "tts_config": {"provider": "elevenlabs", "voice_id": "v"}},
        "tts_config.language",
        id="a nested field by its dotted path",
    ),
    pytest.param(
        {
            "name": "x",
            "llm_config": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "tools": [
                    {"name": "ok", "description": "d"},
                    {"name": "bad name", "description": "d"},
                ],
            },
        },
        "llm_config.tools.1.name",
        id="a list item by its index",
    ),
    pytest.param({"name": "x", "colour": "red"}, "colour", id="an unknown field"),
    pytest.param({"name": "x", "id": UNKNOWN_ID}, "id", id="a read-only field"),
]


@pytest.mark.parametrize(("body", "param"), VALIDATION_ERRORS)
def test_a_validation_error_names_its_first_failing_field_in_param(client, body, param):
    response = client.post("/assistants", json=body)

    assert response.status_code == 400
    error_body = response.get_json()
    assert error_body["type"] == error_body["code"] == "validation_error"
    assert error_body["param"] == param == next(iter(error_body["fields"]))
    assert list(error_body) == ["error", "code", "type", "param", "details", "fields"]
    assert error_body["error"] == " ".join(error_body["details"])


def test_the_contract_example_keeps_its_members_and_gains_type_and_param(client):
    body = {"llm_config": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 3}}
    response = client.post("/agents", json=body)

    assert response.get_json() == {
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


@pytest.mark.parametrize(
    ("path", "param"),
    [("/agents?limit=0", "limit"), ("/assistants?colour=red", "colour")],
)
def test_a_bad_query_parameter_is_the_param(client, path, param):
    assert client.get(path).get_json()["param"] == param


def test_a_bad_header_is_the_param(client):
    response = client.post("/agents", json={"name": "x"}, headers={"Idempotency-Key": "a b"})
    assert response.get_json()["param"] == "Idempotency-Key"


def test_a_401_carries_type_and_its_challenge(make_app):
    client = make_app(API_KEYS="the-key").test_client()
    response = client.get("/assistants")

    assert response.status_code == 401
    assert response.get_json() == {
        "error": "A valid API key is required: send Authorization: Bearer <key>.",
        **error("unauthorized"),
    }
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="agents"'


def test_an_injected_fault_carries_type_as_its_code(double):
    double.post(
        "/_test/faults",
        json={
            "method": "GET",
            "path": "/assistants",
            "status": 402,
            "code": "insufficient_credits",
        },
    )
    body = double.get("/assistants").get_json()
    assert body["code"] == body["type"] == "insufficient_credits"


def test_the_openapi_error_schema_shows_type_and_param(client):
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["Error"]

    assert schema["required"] == ["code", "error", "type"]
    assert schema["properties"]["type"]["type"] == "string"
    assert schema["properties"]["param"]["type"] == "string"
    assert schema["properties"]["retry_after"]["type"] == "integer"
