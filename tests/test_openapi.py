"""The OpenAPI document is built from the app's own routes, their docstrings and schemas."""

import pytest

from app import create_app


@pytest.fixture
def document(client):
    return client.get("/openapi.json").get_json()


def operations(document):
    for path, entry in document["paths"].items():
        for method, operation in entry.items():
            if method not in ("parameters", "servers"):
                yield path, method, operation


def test_every_route_of_the_app_is_documented_with_its_docstring_as_summary(app, document):
    documented = {(path, method) for path, method, _ in operations(document)}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "openapi"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented
            summary = document["paths"][path][method.lower()]["summary"]
            assert summary == view.__doc__.strip().splitlines()[0]


def test_the_probes_are_documented_and_readiness_can_answer_503(document):
    assert set(document["paths"]["/healthz"]) >= {"get"}
    assert set(document["paths"]["/readyz"]["get"]["responses"]) == {"200", "500", "503"}


def test_every_operation_on_the_database_documents_503_with_retry_after(document):
    for path, method, operation in operations(document):
        if path.startswith(("/agents", "/assistants")):
            unavailable = operation["responses"]["503"]
            assert "Retry-After" in unavailable["headers"], (path, method)


def test_operations_are_tagged_by_resource(document):
    tags = {path: operation["tags"] for path, _, operation in operations(document)}
    assert tags["/agents"] == ["agents"]
    assert tags["/healthz"] == ["health"]


def test_without_keys_the_document_shows_no_security_and_no_401(document):
    assert "security" not in document
    assert "securitySchemes" not in document["components"]
    for _, _, operation in operations(document):
        assert "security" not in operation
        assert "401" not in operation["responses"]


def test_with_keys_the_api_operations_need_the_bearer_key_and_the_probes_do_not(tmp_path):
    client = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "API_KEYS": "secret-key-123"}
    ).test_client()
    document = client.get("/openapi.json").get_json()

    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    for path, method, operation in operations(document):
        protected = path.startswith(("/agents", "/assistants"))
        assert ("security" in operation) is protected, (path, method)
        assert ("401" in operation["responses"]) is protected, (path, method)
    assert "secret-key-123" not in client.get("/openapi.json").get_data(as_text=True)


def test_a_merge_patch_may_null_every_optional_member_but_never_a_required_one(document):
    patch = document["components"]["schemas"]["AgentPatch"]
    assert "required" not in patch
    assert patch["properties"]["name"]["type"] == "string"
    assert "null" in patch["properties"]["max_duration_seconds"]["type"]
    stt = document["components"]["schemas"]["SttConfigPatch"]
    assert stt["properties"]["provider"]["type"] == "string"
    assert "null" in stt["properties"]["keyterms"]["type"]
