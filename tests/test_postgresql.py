"""The PostgreSQL engine itself: its URL, statements, durability, migrations in turn across
hosts, and what a lost server or connection answers."""

import threading

import psycopg
import pytest

import migrations
from app import create_app
from config import ConfigError, load_settings
from storage import open_engine
from storage.postgresql import MIGRATION_LOCK
from store import Store
from tests.conftest import VALID_AGENT

pytestmark = pytest.mark.postgresql_only("the PostgreSQL engine's own mechanisms")


def admin(url):
    return psycopg.connect(url, autocommit=True)


def test_the_location_shown_never_holds_the_password():
    url = "postgresql://agents:s3cret-pw@db.internal:5432/agents?password=s3cret-pw&sslmode=require"

    location = open_engine(url).location

    assert "s3cret-pw" not in location
    assert location.startswith("postgresql://agents@db.internal:5432/agents")
    assert "sslmode=require" in location


def test_a_url_libpq_cannot_read_is_refused_without_repeating_its_password():
    with pytest.raises(ConfigError) as refused:
        load_settings({"AGENTS_DATABASE_URL": "postgresql://agents:s3cret-pw@db/agents?bogus=1"})

    assert "postgresql://user@host:port/database" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


def test_statements_with_question_marks_keep_their_literal_percent_signs(make_app):
    app = make_app()
    app.test_client().get("/agents")
    database = app.extensions["store"].engine.database
    with app.extensions["store"].activated(), database.connection_context():
        row = database.execute_sql("SELECT ? || '%', 'a%' LIKE ?", ("50", "a%%")).fetchone()

    assert row == ("50%", True)


def test_commits_are_durable_before_an_answer_and_a_test_doubles_need_not_be(make_app):
    for test_mode, expected in ((False, "on"), (True, "off")):
        app = make_app(TEST_MODE=test_mode)
        assert app.test_client().post("/agents", json=VALID_AGENT).status_code == 201
        database = app.extensions["store"].engine.database
        setting = database.execute_sql("SHOW synchronous_commit").fetchone()[0]
        assert setting == expected


def test_the_schema_reaches_this_releases_version_in_a_table_of_its_own(make_app, database_url):
    assert make_app().test_client().get("/agents").status_code == 200

    with admin(database_url) as connection:
        versions = connection.execute('SELECT "version" FROM "schema_version"').fetchall()
        collation = connection.execute(
            "SELECT collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'agent' AND column_name = 'id'"
        ).fetchone()

    assert versions == [(migrations.latest_version(),)]
    assert collation == ("C",)  # ordered by bytes, as SQLite orders them


def test_a_host_waits_for_the_migration_another_host_is_running(database_url):
    store = Store(open_engine(database_url))
    with admin(database_url) as other_host:
        other_host.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        preparing = threading.Thread(target=store.prepare)
        preparing.start()
        preparing.join(timeout=1.0)
        waited = preparing.is_alive()
        other_host.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    preparing.join(timeout=10)

    assert waited
    assert not preparing.is_alive()
    assert store.is_ready()
    store.engine.close()


def test_hosts_starting_together_migrate_one_after_another(database_url):
    stores = [Store(open_engine(database_url)) for _ in range(4)]
    failures = []

    def prepare(store):
        try:
            store.prepare()
        except Exception as error:  # any failure at all is the finding
            failures.append(error)

    threads = [threading.Thread(target=prepare, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    with admin(database_url) as connection:
        assert connection.execute('SELECT "version" FROM "schema_version"').fetchall() == [
            (migrations.latest_version(),)
        ]
    for store in stores:
        store.engine.close()


def test_a_database_from_a_later_release_is_refused_and_left_alone(make_app, database_url):
    make_app().test_client().get("/agents")
    with admin(database_url) as connection:
        connection.execute('UPDATE "schema_version" SET "version" = %s', (99,))

    later = make_app().test_client()
    response = later.get("/agents")

    assert response.status_code == 503
    assert later.get("/readyz").status_code == 503
    with admin(database_url) as connection:
        assert connection.execute('SELECT "version" FROM "schema_version"').fetchone() == (99,)


def test_a_connection_the_server_dropped_is_replaced_by_the_next_request(make_app, database_url):
    client = make_app().test_client()
    created = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    url = f"/agents/{created['id']}"
    assert client.get(url).status_code == 200
    pid = client.application.extensions["store"].engine.database.connection().info.backend_pid
    with admin(database_url) as connection:
        connection.execute("SELECT pg_terminate_backend(%s)", (pid,))

    first = client.patch(url, json={"name": "Renamed"})
    second = client.patch(url, json={"name": "Renamed"})

    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert first.get_json()["code"] == "database_unavailable"
    assert second.status_code == 200


def test_a_plain_read_on_a_dropped_connection_is_answered_on_a_new_one(make_app, database_url):
    """The fast path of a GET gives way to the full request on any database error, and the full
    request opens a new connection for the one the server dropped."""
    client = make_app().test_client()
    created = client.post("/agents", json=VALID_AGENT).get_json()["agent"]
    assert client.get(f"/agents/{created['id']}").status_code == 200
    pid = client.application.extensions["store"].engine.database.connection().info.backend_pid
    with admin(database_url) as connection:
        connection.execute("SELECT pg_terminate_backend(%s)", (pid,))

    assert client.get(f"/agents/{created['id']}").get_json()["agent"] == created


def test_a_server_that_cannot_be_reached_is_unavailable_not_an_error():
    app = create_app(
        {"TESTING": True, "DATABASE_URL": "postgresql://root@127.0.0.1:1/test?connect_timeout=2"}
    )
    client = app.test_client()

    response = client.get("/agents")

    assert response.status_code == 503
    assert response.get_json()["code"] == "database_unavailable"
    assert client.get("/readyz").status_code == 503
