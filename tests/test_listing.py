"""Contract section 6: listing every agent or one page of them, filtered, newest first."""

import base64
import logging
import re
import sqlite3
import time
from contextlib import closing, contextmanager

import pytest


@pytest.fixture
def add_agents(client):
    """Create `count` small agents named `<prefix> <n>`; returns them in creation order."""

    def add(count, prefix="Agent", **fields):
        created = [
            client.post("/agents", json={"name": f"{prefix} {number}", **fields})
            for number in range(count)
        ]
        assert all(response.status_code == 201 for response in created)
        return [response.get_json()["agent"] for response in created]

    return add


def ids(agents):
    return [agent["id"] for agent in agents]


def newest_first(agents):
    return sorted(agents, key=lambda agent: (agent["created_at"], agent["id"]), reverse=True)


def list_agents(client, **params):
    response = client.get("/agents", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def all_pages(client, **params):
    """Follow next_cursor from the first page to the last; returns the pages' bodies."""
    pages = [list_agents(client, **params)]
    while pages[-1]["has_more"]:
        pages.append(list_agents(client, **params, cursor=pages[-1]["next_cursor"]))
    return pages


# --- the whole list ----------------------------------------------------------------------------


def test_without_a_limit_every_agent_comes_back_on_one_page(client, add_agents):
    created = add_agents(30)

    response = client.get("/agents")

    body = response.get_json()
    assert sorted(ids(body["agents"])) == sorted(ids(created))
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    assert "Link" not in response.headers


def test_agents_are_listed_newest_first(client, create_agent):
    created = []
    for number in range(5):
        created.append(create_agent(name=f"Agent {number}"))
        time.sleep(0.003)  # distinct millisecond timestamps

    listed = list_agents(client)["agents"]

    assert ids(listed) == ids(reversed(created))


def test_agents_created_in_the_same_millisecond_are_ordered_by_id_descending(client, add_agents):
    add_agents(20)

    listed = list_agents(client)["agents"]

    assert ids(listed) == ids(newest_first(listed))


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 5, 12, 1000])
def test_limit_pages_through_every_agent_exactly_once_in_order(client, add_agents, limit):
    created = add_agents(12)

    pages = all_pages(client, limit=limit)

    listed = [agent for page in pages for agent in page["agents"]]
    assert ids(listed) == ids(newest_first(created))
    assert all(len(page["agents"]) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]["agents"]) <= limit
    assert all(page["has_more"] and page["next_cursor"] for page in pages[:-1])
    assert (pages[-1]["has_more"], pages[-1]["next_cursor"]) == (False, None)


def test_pages_neither_skip_nor_repeat_while_agents_are_created_and_deleted(client, add_agents):
    initial = add_agents(15)
    deleted, deleted_before_listed = set(), set()
    seen = []
    page = list_agents(client, limit=4)
    while True:
        seen += ids(page["agents"])
        if not page["has_more"]:
            break
        # Between pages: delete the agent the cursor points at, and one not yet listed,
        # and create new ones.
        unseen = [
            agent_id for agent_id in ids(newest_first(initial)) if agent_id not in {*seen, *deleted}
        ]
        for agent_id in [seen[-1], *unseen[-1:]]:
            assert client.delete(f"/agents/{agent_id}").status_code == 200
            deleted.add(agent_id)
        deleted_before_listed.update(unseen[-1:])
        add_agents(2, prefix="Newcomer")
        page = list_agents(client, limit=4, cursor=page["next_cursor"])

    assert len(seen) == len(set(seen)), "an agent was listed twice"
    survivors = [agent_id for agent_id in ids(newest_first(initial)) if agent_id not in deleted]
    assert [agent_id for agent_id in seen if agent_id in survivors] == survivors
    assert not set(seen) & deleted_before_listed, "an agent deleted before its page was listed"


def test_a_page_with_more_links_to_the_next_page(client, add_agents):
    add_agents(3)

    first = client.get("/agents?limit=2")

    match = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"])
    assert match, first.headers["Link"]
    following = client.get(match.group(1))
    assert following.get_json() == list_agents(
        client, limit=2, cursor=first.get_json()["next_cursor"]
    )
    assert "Link" not in following.headers


def test_the_next_link_keeps_the_filters(client, add_agents):
    add_agents(3, is_active=False)
    add_agents(2, is_active=True)

    first = client.get("/agents?limit=1&is_active=false&q=agent")

    next_url = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"]).group(1)
    assert "is_active=false" in next_url and "q=agent" in next_url
    assert all(agent["is_active"] is False for agent in client.get(next_url).get_json()["agents"])


# --- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("is_active", [True, False])
def test_is_active_lists_only_agents_in_that_state(client, add_agents, is_active):
    active = add_agents(3, prefix="On", is_active=True)
    inactive = add_agents(2, prefix="Off", is_active=False)
    wanted = active if is_active else inactive

    listed = list_agents(client, is_active=str(is_active).lower())["agents"]

    assert ids(listed) == ids(newest_first(wanted))


def test_filters_keep_applying_across_pages(client, add_agents):
    add_agents(4, prefix="On", is_active=True)
    inactive = add_agents(3, prefix="Off", is_active=False)

    pages = all_pages(client, limit=1, is_active="false")

    assert len(pages) == 3
    assert [agent["id"] for page in pages for agent in page["agents"]] == ids(
        newest_first(inactive)
    )


SEARCHABLE = {
    "support": ("Customer Support", "Acme Corp"),
    "okoe": ("Verkoop", "Ökö Energie GmbH"),
    "percent": ("50% Rabatt Bot", None),
    "underscore": ("snake_case bot", None),
    "plain": ("Receptionist", "Tandarts Jansen"),
}

# (q, the agents of SEARCHABLE it finds)
SEARCHES = {
    "a substring of a name": ("Support", {"support"}),
    "a name in another case": ("cUSTOMER sUP", {"support"}),
    "a substring of a business name": ("acme", {"support"}),
    "a non-ascii business name": ("Ökö", {"okoe"}),
    "a non-ascii business name in upper case": ("ÖKÖ", {"okoe"}),
    "a non-ascii business name in lower case": ("ökö energie", {"okoe"}),
    "a percent sign taken literally": ("%", {"percent"}),
    "an underscore taken literally": ("_", {"underscore"}),
    "a substring in several agents": ("bot", {"percent", "underscore"}),
    "nothing that matches": ("zzz", set()),
}


def test_q_finds_a_case_insensitive_substring_of_name_or_business_name(client, create_agent):
    agents = {
        key: create_agent(name=name, business_name=business)
        for key, (name, business) in SEARCHABLE.items()
    }

    for case, (q, found) in SEARCHES.items():
        listed = list_agents(client, q=q)["agents"]

        assert ids(listed) == ids(newest_first([agents[key] for key in found])), case


def test_q_follows_a_renamed_agent(client, create_agent):
    agent = create_agent(name="Old name", business_name=None)
    client.patch(f"/agents/{agent['id']}", json={"name": "Fresh name", "business_name": "Ökö"})

    assert ids(list_agents(client, q="fresh")["agents"]) == [agent["id"]]
    assert ids(list_agents(client, q="ökö")["agents"]) == [agent["id"]]
    assert list_agents(client, q="old")["agents"] == []


# --- bad parameters ----------------------------------------------------------------------------


def _cursor_of(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_PARAMETERS = {
    "limit 0": ("limit=0", "limit"),
    "limit 1001": ("limit=1001", "limit"),
    "limit negative": ("limit=-1", "limit"),
    "limit not a number": ("limit=abc", "limit"),
    "limit a fraction": ("limit=1.5", "limit"),
    "limit in Arabic-Indic digits": ("limit=%D9%A3", "limit"),
    "limit in fullwidth digits": ("limit=%EF%BC%91", "limit"),
    "limit with an underscore": ("limit=1_000", "limit"),
    "limit padded with spaces": ("limit=%201%20", "limit"),
    "limit with a plus sign": ("limit=%2B5", "limit"),
    "limit given twice": ("limit=5&limit=6", "limit"),
    "q given twice": ("q=a&q=b", "q"),
    "is_active yes": ("is_active=yes", "is_active"),
    "is_active 1": ("is_active=1", "is_active"),
    "is_active capitalised": ("is_active=True", "is_active"),
    "a garbage cursor": ("cursor=garbage", "cursor"),
    "a cursor of another shape": (
        "cursor=" + _cursor_of("2025-12-13T10:00:00.000Z|not-an-id"),
        "cursor",
    ),
    "an unknown parameter": ("colour=red", "colour"),
    "a misspelt parameter": ("limt=5", "limt"),
}


def test_a_bad_parameter_is_a_validation_error_naming_it(client):
    observed, expected = {}, {}

    for case, (query, parameter) in BAD_PARAMETERS.items():
        response = client.get(f"/agents?{query}")
        body = response.get_json()
        named_first = body.get("error", "").startswith(f"{parameter} ")
        observed[case] = (
            response.status_code,
            body.get("code"),
            list(body.get("fields", {})),
            named_first,
        )
        expected[case] = (400, "validation_error", [parameter], True)

    assert observed == expected


def test_a_parameter_given_twice_is_refused_even_with_the_same_value(client):
    response = client.get("/agents?is_active=true&is_active=true")
    assert response.status_code == 400
    assert response.get_json()["error"] == "is_active must be given once, not 2 times."


def test_a_limit_of_ascii_digits_with_leading_zeros_is_a_number(client, add_agents):
    add_agents(3)
    assert len(list_agents(client, limit="002")["agents"]) == 2


# --- cost of a page ----------------------------------------------------------------------------


@pytest.fixture
def issued_sql(caplog):
    """A context that collects the SELECTs on the agent table the service runs, as (sql, params)."""

    @contextmanager
    def capture():
        selects = []
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            yield selects
        selects += [
            record.msg
            for record in caplog.records
            if record.name == "peewee"
            and isinstance(record.msg, tuple)
            and re.match(r'\s*SELECT\b.*\bFROM "agent"', record.msg[0])
        ]
        caplog.clear()

    return capture


def query_plan(database_path, sql, params):
    with closing(sqlite3.connect(database_path)) as connection:
        return " | ".join(
            row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        )


def virtual_machine_steps(database_path, sql, params):
    """How many SQLite VM instructions the statement takes: its cost, independent of the clock."""
    steps = 0

    def count():
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(database_path)) as connection:
        connection.set_progress_handler(count, 1)
        connection.execute(sql, params).fetchall()
    return steps


PAGE_QUERIES = {
    "the first page": {"limit": 2},
    "a later page": {"limit": 2, "cursor": True},
    "the first page of active agents": {"limit": 2, "is_active": "true"},
    "a later page of inactive agents": {"limit": 2, "is_active": "false", "cursor": True},
}


@pytest.mark.parametrize("params", PAGE_QUERIES.values(), ids=PAGE_QUERIES.keys())
def test_a_page_is_read_through_an_index_in_list_order(
    client, add_agents, database_path, issued_sql, params
):
    add_agents(3, is_active=True)
    add_agents(3, is_active=False)
    params = dict(params)
    if params.pop("cursor", None):
        params["cursor"] = list_agents(client, **params)["next_cursor"]

    with issued_sql() as selects:
        list_agents(client, **params)

    [(sql, values)] = selects
    plan = query_plan(database_path, sql, values)
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_a_later_page_seeks_to_its_cursor_in_the_index(
    client, add_agents, database_path, issued_sql
):
    add_agents(6)
    cursor = list_agents(client, limit=2)["next_cursor"]

    with issued_sql() as selects:
        list_agents(client, limit=2, cursor=cursor)

    [(sql, values)] = selects
    plan = query_plan(database_path, sql, values)
    assert re.search(r"USING (COVERING )?INDEX \S+ \([^)]*created_at\S*<", plan), plan


def test_a_deep_page_costs_no_more_than_the_first_page(
    client, add_agents, database_path, issued_sql
):
    add_agents(40)
    deep_cursor = list_agents(client, limit=35)["next_cursor"]

    with issued_sql() as selects:
        list_agents(client, limit=5)
        list_agents(client, limit=5, cursor=deep_cursor)

    first, deep = selects
    first_cost = virtual_machine_steps(database_path, *first)
    deep_cost = virtual_machine_steps(database_path, *deep)
    assert deep_cost <= 2 * first_cost, (first_cost, deep_cost)
