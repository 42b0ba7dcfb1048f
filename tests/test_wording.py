"""Every refusal says one clear thing, the same way whichever path led to it."""

import pytest

from tests.conftest import VALID_AGENT


def error_of(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.get_json()


def test_an_empty_name_is_refused_in_one_sentence(client):
    body = error_of(client.post("/agents", json={**VALID_AGENT, "name": ""}))
    assert body["details"] == ["name must not be blank."]


@pytest.mark.parametrize(
    ("patch", "sentence"),
    [
        ({"name": None}, "name must not be null."),
        ({"stt_config": {"provider": None}}, "stt_config.provider must not be null."),
        ({"llm_config": {"model": None}}, "llm_config.model must not be null."),
    ],
)
def test_a_patch_nulling_a_required_member_is_worded_as_a_post_sending_null(
    client, create_agent, patch, sentence
):
    agent = create_agent()
    post = {**VALID_AGENT, **patch}
    for key, value in patch.items():
        if isinstance(value, dict):
            post[key] = {**VALID_AGENT[key], **value}

    patched = error_of(client.patch(f"/agents/{agent['id']}", json=patch))
    posted = error_of(client.post("/agents", json=post))

    assert patched["details"] == posted["details"] == [sentence]
    assert client.get(f"/agents/{agent['id']}").get_json()["agent"] == agent


@pytest.mark.parametrize("address", ["not-an-address", "two@@ats.example", "x@", "@example.com"])
def test_an_e_mail_error_ends_in_exactly_one_period(client, address):
    body = error_of(client.post("/agents", json={**VALID_AGENT, "notification_email": address}))
    [sentence] = body["details"]
    assert sentence.startswith("notification_email must be a valid e-mail address (")
    assert sentence.endswith(").") and ".)" not in sentence and ".." not in sentence


@pytest.mark.parametrize("path", ["/agents?colour=red", "/agents?limit=5&limt=5"])
def test_an_unknown_query_parameter_is_named_as_a_parameter(client, path):
    body = error_of(client.get(path))
    assert body["error"].endswith("is not a known query parameter.")
    assert "field" not in body["error"]


@pytest.mark.parametrize(
    ("raw", "member"),
    [
        ('{"name": "First", "name": "Second"}', "name"),
        (
            '{"name": "A", "tts_config": {"provider": "openai", "provider": "local", '
            '"voice_id": "alloy", "language": "nl"}}',
            "provider",
        ),
    ],
)
def test_a_member_sent_twice_in_one_object_is_refused_not_silently_overwritten(client, raw, member):
    response = client.post("/agents", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json() == {
        "error": f'The request body has the member "{member}" twice in one object.',
        "code": "invalid_json",
        "type": "invalid_json",
    }
    assert client.get("/agents").get_json()["agents"] == []


def test_a_patch_sending_a_member_twice_changes_nothing(client, create_agent):
    agent = create_agent()
    response = client.patch(
        f"/agents/{agent['id']}",
        data='{"name": "One", "name": "Two"}',
        content_type="application/merge-patch+json",
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    assert client.get(f"/agents/{agent['id']}").get_json()["agent"] == agent
