"""Contract section 7: ETags and conditional requests, and idempotent creates."""

import sqlite3
from contextlib import closing

import pytest

from tests.conftest import VALID_AGENT, current, url_of

DAY = 24 * 60 * 60


def stored_ids(client):
    return sorted(agent["id"] for agent in client.get("/agents").get_json()["agents"])


@pytest.fixture
def agent_and_stale_etag(client, create_agent):
    """An agent, and the ETag it had before its latest change."""
    agent = create_agent()
    _, stale = current(client, agent)
    assert client.patch(url_of(agent), json={"first_message": "Changed since."}).status_code == 200
    return agent, stale


# --- ETags -------------------------------------------------------------------------------------


def test_every_single_agent_response_carries_the_etag_of_what_it_shows(client):
    created = client.post("/agents", json=VALID_AGENT)
    agent = created.get_json()["agent"]
    fetched = client.get(url_of(agent))
    patched = client.patch(url_of(agent), json={"name": "Renamed"})
    refetched = client.get(url_of(agent))

    for response in (created, fetched, patched, refetched):
        assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert created.headers["ETag"] == fetched.headers["ETag"]
    assert patched.headers["ETag"] == refetched.headers["ETag"] != fetched.headers["ETag"]


# --- If-None-Match -----------------------------------------------------------------------------

# (how the If-None-Match header is built from the current and a stale ETag, the status)
IF_NONE_MATCH = {
    "the current etag": (lambda etag, stale: etag, 304),
    "the current etag marked weak": (lambda etag, stale: f"W/{etag}", 304),
    "a list holding the current etag": (lambda etag, stale: f'"other", {etag}', 304),
    "a star": (lambda etag, stale: "*", 304),
    "a stale etag": (lambda etag, stale: stale, 200),
    "an etag the agent never had": (lambda etag, stale: '"never-issued"', 200),
}


def test_a_get_with_if_none_match_is_304_only_while_the_etag_still_holds(
    client, agent_and_stale_etag
):
    agent, stale = agent_and_stale_etag
    shown, etag = current(client, agent)
    observed = {}

    for case, (header, _) in IF_NONE_MATCH.items():
        response = client.get(url_of(agent), headers={"If-None-Match": header(etag, stale)})
        body = response.get_data() if response.status_code == 304 else response.get_json()
        observed[case] = (response.status_code, response.headers.get("ETag"), body)

    assert observed == {
        case: (status, etag, b"" if status == 304 else {"agent": shown})
        for case, (_, status) in IF_NONE_MATCH.items()
    }


# --- If-Match ----------------------------------------------------------------------------------

CONDITIONAL_WRITES = {
    "PATCH": {"json": {"name": "Overwritten"}},
    "DELETE": {},
}


@pytest.mark.parametrize("method", CONDITIONAL_WRITES)
def test_a_write_with_a_stale_if_match_is_precondition_failed_and_changes_nothing(
    client, agent_and_stale_etag, method
):
    agent, stale = agent_and_stale_etag
    before = current(client, agent)

    response = client.open(
        url_of(agent), method=method, headers={"If-Match": stale}, **CONDITIONAL_WRITES[method]
    )

    assert response.status_code == 412
    assert response.get_json()["code"] == "precondition_failed"
    assert current(client, agent) == before


IF_MATCH_HOLDS = {
    "the current etag": lambda etag: etag,
    "a list holding the current etag": lambda etag: f'"other", {etag}',
    "a star": lambda etag: "*",
}


@pytest.mark.parametrize("if_match", IF_MATCH_HOLDS.values(), ids=IF_MATCH_HOLDS.keys())
@pytest.mark.parametrize("method", CONDITIONAL_WRITES)
def test_a_write_whose_if_match_holds_succeeds(client, create_agent, method, if_match):
    agent = create_agent()
    _, etag = current(client, agent)

    response = client.open(
        url_of(agent),
        method=method,
        headers={"If-Match": if_match(etag)},
        **CONDITIONAL_WRITES[method],
    )

    assert response.status_code == 200, response.get_json()
    if method == "PATCH":
        assert current(client, agent)[0]["name"] == "Overwritten"
    else:
        assert client.get(url_of(agent)).status_code == 404


def test_two_editors_never_silently_overwrite_each_other(client, create_agent):
    agent = create_agent()
    _, etag_seen_by_both = current(client, agent)

    condition = {"If-Match": etag_seen_by_both}

    first = client.patch(url_of(agent), json={"first_message": "Editor one."}, headers=condition)
    second = client.patch(url_of(agent), json={"first_message": "Editor two."}, headers=condition)

    assert first.status_code == 200, first.get_json()
    assert second.status_code == 412
    assert current(client, agent)[0]["first_message"] == "Editor one."


def test_an_if_match_on_an_agent_that_does_not_exist_is_not_found(client, create_agent):
    agent = create_agent()
    client.delete(url_of(agent))

    response = client.patch(url_of(agent), json={"name": "x"}, headers={"If-Match": "*"})

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


# --- Preconditions that cannot be parsed -------------------------------------------------------

# Werkzeug reads each of these as some list of ETags, or as none: a stale client would then
# overwrite a newer agent without being told.
MALFORMED_ETAG_LISTS = [
    '"5f1e0c',
    '"',
    ",",
    ", ,",
    'W/"',
    '""x',
    "5f1e0c",
    'W/ "5f1e0c"',
    '"a" "b"',
    '"a",, W/',
    '*, "a"',
    '"a\tb"',
    "",
]
PRECONDITIONS = {
    "PATCH": ("If-Match", {"json": {"name": "Overwritten"}}),
    "DELETE": ("If-Match", {}),
    "GET": ("If-None-Match", {}),
}
MALFORMED_MESSAGE = (
    " must be * or a comma-separated list of entity tags in double quotes, such as "
    '"5f1e0c" or W/"5f1e0c".'
)


@pytest.mark.parametrize("value", MALFORMED_ETAG_LISTS)
@pytest.mark.parametrize("method", PRECONDITIONS)
def test_a_precondition_that_cannot_be_parsed_is_refused_naming_the_header(
    client, agent_and_stale_etag, method, value
):
    agent, _ = agent_and_stale_etag
    before = current(client, agent)
    header, request = PRECONDITIONS[method]

    response = client.open(url_of(agent), method=method, headers={header: value}, **request)

    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert body["fields"] == {header: [header + MALFORMED_MESSAGE]}
    assert current(client, agent) == before


WELL_FORMED_STALE_LISTS = ["W/{stale}", '"x", , {stale}', ",{stale}", '""', '"a" ,\t"b"']


@pytest.mark.parametrize("template", WELL_FORMED_STALE_LISTS)
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_well_formed_list_without_the_current_etag_is_precondition_failed(
    client, agent_and_stale_etag, method, template
):
    agent, stale = agent_and_stale_etag
    before = current(client, agent)
    value = template.replace("{stale}", stale)
    _, request = PRECONDITIONS[method]

    response = client.open(url_of(agent), method=method, headers={"If-Match": value}, **request)

    assert response.status_code == 412
    assert current(client, agent) == before


def test_a_well_formed_list_with_empty_elements_still_finds_the_current_etag(
    client, agent_and_stale_etag
):
    agent, stale = agent_and_stale_etag
    shown, etag = current(client, agent)
    response = client.get(url_of(agent), headers={"If-None-Match": f" , {stale},, {etag} ,"})
    assert response.status_code == 304


# --- Idempotency-Key ---------------------------------------------------------------------------


def post(client, body=VALID_AGENT, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/agents", json=body, headers=headers)


def test_a_retry_with_the_same_key_and_body_returns_the_first_response_and_creates_nothing(client):
    first = post(client, key="create-support-agent-1")
    retry = post(client, key="create-support-agent-1")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.get_json() == first.get_json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert stored_ids(client) == [first.get_json()["agent"]["id"]]


def test_a_retry_is_answered_the_same_whatever_webhook_secret_it_sends(client):
    """The first request's secret is stored: a reply that told a retry carrying it from one
    carrying another would confirm a guess of it to anyone holding the key."""
    body = {**VALID_AGENT, "webhook_secret": "whsec-Correct-Horse-Battery-9731"}
    first = post(client, body, key="create-with-a-secret")
    right = post(client, body, key="create-with-a-secret")
    wrong = post(
        client, {**body, "webhook_secret": "whsec-Wrong-Guess-0000"}, key="create-with-a-secret"
    )

    answers = [(r.status_code, r.get_json(), r.headers["ETag"]) for r in (first, right, wrong)]
    assert answers[0] == answers[1] == answers[2]
    assert right.headers["Idempotent-Replayed"] == wrong.headers["Idempotent-Replayed"] == "true"
    assert len(stored_ids(client)) == 1
    without = post(client, VALID_AGENT, key="create-with-a-secret")
    assert without.status_code == 409  # whether a secret is sent is no secret


def test_the_same_body_with_its_members_in_another_order_is_the_same_request(client):
    first = post(client, key="reordered")
    retry = post(client, body=dict(reversed(list(VALID_AGENT.items()))), key="reordered")

    assert retry.status_code == 201
    assert retry.get_json()["agent"]["id"] == first.get_json()["agent"]["id"]
    assert len(stored_ids(client)) == 1


def test_a_retry_replays_the_first_response_even_after_the_agent_changed(client):
    first = post(client, key="then-renamed")
    client.patch(first.headers["Location"], json={"name": "Renamed"})

    retry = post(client, key="then-renamed")

    assert retry.status_code == 201
    assert retry.get_json() == first.get_json()


def test_the_same_key_with_a_different_body_is_an_idempotency_conflict(client):
    first = post(client, key="one-key")

    response = post(client, body={**VALID_AGENT, "name": "Another agent"}, key="one-key")

    assert response.status_code == 409
    assert response.get_json()["code"] == "idempotency_conflict"
    assert stored_ids(client) == [first.get_json()["agent"]["id"]]


def test_different_keys_create_different_agents(client):
    first = post(client, key="key-one")
    second = post(client, key="key-two")

    assert first.get_json()["agent"]["id"] != second.get_json()["agent"]["id"]
    assert len(stored_ids(client)) == 2


def test_creates_without_a_key_are_never_deduplicated(client):
    post(client)
    post(client)

    assert len(stored_ids(client)) == 2


def test_a_key_of_255_printable_characters_is_accepted(client):
    assert post(client, key="k" * 255).status_code == 201


INVALID_KEYS = {
    "300 characters": "k" * 300,
    "256 characters": "k" * 256,
    "empty": "",
    "with a space": "two words",
    "with a non-ascii character": "caf\u00e9",
}


def test_an_invalid_idempotency_key_is_a_validation_error_and_creates_nothing(client):
    observed = {}

    for case, key in INVALID_KEYS.items():
        response = post(client, key=key)
        body = response.get_json()
        observed[case] = (response.status_code, body["code"], list(body.get("fields", {})))

    assert observed == {
        case: (400, "validation_error", ["Idempotency-Key"]) for case in INVALID_KEYS
    }
    assert stored_ids(client) == []


def age_idempotency_records(database_path, seconds):
    with closing(sqlite3.connect(database_path)) as connection, connection:
        connection.execute("UPDATE idempotency_record SET created = created - ?", (seconds,))


@pytest.mark.parametrize(
    "age, replays",
    [(DAY - 60, True), (DAY + 60, False)],
    ids=["just under 24 hours", "just over 24 hours"],
)
def test_a_key_replays_for_24_hours_and_no_longer(client, database_path, age, replays):
    first = post(client, key="daily-create")
    age_idempotency_records(database_path, age)

    retry = post(client, key="daily-create")

    assert retry.status_code == 201
    same_agent = retry.get_json()["agent"]["id"] == first.get_json()["agent"]["id"]
    assert same_agent is replays
    assert len(stored_ids(client)) == (1 if replays else 2)


def test_an_expired_key_may_be_used_with_a_new_body(client, database_path):
    post(client, key="reused-next-day")
    age_idempotency_records(database_path, DAY + 60)

    response = post(client, body={**VALID_AGENT, "name": "Tomorrow's agent"}, key="reused-next-day")

    assert response.status_code == 201
    assert response.get_json()["agent"]["name"] == "Tomorrow's agent"


def test_idempotency_records_survive_a_restart_on_the_same_database_file(make_app):
    before_restart = post(make_app().test_client(), key="across-restart")

    after_restart = make_app().test_client()
    retry = post(after_restart, key="across-restart")
    conflict = post(after_restart, body={**VALID_AGENT, "name": "Different"}, key="across-restart")

    assert retry.status_code == 201
    assert retry.get_json() == before_restart.get_json()
    assert conflict.status_code == 409
    assert len(stored_ids(after_restart)) == 1
