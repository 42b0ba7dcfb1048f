"""The plain reads answered before Flask (routes/fast_reads.py) answer exactly as Flask does.

Each request goes to two apps on one database file: one with the fast reads, one without. Their
status lines, headers (in order) and bodies must be the same bytes; a hook on each app records
whether Flask saw the request, so each case also shows which path answered it.
"""

import pytest

from tests.fast_paths import Pair

KEY = "sk_test_fast_reads_0123456789"
PREFIX = "/api/v1"


@pytest.fixture
def pair(make_app):
    return lambda **settings: Pair.of(make_app, **settings)


def test_one_agent_is_answered_before_flask_byte_for_byte(pair):
    both = pair()
    agent = both.create(first_message="Grüß Gott, ich bin Ökö 🎧")

    response, answered_fast = both.same_answer(f"/agents/{agent['id']}")

    assert answered_fast
    assert response.status_code == 200
    assert response.get_json()["agent"] == agent
    assert response.headers["X-Request-ID"] == "same-request"


def test_the_assistants_family_is_answered_in_its_own_envelope(pair):
    both = pair()
    agent = both.create()

    response, answered_fast = both.same_answer(f"/assistants/{agent['id']}")

    assert answered_fast
    assert response.get_json() == {"assistant": agent}


@pytest.mark.parametrize(
    "if_none_match, status",
    [
        ("{etag}", 304),
        ("W/{etag}", 304),
        ('"other", {etag}', 304),
        ("*", 304),
        ('"other"', 200),
    ],
)
def test_if_none_match_is_answered_before_flask_as_flask_does(pair, if_none_match, status):
    both = pair()
    agent = both.create()
    etag = both.flask_only.get(f"/agents/{agent['id']}").headers["ETag"]

    response, answered_fast = both.same_answer(
        f"/agents/{agent['id']}", {"If-None-Match": if_none_match.format(etag=etag)}
    )

    assert answered_fast
    assert response.status_code == status


@pytest.mark.parametrize(
    "path, headers, status",
    [
        ("/agents/00000000-0000-4000-8000-000000000000", {}, 404),
        ("/agents/not-an-id", {}, 404),
        ("/agents/{upper}", {}, 200),
        ("/agents/{id}/", {}, 200),
        ("/agents/{id}", {"If-None-Match": "no quotes"}, 400),
        ("/agents?limit=0", {}, 400),
        ("/agents?limit=2&limit=3", {}, 400),
        ("/agents?lmit=2", {}, 400),
        ("/agents?cursor=forged", {}, 400),
        ("/agents/", {}, 200),
    ],
)
def test_what_the_fast_path_does_not_take_flask_answers_unchanged(pair, path, headers, status):
    both = pair()
    agent = both.create()
    path = path.format(id=agent["id"], upper=agent["id"].upper())

    response, answered_fast = both.same_answer(path, headers)

    assert not answered_fast
    assert response.status_code == status


@pytest.mark.parametrize(
    "query",
    ["", "?limit=2", "?limit=002", "?is_active=false", "?q=%C3%B6k%C3%B6", "?q=acme&limit=1"],
)
def test_list_pages_are_answered_before_flask_byte_for_byte(pair, query):
    both = pair()
    for index in range(4):
        both.create(name=f"Acme Ökö {index}", is_active=index % 2 == 0)

    response, answered_fast = both.same_answer(f"/agents{query}")

    assert answered_fast
    assert response.status_code == 200
    assert response.get_json()["agents"]


def test_a_page_after_a_cursor_and_its_link_are_the_same_from_both(pair):
    both = pair()
    for index in range(5):
        both.create(name=f"Agent {index}")
    first, _ = both.same_answer("/assistants?limit=2&q=agent")
    assert "Link" in first.headers

    following, answered_fast = both.same_answer(
        f"/assistants?limit=2&q=agent&cursor={first.get_json()['next_cursor']}"
    )

    assert answered_fast
    assert len(following.get_json()["assistants"]) == 2
    assert following.headers["Link"].startswith("</assistants?limit=2&q=agent&cursor=")


@pytest.mark.parametrize(
    "authorization, fast",
    [(f"Bearer {KEY}", True), (f"bearer   {KEY} ", True), ("Bearer wrong", False), ("", False)],
)
def test_with_api_keys_only_a_known_key_is_answered_before_flask(pair, authorization, fast):
    both = pair(API_KEYS=KEY)
    agent = both.create({"Authorization": f"Bearer {KEY}"})
    headers = {"Authorization": authorization} if authorization else {}

    for path in (f"/agents/{agent['id']}", "/agents?limit=1"):
        response, answered_fast = both.same_answer(path, headers)
        assert answered_fast is fast
        assert response.status_code == (200 if fast else 401)


def test_under_a_url_prefix_only_the_prefixed_paths_are_answered_before_flask(pair):
    both = pair(URL_PREFIX=PREFIX)
    agent = both.create(path=f"{PREFIX}/agents")

    prefixed, answered_fast = both.same_answer(f"{PREFIX}/agents/{agent['id']}")
    assert answered_fast and prefixed.status_code == 200
    bare, answered_fast = both.same_answer(f"/agents/{agent['id']}")
    assert not answered_fast and bare.status_code == 404


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "100/minute"}, {"TEST_MODE": True}])
def test_rate_limits_and_test_mode_leave_every_read_to_flask(pair, settings):
    both = pair(**settings)
    agent = both.create()

    response = both.fast.get(f"/agents/{agent['id']}")

    assert response.status_code == 200
    assert both.seen
