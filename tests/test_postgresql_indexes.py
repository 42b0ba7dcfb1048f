"""A page costs the same however many agents PostgreSQL holds: each way of listing (newest
first, after a cursor, by `is_active`, by `q`) is answered from an index, as EXPLAIN shows for
the very statement the request ran."""

import logging

import psycopg
import pytest

from app import create_app
from tests.postgresql import fresh_schema

# Below some tens of thousands of agents the planner rightly finds reading them all cheaper
# than the trigram index; at this many it reads the index, as it would at millions.
AGENTS = 100_000
# Stored agents with the columns a list reads and filters on; every tenth is inactive.
SEED = """
INSERT INTO "agent" SELECT 'default', id, created_at, created_at, n %% 10 <> 0,
    'agent number ' || n, NULL,
    json_build_object('id', id, 'created_at', created_at, 'name', 'Agent number ' || n)::text,
    md5(n::text), NULL
FROM (SELECT n, md5(n::text)::uuid::text AS id,
             to_char(timestamp '2024-01-01' + n * interval '1 second',
                     'YYYY-MM-DD"T"HH24:MI:SS".000Z"') AS created_at
      FROM generate_series(1, %s) AS n) AS seeded
"""


@pytest.fixture(scope="module")
def listed(postgresql_server):
    """A client on a schema of AGENTS agents, analysed as autovacuum would have."""
    with fresh_schema(postgresql_server) as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url})
        client = app.test_client()
        assert client.get("/agents?limit=1").status_code == 200  # migrated
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(SEED, (AGENTS,))
            connection.execute('ANALYZE "agent"')
        yield client
        app.extensions["store"].engine.close()


def plan_of(client, caplog, path):
    """The index names in the plan of the list statement that GET `path` ran."""
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        caplog.clear()
        response = client.get(path)
    assert response.status_code == 200, response.get_json()
    [(sql, params)] = [
        record.msg for record in caplog.records if 'FROM "agent" WHERE "namespace"' in record.msg[0]
    ]
    database = client.application.extensions["store"].engine.database
    with client.application.extensions["store"].activated():
        [[plan]] = database.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchall()
    return response.get_json(), set(_nodes(plan[0]["Plan"]))


def _nodes(node):
    yield node["Node Type"], node.get("Index Name")
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def index_names(nodes):
    return {name for _, name in nodes if name}


def test_a_page_newest_first_reads_the_creation_index(listed, caplog):
    page, nodes = plan_of(listed, caplog, "/agents?limit=20")

    assert len(page["agents"]) == 20 and page["has_more"]
    assert index_names(nodes) == {"agent_namespace_created_at_id"}
    assert "Seq Scan" not in {kind for kind, _ in nodes}


def test_a_page_after_a_cursor_starts_the_index_scan_at_the_cursor(listed, caplog):
    first = listed.get("/agents?limit=20").get_json()
    page, nodes = plan_of(listed, caplog, f"/agents?limit=20&cursor={first['next_cursor']}")

    assert page["agents"][0]["created_at"] < first["agents"][-1]["created_at"]
    assert index_names(nodes) == {"agent_namespace_created_at_id"}
    assert "Sort" not in {kind for kind, _ in nodes}


def test_a_page_of_inactive_agents_reads_the_is_active_index(listed, caplog):
    page, nodes = plan_of(listed, caplog, "/agents?limit=20&is_active=false")

    assert len(page["agents"]) == 20 and not any(agent.get("is_active") for agent in page["agents"])
    assert index_names(nodes) == {"agent_namespace_is_active_created_at_id"}


def test_a_search_for_a_rare_substring_reads_the_trigram_index(listed, caplog):
    page, nodes = plan_of(listed, caplog, "/agents?limit=20&q=UMBER 1234")

    assert [agent["name"] for agent in page["agents"]][-1] == "Agent number 1234"
    assert "agent_search_text_trigrams" in index_names(nodes)
    assert "Seq Scan" not in {kind for kind, _ in nodes}
