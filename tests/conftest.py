"""Fixtures: a fresh app on its own database, its test client and CLI runner; test mode too.

Every test that builds an app runs on both engines: on a SQLite file of its own, and on a
PostgreSQL schema of its own (tests/postgresql.py). A test that asks for `database_path` is
about the SQLite file itself, and runs on SQLite only.
"""

import contextlib
import inspect
import os
import shutil
import subprocess

import pytest

from app import create_app
from provider_schemas import SttConfigSchema
from schemas import AGENT, READ_ONLY_FIELDS
from storage.sqlite import SqliteEngine
from tests.postgresql import SchemaPool, fresh_schema, server_or_reason, under_ci

# pytester runs the pytest plugin in suites of its own (tests/test_pytest_plugin.py).
pytest_plugins = ["pytester"]

VALID_AGENT = {
    "name": "Customer Support Agent",
    "business_name": "Acme Corp",
    "first_message": "Hallo, welkom bij Acme. Waarmee kan ik u helpen?",
    "stt_config": {
        "provider": "deepgram",
        "model": "nova-3-general",
        "language": "nl",
        "keyterms": ["ja", "nee", "oké"],
    },
    "llm_config": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "temperature": 0.7,
        "messages": [{"role": "system", "content": "You are a helpful assistant."}],
    },
    "tts_config": {"provider": "openai", "voice_id": "alloy", "language": "nl"},
}


# What each config shows of the fields the platform added when they are not set (API.md 1:
# every field, unset ones as null).
STT_UNSET = dict.fromkeys(SttConfigSchema.PROVIDER_ONLY)
LLM_UNSET = {"voice": None}
TTS_UNSET = {"style": None}


def url_of(agent):
    return f"/agents/{agent['id']}"


def current(client, agent):
    """The agent as a GET shows it now, and its ETag."""
    response = client.get(url_of(agent))
    assert response.status_code == 200
    return response.get_json()["agent"], response.headers["ETag"]


ENGINES = ("sqlite", "postgresql")
# Why a test that asks for the file runs on one engine only.
SQLITE_FILE_ONLY = "reads or changes the SQLite file itself (it asks for database_path)"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test is about SQLite's file, lock or WAL"
    )
    config.addinivalue_line(
        "markers", "postgresql_only(reason): the test is about the PostgreSQL engine itself"
    )


def pytest_generate_tests(metafunc):
    """Run each test that builds an app once per engine, or on SQLite alone when it is about
    the SQLite file; and each test of a shared live server on a server of each engine."""
    marked = metafunc.definition.get_closest_marker("sqlite_only") is not None
    if "served_engine" in metafunc.fixturenames:
        metafunc.parametrize("served_engine", ENGINES[:1] if marked else ENGINES, scope="session")
    if "engine" not in metafunc.fixturenames:
        return
    about_the_file = "database_path" in inspect.signature(metafunc.function).parameters
    if about_the_file or marked:
        metafunc.parametrize("engine", ["sqlite"])
    elif metafunc.definition.get_closest_marker("postgresql_only"):
        metafunc.parametrize("engine", ["postgresql"])
    else:
        metafunc.parametrize("engine", ENGINES)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Report every test the missing server skips at the one place that skips them, so that
    `-ra` says it once, with their number."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and SKIPPED_HALF in report.longrepr[2]:
        where = os.path.relpath(inspect.getsourcefile(server_or_reason), item.config.rootpath)
        report.longrepr = (where, server_or_reason.__code__.co_firstlineno, report.longrepr[2])
    return report


SKIPPED_HALF = "the PostgreSQL half of the suite is skipped"


@pytest.fixture(scope="session")
def postgresql_server():
    """The PostgreSQL server the PostgreSQL half runs on (AGENTS_TEST_POSTGRESQL_URL).

    Where none answers the half is skipped, for one reason said once; under CI it fails.
    """
    url, reason = server_or_reason()
    if reason is not None:
        if under_ci():
            pytest.fail(f"{reason} (CI is set: a missing PostgreSQL is a failure)")
        pytest.skip(f"{reason}: {SKIPPED_HALF}")
    return url


@pytest.fixture(scope="session")
def postgresql_schemas(postgresql_server):
    """This process's pool of migrated PostgreSQL schemas, all dropped at the end."""
    pool = SchemaPool(postgresql_server)
    yield pool
    pool.drop_all()


@pytest.fixture
def database_path(tmp_path):
    return tmp_path / "agents.db"


@pytest.fixture
def database_url(engine, request):
    """The test's own database: a fresh SQLite file, or a PostgreSQL schema no other test is
    using, migrated and empty (a new one for the tests of the PostgreSQL engine itself)."""
    if engine == "sqlite":
        yield f"sqlite:///{request.getfixturevalue('database_path')}"
    elif request.node.get_closest_marker("postgresql_only"):  # about creating and migrating
        with fresh_schema(request.getfixturevalue("postgresql_server")) as url:
            yield url
    else:
        with request.getfixturevalue("postgresql_schemas").schema() as url:
            yield url


@pytest.fixture
def make_app(database_url):
    """Build an app on the test's database with extra settings."""
    apps = []

    def make(**settings):
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, **settings})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["store"].engine.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def create_agent(client):
    """POST an agent built from VALID_AGENT plus overrides; returns the response JSON agent."""

    def create(**overrides):
        response = client.post("/agents", json={**VALID_AGENT, **overrides})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["agent"]

    return create


@pytest.fixture
def double(make_app):
    """A test client of the service in test mode (AGENTS_TEST_MODE=1)."""
    return make_app(TEST_MODE=True).test_client()


@pytest.fixture
def in_namespace(double):
    """Requests through `double` in a namespace: `in_namespace("a").post("/agents", json=...)`."""

    class Scoped:
        def __init__(self, namespace):
            self.headers = {"X-Agents-Namespace": namespace}

        def __getattr__(self, method):
            call = getattr(double, method)
            return lambda path, headers=None, **kwargs: call(
                path, headers={**self.headers, **(headers or {})}, **kwargs
            )

    return Scoped


@contextlib.contextmanager
def served_database(served_engine, folder, request):
    """Where a shared live server keeps its data: a file in `folder`, or a fresh PostgreSQL
    schema, dropped after."""
    if served_engine == "sqlite":
        yield folder / "agents.db"
        return
    with fresh_schema(request.getfixturevalue("postgresql_server")) as url:
        yield url


@pytest.fixture(scope="session")
def live_server(served_engine, tmp_path_factory, request):
    """One gunicorn with two workers on a fresh database of each engine, shared by the tests
    that need it."""
    from tests.live_server import LiveServer

    folder = tmp_path_factory.mktemp("live")
    with (
        served_database(served_engine, folder, request) as database,
        LiveServer(database, log_path=folder / "agents.log") as server,
    ):
        yield server


FIXTURE_AGENTS = [
    {
        "id": f"00000000-0000-4000-8000-00000000000{n}",
        "name": f"Fixture {n}",
        "created_at": f"2024-01-0{n}T00:00:00.000Z",
    }
    for n in (1, 2, 3)
]


@pytest.fixture(scope="session")
def test_mode_server(served_engine, tmp_path_factory, request):
    """One gunicorn with two workers in test mode on each engine, FIXTURE_AGENTS loaded at
    start from a file.

    Tests that share it keep out of each other's way in namespaces of their own.
    """
    import json

    from tests.live_server import LiveServer

    folder = tmp_path_factory.mktemp("test-mode-live")
    fixtures = folder / "fixtures.json"
    fixtures.write_text(json.dumps({"agents": FIXTURE_AGENTS}))
    # One thread a worker: a request held by a delayed fault then occupies its whole worker, so
    # the next request must go to the other one.
    with (
        served_database(served_engine, folder, request) as database,
        LiveServer(
            database,
            workers=2,
            log_path=folder / "agents.log",
            AGENTS_TEST_MODE="1",
            AGENTS_FIXTURES=str(fixtures),
            AGENTS_THREADS="1",
        ) as server,
    ):
        yield server


@contextlib.contextmanager
def holding_the_write_lock(database_path):
    """Hold what every writer of the database waits for: its lock file and SQLite's write lock."""
    import fcntl
    import sqlite3

    with open(f"{database_path}.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        connection = sqlite3.connect(database_path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()


def answered_within(seconds, call):
    """`call()`'s result, or an AssertionError when it takes longer than `seconds`.

    The call goes on in its thread after a timeout, and finishes once what held it is released.
    """
    from concurrent.futures import ThreadPoolExecutor, TimeoutError

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(call)
    try:
        return future.result(timeout=seconds)
    except TimeoutError:
        raise AssertionError(f"no answer within {seconds} s") from None
    finally:
        pool.shutdown(wait=False)


def check_file(path):
    """SQLite's integrity check, schema version and counts of the database file at `path`."""
    return SqliteEngine(str(path)).check()


def assert_valid_as_stored(agent):
    """A stored agent, as served, passes the API's own validation unchanged."""
    fields = {key: value for key, value in agent.items() if key not in READ_ONLY_FIELDS}
    assert AGENT.load(fields) == fields, agent["id"]


@contextlib.contextmanager
def read_only(path):
    """The file (or folder) refuses writes: by its mode, or for root (whom modes do not stop)
    immutable."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("chattr is needed to make a file read-only for root")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make the file immutable here (chattr: {made.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
