"""Contract section 6, `q`: the trigram index answers exactly what a scan of every agent does."""

import itertools
import logging
import random
import re
import sqlite3
from contextlib import closing

import pytest

import listing
import models
from app import create_app

# Names that put case folding, LIKE's wildcards and escape, quotes and non-ASCII text to work.
NAMES = (
    ("Straße Support", "Großhandel GmbH"),
    ("STRASSE Sales", None),
    ("100% Uptime_Desk", "back\\slash & co"),
    ('The "quoted" line', "O'Brien Ltd"),
    ("İstanbul Ofis", "Ünal ﬁnance"),
    ("ΣΊΣΥΦΟΣ helpdesk", "ẞ Capital"),
    ("Agent 7", "a_b%c\\d"),
    ("aaa", "aa"),
    ("Café Résumé", "emoji 🎧 line"),
    ("x", None),
)
QUERIES = (
    "a",
    "aa",
    "aaa",
    "aaaa",
    "ss",
    "ß",
    "sse",
    "straße",
    "STRASSE",
    "%",
    "%u",
    "100%",
    "_",
    "_d",
    "e_d",
    "\\",
    "\\s",
    "k\\sl",
    "a_b%c\\d",
    '"',
    '"quoted"',
    "'",
    "o'b",
    "i̇st",
    "İstanbul",
    "ﬁ",
    "fin",
    "σίσυφος",
    "ΣΊΣΥΦΟΣ",
    "ss capital",
    "é",
    "ésumé",
    "🎧",
    "🎧 l",
    "t\ng",
    "support\ngroß",
    "agent",
    "gent 7",
    "no such agent",
    "   ",
    "ent ",
    " ",
    "a%",
    "%%",
    "__",
)


@pytest.fixture(params=[listing.SCAN_FIRST, 5], ids=["newest first", "from the index"])
def scan_first(request, monkeypatch):
    """How many of the newest agents a search reads before it asks the index: as shipped, or
    so few that almost every search goes on to the index."""
    monkeypatch.setattr(listing, "SCAN_FIRST", request.param)
    return request.param


@pytest.fixture
def agents(client, scan_first):
    """Agents with every name of NAMES, active and not, and a crowd sharing the word "agent"."""
    rng = random.Random(7)
    created = []
    for number in range(160):
        crowd = (f"Agent {number}", None)
        name, business = NAMES[number % len(NAMES)] if number % 3 == 1 else crowd
        body = {"name": f"{name} {rng.randrange(100)}", "is_active": number % 4 != 0}
        if business is not None:
            body["business_name"] = business
        response = client.post("/agents", json=body)
        assert response.status_code == 201, response.get_json()
        created.append(response.get_json()["agent"])
    return created


def scanned(database_path, query, is_active=None):
    """The ids a plain scan of every agent matches, newest first: the search's definition."""
    escaped = query.casefold().replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    sql = """SELECT id FROM agent WHERE namespace = 'default' AND search_text LIKE ? ESCAPE '\\'"""
    params = [f"%{escaped}%"]
    if is_active is not None:
        sql += " AND is_active = ?"
        params.append(is_active)
    with closing(sqlite3.connect(database_path)) as connection:
        rows = connection.execute(f"{sql} ORDER BY created_at DESC, id DESC", params)
        return [row[0] for row in rows]


def searched(client, query, **params):
    """The ids the API answers for `q`, following every page."""
    found = []
    cursor = None
    while True:
        page_params = {"q": query, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/agents", query_string=page_params)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        found += [agent["id"] for agent in body["agents"]]
        if not body["has_more"]:
            return found
        cursor = body["next_cursor"]


def random_substrings(agents, count, seed):
    rng = random.Random(seed)
    texts = [f"{agent['name']}\n{agent.get('business_name') or ''}" for agent in agents]
    for _ in range(count):
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        yield text[start : start + rng.randint(1, 6)]


def test_a_search_finds_exactly_what_a_scan_of_every_agent_finds(client, agents, database_path):
    for query in QUERIES:
        expected = scanned(database_path, query)
        assert searched(client, query) == expected, query
        assert searched(client, query, limit=7) == expected, query
        assert searched(client, query, limit=3, is_active="false") == scanned(
            database_path, query, is_active=False
        ), query


def test_random_substrings_of_the_names_are_found_as_a_scan_finds_them(
    client, agents, database_path
):
    for query in random_substrings(agents, 150, seed=3):
        assert searched(client, query, limit=20) == scanned(database_path, query), query


def test_a_search_stays_exact_after_renames_deletes_and_a_vacuum(client, agents, database_path):
    for agent in agents[:40:3]:
        assert client.delete(f"/agents/{agent['id']}").status_code == 200
    for number, agent in enumerate(agents[41:100:4]):
        patch = {"name": f"Renamed zebra {number}", "business_name": None}
        assert client.patch(f"/agents/{agent['id']}", json=patch).status_code == 200
    # VACUUM may renumber the rows of a table without an INTEGER PRIMARY KEY.
    with closing(sqlite3.connect(database_path)) as connection:
        connection.execute("VACUUM")
    for query in ("zebra", "renamed", "straße", "agent", "gent 1", "100%", *QUERIES[:10]):
        assert searched(client, query, limit=9) == scanned(database_path, query), query
    assert len(searched(client, "zebra")) == 15


def index_holds(database_path, text):
    """The rowids the trigram index itself answers for `text`, and the agents still waiting."""
    with closing(sqlite3.connect(database_path)) as connection:
        found = connection.execute(
            "SELECT rowid FROM agent_search WHERE agent_search MATCH ?", (f'"{text}"',)
        )
        pending = connection.execute("SELECT sequence FROM agent_search_pending")
        return [row[0] for row in found], [row[0] for row in pending]


@pytest.mark.parametrize("batch", [1, 3, 1000])
@pytest.mark.parametrize("scan_first", [5], indirect=True)
def test_writes_are_found_before_and_after_the_index_takes_them(
    client, agents, database_path, monkeypatch, batch
):
    """Writes note their agents for the index (models.index_pending_searches), which takes them
    every `batch` writes: in between, searches find each agent by what it says now, never by an
    older name, including a new agent stored under the number of one just deleted."""
    monkeypatch.setattr(models, "SEARCH_INDEX_BATCH", batch)
    newest = agents[-1]
    assert client.delete(f"/agents/{newest['id']}").status_code == 200
    reborn = client.post("/agents", json={"name": "Zebra reborn"}).get_json()["agent"]
    for number, agent in enumerate(agents[1:60:6]):
        patch = {"name": f"Zebra {number}", "business_name": "Okapi"}
        assert client.patch(f"/agents/{agent['id']}", json=patch).status_code == 200
    for agent in agents[2:60:12]:
        assert client.delete(f"/agents/{agent['id']}").status_code == 200
    for query in ("zebra", "okapi", "reborn", newest["name"], agents[1]["name"], *QUERIES[:12]):
        assert searched(client, query, limit=4) == scanned(database_path, query), query
    assert searched(client, "zebra reborn") == [reborn["id"]]


@pytest.mark.parametrize("scan_first", [1], indirect=True)
def test_a_write_leaves_the_index_to_the_batch_that_takes_it(
    client, database_path, monkeypatch, scan_first
):
    monkeypatch.setattr(models, "SEARCH_INDEX_BATCH", 3)
    monkeypatch.setattr(models, "_writes", itertools.count(1))
    first, second, _ = (
        client.post("/agents", json={"name": f"Quagga {number}"}).get_json()["agent"]
        for number in ("one", "two", "three")
    )
    assert index_holds(database_path, "quagga") == ([1, 2, 3], [])

    client.patch(f"/agents/{first['id']}", json={"name": "Tapir one"})
    client.delete(f"/agents/{second['id']}")

    assert index_holds(database_path, "quagga") == ([1, 2, 3], [1, 2])
    assert index_holds(database_path, "tapir") == ([], [1, 2])
    assert [agent["name"] for agent in listed(client, "quagga")] == ["Quagga three"]
    assert [agent["name"] for agent in listed(client, "tapir")] == ["Tapir one"]

    client.post("/agents", json={"name": "Quagga four"})

    assert index_holds(database_path, "quagga") == ([3, 4], [])
    assert index_holds(database_path, "tapir") == ([1], [])
    with closing(sqlite3.connect(database_path)) as connection:
        # Rank 1 compares the index with the agents' own search text.
        connection.execute(
            "INSERT INTO agent_search (agent_search, rank) VALUES ('integrity-check', 1)"
        )


def listed(client, query):
    """The agents a search answers (with SCAN_FIRST 1, from the trigram index)."""
    return client.get("/agents", query_string={"q": query, "limit": 5}).get_json()["agents"]


def test_the_index_follows_the_agents_of_one_namespace_only(make_app):
    client = make_app(TEST_MODE=True).test_client()
    for namespace in ("red", "blue"):
        headers = {"X-Agents-Namespace": namespace}
        body = {"name": f"Shared name {namespace}"}
        assert client.post("/agents", json=body, headers=headers).status_code == 201
    answer = client.get("/agents?q=shared", headers={"X-Agents-Namespace": "red"}).get_json()
    assert [agent["name"] for agent in answer["agents"]] == ["Shared name red"]


# --- which plan a search takes -----------------------------------------------------------------


def page_statements(client, caplog, **params):
    """The SELECTs that read a page, with their parameters."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        response = client.get("/agents", query_string=params)
    assert response.status_code == 200
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, tuple) and record.msg[0].startswith("SELECT")
    ]


def query_plan(database_path, sql, params):
    with closing(sqlite3.connect(database_path)) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " | ".join(row[-1] for row in rows)


@pytest.mark.parametrize("scan_first", [5], indirect=True)
def test_a_text_few_of_the_newest_agents_hold_is_looked_up_in_the_trigram_index(
    client, agents, database_path, caplog
):
    *_, (sql, params) = page_statements(client, caplog, q="straße", limit=5)
    plan = query_plan(database_path, sql, params)
    assert re.search(r"SCAN agent_search VIRTUAL TABLE INDEX", plan), plan
    assert "USING INTEGER PRIMARY KEY" in plan, plan


@pytest.mark.parametrize("scan_first", [listing.SCAN_FIRST], indirect=True)
@pytest.mark.parametrize("query", ["ag", "é", "agent"])
def test_a_short_text_or_one_the_newest_agents_hold_is_a_scan_in_list_order(
    client, agents, database_path, caplog, query
):
    statements = page_statements(client, caplog, q=query, limit=5)
    assert not any("agent_search" in sql for sql, _ in statements), statements
    plan = query_plan(database_path, *statements[0])
    assert re.search(r"USING (COVERING )?INDEX agent_namespace_created_at_id_search_text", plan)
    assert "TEMP B-TREE" not in plan, plan


def test_patches_keep_searches_and_filters_as_the_agents_say(client, agents):
    """A PATCH sets the indexed columns only when they change (models.UPDATE_IF_UNCHANGED):
    whichever it changes, searches and filters answer from what each agent now says."""
    patches = (
        lambda number, agent: {"is_active": not agent["is_active"]},
        lambda number, agent: {"name": f"Patched zebra {number}"},
        lambda number, agent: {"first_message": f"Changed {number}."},
        lambda number, agent: {"is_active": not agent["is_active"], "business_name": "Zebra Co"},
    )
    for number, agent in enumerate(agents[:80]):
        patch = patches[number % len(patches)](number, agent)
        assert client.patch(f"/agents/{agent['id']}", json=patch).status_code == 200
    listed = client.get("/agents").get_json()["agents"]

    def holding(text, is_active=None):
        return [
            agent["id"]
            for agent in listed
            if text in "\n".join(filter(None, (agent["name"], agent["business_name"]))).casefold()
            and is_active in (None, agent["is_active"])
        ]

    for query in ("zebra", "patched", "zebra co", "agent", "gent 1", *QUERIES[:8]):
        assert searched(client, query, limit=9) == holding(query.casefold()), query
        assert searched(client, query, is_active="true") == holding(query.casefold(), True)
    assert len(holding("zebra")) == 40


def test_an_imported_file_is_searched_as_the_file_it_was_exported_from(
    client, agents, database_path, tmp_path
):
    """An import fills the index in one pass at its end, where a POST's trigger adds each agent:
    both answer every search alike, and the trigger is back for what is written next."""
    from tests.test_cli import invoke

    exported = tmp_path / "agents.json"
    assert invoke(database_path, "export", exported).exit_code == 0
    target = tmp_path / "target.db"
    target_client = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{target}"}
    ).test_client()
    # Agents stored before, which --replace deletes through the index's delete trigger.
    for number in range(5):
        assert (
            target_client.post("/agents", json={"name": f"Straße old {number}"}).status_code == 201
        )

    result = invoke(target, "import", exported, "--replace")

    assert result.exit_code == 0, result.output
    for query in (*QUERIES, "old"):
        assert searched(target_client, query, limit=7) == searched(client, query, limit=7), query
        assert searched(target_client, query) == scanned(target, query), query
    with closing(sqlite3.connect(target)) as connection:
        connection.execute("INSERT INTO agent_search (agent_search) VALUES ('integrity-check')")
    created = target_client.post("/agents", json={"name": "Zebra after the import"})
    assert searched(target_client, "zebra after") == [created.get_json()["agent"]["id"]]
