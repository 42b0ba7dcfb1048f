"""Contract section 5: PATCH is a JSON merge patch validated as a whole; the write-only secret."""

import json
import time

import pytest

from tests.conftest import LLM_UNSET, STT_UNSET, VALID_AGENT, current, url_of

LLM_CONFIG = {**VALID_AGENT["llm_config"], "tools": [], **LLM_UNSET}
STT_CONFIG = {**VALID_AGENT["stt_config"], **STT_UNSET}
ELEVENLABS = {"provider": "elevenlabs", "voice_id": "Rachel", "language": "nl", "stability": 0.5}
STRUCTURED_DATA_SCHEMA = {"type": "object", "properties": {"reason": {"type": "string"}}}
ANALYSIS_PLAN = {
    "structured_data_plan": {"schema": STRUCTURED_DATA_SCHEMA},
    "min_messages_threshold": 4,
}
FLAT_TOOL = {
    "name": "book_appointment",
    "description": "Books an appointment.",
    "url": "https://example.com/tools/book",
}
SECRET = "whsec-Correct-Horse-Battery-9731"
OTHER_SECRET = "whsec-Another-Staple-Secret-2468"


def without_updated_at(agent):
    return {key: value for key, value in agent.items() if key != "updated_at"}


def let_the_clock_tick():
    """Timestamps have millisecond resolution: wait long enough for a write to show."""
    time.sleep(0.003)


# --- merge semantics ---------------------------------------------------------------------------

# (starting agent, patch, the fields it changes, as the response must show them)
MERGES = {
    "fields present replace the stored ones": (
        {},
        {
            "first_message": "Goedemiddag, u spreekt met Acme support.",
            "is_active": False,
            "max_duration_seconds": 900,
        },
        {
            "first_message": "Goedemiddag, u spreekt met Acme support.",
            "is_active": False,
            "max_duration_seconds": 900,
        },
    ),
    "a nested object merges member by member": (
        {},
        {"llm_config": {"temperature": 1.2}},
        {"llm_config": {**LLM_CONFIG, "temperature": 1.2}},
    ),
    "objects inside nested objects merge too": (
        {"analysis_plan": ANALYSIS_PLAN},
        {"analysis_plan": {"structured_data_plan": {"enabled": False}}},
        {
            "analysis_plan": {
                "structured_data_plan": {
                    "enabled": False,
                    "schema": STRUCTURED_DATA_SCHEMA,
                    "messages": [],
                    "template_id": None,
                },
                "min_messages_threshold": 4,
            }
        },
    ),
    "an array of strings is replaced whole": (
        {},
        {"stt_config": {"keyterms": ["afspraak"]}},
        {"stt_config": {**STT_CONFIG, "keyterms": ["afspraak"]}},
    ),
    "an array of objects is replaced whole, not merged item by item": (
        {"llm_config": {**LLM_CONFIG, "tools": [FLAT_TOOL]}},
        {
            "llm_config": {
                "tools": [{"name": "book_appointment", "description": "Books."}],
                "messages": [{"role": "user", "content": "Hoi"}],
            }
        },
        {
            "llm_config": {
                **LLM_CONFIG,
                "tools": [
                    {
                        "name": "book_appointment",
                        "description": "Books.",
                        "parameters": {"type": "object", "properties": {}},
                    }
                ],
                "messages": [{"role": "user", "content": "Hoi"}],
            }
        },
    ),
    "a nested object sent where there was none is stored whole": (
        {"analysis_plan": None},
        {"analysis_plan": {"min_messages_threshold": 3}},
        {"analysis_plan": {"structured_data_plan": None, "min_messages_threshold": 3}},
    ),
    "null resets an optional string to null": (
        {},
        {"business_name": None},
        {"business_name": None},
    ),
    "null resets an integer to its default": (
        {"max_duration_seconds": 900},
        {"max_duration_seconds": None},
        {"max_duration_seconds": 600},
    ),
    "null resets a boolean to its default": (
        {"is_active": False},
        {"is_active": None},
        {"is_active": True},
    ),
    "null resets an array to its default": (
        {"webhook_events": ["status-update"]},
        {"webhook_events": None},
        {"webhook_events": []},
    ),
    "null removes a whole nested object": (
        {},
        {"tts_config": None},
        {"tts_config": None},
    ),
    "null inside a nested object resets that member to its default": (
        {"llm_config": {**LLM_CONFIG, "temperature": 1.5}},
        {"llm_config": {"temperature": None}},
        {"llm_config": LLM_CONFIG},
    ),
    "null on a nested array resets it to empty": (
        {},
        {"stt_config": {"keyterms": None}},
        {"stt_config": {**STT_CONFIG, "keyterms": []}},
    ),
}


@pytest.mark.parametrize("start, patch, changed", MERGES.values(), ids=MERGES.keys())
def test_a_merge_patch_changes_what_it_names_and_nothing_else(
    client, create_agent, start, patch, changed
):
    before = create_agent(**start)

    response = client.patch(url_of(before), json=patch)

    assert response.status_code == 200, response.get_json()
    after = response.get_json()["agent"]
    assert without_updated_at(after) == without_updated_at({**before, **changed})
    assert current(client, before)[0] == after


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/merge-patch+json",
        "application/merge-patch+json; charset=utf-8",
    ],
)
def test_a_patch_is_accepted_as_json_or_as_merge_patch_json(client, create_agent, content_type):
    agent = create_agent()

    response = client.patch(
        url_of(agent), data=json.dumps({"name": "Renamed"}), content_type=content_type
    )

    assert response.status_code == 200
    assert response.get_json()["agent"]["name"] == "Renamed"


NOT_A_MERGE_PATCH = {
    "a json array": ("[]", "application/merge-patch+json", 400, "invalid_json"),
    "broken json": ('{"name": ', "application/json", 400, "invalid_json"),
    "a text content type": ('{"name": "Renamed"}', "text/plain", 415, "unsupported_media_type"),
}


@pytest.mark.parametrize(
    "data, content_type, status, code", NOT_A_MERGE_PATCH.values(), ids=NOT_A_MERGE_PATCH.keys()
)
def test_a_body_that_is_not_a_json_merge_patch_is_refused_and_changes_nothing(
    client, create_agent, data, content_type, status, code
):
    agent = create_agent()
    before = current(client, agent)

    response = client.patch(url_of(agent), data=data, content_type=content_type)

    assert response.status_code == status
    assert response.get_json()["code"] == code
    assert current(client, agent) == before


# --- rejected patches --------------------------------------------------------------------------

# (starting agent, patch, the field path(s) the 400 must name)
REJECTIONS = {
    "null on the required name": ({}, {"name": None}, "name"),
    "a blank name": ({}, {"name": "   "}, "name"),
    "a wrong type": ({}, {"is_active": "false"}, "is_active"),
    "a rule broken inside a nested object": (
        {},
        {"llm_config": {"temperature": 2.5}},
        "llm_config.temperature",
    ),
    "switching tts provider away from elevenlabs while stability is set": (
        {"tts_config": ELEVENLABS},
        {"tts_config": {"provider": "openai"}},
        "tts_config.stability",
    ),
    "an elevenlabs-only field added to an openai voice": (
        {},
        {"tts_config": {"similarity_boost": 0.3}},
        "tts_config.similarity_boost",
    ),
    "switching llm provider to xai_realtime while stt_config is set": (
        {"tts_config": None},
        {"llm_config": {"provider": "xai_realtime"}},
        "stt_config",
    ),
    "adding stt_config to an xai_realtime agent": (
        {
            "llm_config": {"provider": "xai_realtime", "model": "grok-realtime"},
            "stt_config": None,
            "tts_config": None,
        },
        {"stt_config": STT_CONFIG},
        "stt_config",
    ),
    "the read-only fields": (
        {},
        {
            "id": "17a0cb75-fa09-4bdd-9a44-92a70d829c88",
            "created_at": "2025-12-13T10:00:00.000Z",
            "updated_at": "2025-12-13T10:00:00.000Z",
            "webhook_secret_set": False,
        },
        ("id", "created_at", "updated_at", "webhook_secret_set"),
    ),
    "an unknown top-level field": ({}, {"nickname": "Bob"}, "nickname"),
    "an unknown nested field": ({}, {"llm_config": {"top_p": 0.9}}, "llm_config.top_p"),
    "a valid change beside an unknown field": ({}, {"name": "Renamed", "colour": "blue"}, "colour"),
}


@pytest.mark.parametrize("start, patch, fields", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_a_rejected_patch_names_the_field_and_changes_nothing(
    client, create_agent, start, patch, fields
):
    agent = create_agent(**start)
    before, etag = current(client, agent)
    let_the_clock_tick()

    response = client.patch(url_of(agent), json=patch)

    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["code"] == "validation_error"
    for field in (fields,) if isinstance(fields, str) else fields:
        assert field in body["fields"], body
        assert all(message.startswith(field + " ") for message in body["fields"][field])
    assert current(client, agent) == (before, etag)


def test_switching_away_from_elevenlabs_says_which_field_to_clear(client, create_agent):
    agent = create_agent(tts_config=ELEVENLABS)

    body = client.patch(url_of(agent), json={"tts_config": {"provider": "openai"}}).get_json()

    [message] = body["fields"]["tts_config.stability"]
    assert "elevenlabs" in message and "openai" in message and "null" in message


def test_switching_away_from_elevenlabs_succeeds_once_its_fields_are_cleared(client, create_agent):
    agent = create_agent(tts_config=ELEVENLABS)

    response = client.patch(
        url_of(agent),
        json={
            "tts_config": {
                "provider": "openai",
                "voice_id": "alloy",
                "stability": None,
                "model": None,
            }
        },
    )

    assert response.status_code == 200, response.get_json()
    tts_config = response.get_json()["agent"]["tts_config"]
    assert (tts_config["provider"], tts_config["voice_id"]) == ("openai", "alloy")
    assert tts_config["stability"] is None


def test_switching_to_xai_realtime_succeeds_when_the_speech_configs_are_removed(
    client, create_agent
):
    agent = create_agent()

    response = client.patch(
        url_of(agent),
        json={
            "llm_config": {"provider": "xai_realtime", "model": "grok-realtime"},
            "stt_config": None,
            "tts_config": None,
        },
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["agent"]["llm_config"]["provider"] == "xai_realtime"


# --- updated_at and the ETag -------------------------------------------------------------------

NO_OP_PATCHES = {
    "an empty patch": {},
    "the stored name again": {"name": VALID_AGENT["name"]},
    "a nested value it already has": {"llm_config": {"temperature": 0.7}},
    "null on a field that is already null": {"voicemail_message": None},
    "a default sent explicitly": {"max_duration_seconds": 600, "is_active": True},
    "an array it already has": {"stt_config": {"keyterms": ["ja", "nee", "oké"]}},
    "removing a secret that is not set": {"webhook_secret": None},
}


def test_a_patch_that_changes_nothing_answers_200_and_keeps_updated_at_and_the_etag(
    client, create_agent
):
    agent = create_agent()
    before, etag = current(client, agent)
    observed = {}

    for case, patch in NO_OP_PATCHES.items():
        let_the_clock_tick()
        response = client.patch(url_of(agent), json=patch)
        unchanged = response.get_json()["agent"] == before
        observed[case] = (response.status_code, unchanged, response.headers["ETag"])

    assert observed == {case: (200, True, etag) for case in NO_OP_PATCHES}
    assert current(client, agent) == (before, etag)


def test_a_real_change_moves_updated_at_and_the_etag_but_not_created_at(client, create_agent):
    agent = create_agent()
    before, etag = current(client, agent)
    let_the_clock_tick()

    response = client.patch(url_of(agent), json={"name": "Renamed"})

    after = response.get_json()["agent"]
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]
    assert response.headers["ETag"] != etag
    assert current(client, agent) == (after, response.headers["ETag"])


# --- the write-only webhook secret -------------------------------------------------------------


def assert_secret_hidden(response, *secrets):
    text = response.get_data(as_text=True)
    for secret in secrets:
        assert secret not in text


def test_patch_stores_a_webhook_secret_and_reports_only_that_one_is_set(client, create_agent):
    agent = create_agent()

    response = client.patch(url_of(agent), json={"webhook_secret": SECRET})

    assert response.status_code == 200
    assert response.get_json()["agent"]["webhook_secret_set"] is True
    assert "webhook_secret" not in response.get_json()["agent"]
    assert current(client, agent)[0]["webhook_secret_set"] is True
    assert_secret_hidden(response, SECRET)


def test_the_webhook_secret_appears_in_no_response_body(client):
    responses = []
    created = client.post("/agents", json={**VALID_AGENT, "webhook_secret": SECRET})
    agent = created.get_json()["agent"]
    responses += [
        created,
        client.get(url_of(agent)),
        client.get("/agents"),
        client.get("/agents?limit=1"),
        client.get(f"/agents?q={VALID_AGENT['name'][:8]}"),
        client.patch(url_of(agent), json={"name": "Renamed"}),
        client.patch(url_of(agent), json={"webhook_secret": OTHER_SECRET}),
        client.get(url_of(agent)),
        client.patch(url_of(agent), json={"webhook_secret": SECRET, "name": "Renamed again"}),
        client.delete(url_of(agent)),
    ]

    assert agent["webhook_secret_set"] is True
    for response in responses:
        assert response.status_code in (200, 201)
        assert_secret_hidden(response, SECRET, OTHER_SECRET)
        body = response.get_json()
        for shown in body.get("agents", [body.get("agent", {})]):
            assert "webhook_secret" not in shown


INVALID_SECRETS = {
    "too short": "hush-7!",
    "too long": "Sup3rLongSecret-" * 17,
}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("secret", INVALID_SECRETS.values(), ids=INVALID_SECRETS.keys())
def test_an_invalid_webhook_secret_is_rejected_without_being_echoed(
    client, create_agent, method, secret
):
    agent = create_agent()
    url = "/agents" if method == "POST" else url_of(agent)

    response = client.open(url, method=method, json={**VALID_AGENT, "webhook_secret": secret})

    assert response.status_code == 400
    assert "webhook_secret" in response.get_json()["fields"]
    assert_secret_hidden(response, secret)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_valid_webhook_secret_is_not_echoed_when_another_field_is_rejected(
    client, create_agent, method
):
    agent = create_agent()
    url = "/agents" if method == "POST" else url_of(agent)

    response = client.open(
        url, method=method, json={**VALID_AGENT, "name": "", "webhook_secret": SECRET}
    )

    assert response.status_code == 400
    assert_secret_hidden(response, SECRET)


def test_patch_with_a_null_webhook_secret_removes_it(client, create_agent):
    agent = create_agent(webhook_secret=SECRET)
    let_the_clock_tick()

    response = client.patch(url_of(agent), json={"webhook_secret": None})

    assert response.status_code == 200
    after = response.get_json()["agent"]
    assert after["webhook_secret_set"] is False
    assert after["updated_at"] > agent["updated_at"]
    assert current(client, agent)[0]["webhook_secret_set"] is False


def test_a_patch_sending_the_stored_secret_answers_exactly_as_a_wrong_guess_would(double):
    """Were a correct guess answered differently (say, without a new ETag), the answer would
    confirm the guess: every PATCH that sends a secret is a write."""
    double.put("/_test/clock", json={"now": "2025-12-13T10:00:00.000Z"})
    guessed = double.post("/agents", json={**VALID_AGENT, "webhook_secret": SECRET})
    other = double.post("/agents", json={**VALID_AGENT, "webhook_secret": SECRET})
    double.put("/_test/clock", json={"now": "2025-12-13T10:00:01.000Z"})
    answers = {}

    for name, created, sent in (("right", guessed, SECRET), ("wrong", other, OTHER_SECRET)):
        agent = created.get_json()["agent"]
        response = double.patch(url_of(agent), json={"name": agent["name"], "webhook_secret": sent})
        shown = {key: value for key, value in response.get_json()["agent"].items() if key != "id"}
        etag_moved = response.headers["ETag"] != created.headers["ETag"]
        answers[name] = (response.status_code, shown, etag_moved)

    assert answers["right"] == answers["wrong"]
    assert answers["right"][1]["updated_at"] == "2025-12-13T10:00:01.000Z"
    assert answers["right"][2] is True


def test_replacing_the_webhook_secret_counts_as_a_change(client, create_agent):
    agent = create_agent(webhook_secret=SECRET)
    before, etag = current(client, agent)
    let_the_clock_tick()

    response = client.patch(url_of(agent), json={"webhook_secret": OTHER_SECRET})

    assert response.get_json()["agent"]["updated_at"] > before["updated_at"]
    assert response.headers["ETag"] != etag
