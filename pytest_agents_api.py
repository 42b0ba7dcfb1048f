"""A pytest plugin that gives tests an Agents API test double: the `agents_api` fixture.

Installing this project registers it (entry point `pytest11`). Each test module gets its own
service, started in this process on 127.0.0.1 and a free port with a temporary SQLite file, in
test mode; every test starts from a reset. With AGENTS_API_URL set, the tests use that server
instead, each pytest-xdist worker in a namespace of its own (AGENTS_API_NAMESPACE-<worker>).

    def test_creates_an_agent(agents_api):
        client = MyClient(agents_api.url, headers=agents_api.headers)
        ...
        assert agents_api.requests("POST", "/agents")[0]["status"] == 201
"""

import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

URL_VARIABLE = "AGENTS_API_URL"
KEY_VARIABLE = "AGENTS_API_KEY"
NAMESPACE_VARIABLE = "AGENTS_API_NAMESPACE"
NAMESPACE_HEADER = "X-Agents-Namespace"


class TestModeError(Exception):
    """A /_test route refused a helper's request; the message is the service's own."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, status, body):
        super().__init__(f"{status}: {body.get('error', body)}")
        self.status = status
        self.body = body


class AgentsApi:
    """A running test double: `url` for the client under test, and its /_test routes as methods.

    `headers` are the ones every request of the client must carry: the namespace and, for a
    shared server with keys, the API key. Paths given to helpers are the API's own (`/agents`,
    `/agents/{id}`), without the URL prefix.
    """

    def __init__(self, url, namespace="default", api_key=None):
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.namespace = namespace
        self.headers = {NAMESPACE_HEADER: namespace}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def reset(self, seed=None):
        """Forget every agent, journal entry, fault and the frozen clock; `seed` fixes the ids."""
        self._call("POST", "/_test/reset", {} if seed is None else {"seed": seed})

    def requests(self, method=None, path=None):
        """The journal of API requests, oldest first; `path` may use `{id}`."""
        query = {"method": method, "path": path and self.prefix + path}
        query = urllib.parse.urlencode({name: value for name, value in query.items() if value})
        return self._call("GET", "/_test/requests" + (f"?{query}" if query else ""))["requests"]

    def clear_requests(self):
        """Empty the journal."""
        self._call("DELETE", "/_test/requests")

    def fail(self, method, path, status=503, **options):
        """Make the next matching request fail; options: error, code, delay_ms, times,
        retry_after, after_commit."""
        fault = {"method": method, "path": self.prefix + path, "status": status, **options}
        return self._call("POST", "/_test/faults", fault)["fault"]

    def faults(self):
        """The faults still waiting, each with the uses it has left as `times`."""
        return self._call("GET", "/_test/faults")["faults"]

    def clear_faults(self):
        """Delete every fault."""
        self._call("DELETE", "/_test/faults")

    def freeze(self, now):
        """Stamp every create and update with `now` (2025-12-13T10:00:00.000Z)."""
        self._call("PUT", "/_test/clock", {"now": now})

    def unfreeze(self):
        """Let the clock run again."""
        self._call("DELETE", "/_test/clock")

    def load(self, agents):
        """Store agents as given (`id`, `created_at`, `updated_at` allowed); returns them."""
        return self._call("POST", "/_test/fixtures", {"agents": agents})["agents"]

    def snapshot(self, name):
        """Save the current agents, clock and id seed under `name`."""
        self._call("POST", "/_test/snapshots", {"name": name})

    def restore(self, name):
        """Put the state saved under `name` back exactly."""
        self._call("POST", f"/_test/snapshots/{urllib.parse.quote(name, safe='')}/restore")

    def _call(self, method, path, body=None):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.origin + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                raise TestModeError(error.code, json.load(error)) from None


class InProcessServer:
    """The service in test mode, served from a thread of this process on 127.0.0.1."""

    def __init__(self, database_path):
        from werkzeug.serving import WSGIRequestHandler, make_server

        from app import create_app

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs):
                pass

        self.app = create_app({
            "DATABASE_URL": f"sqlite:///{database_path}",
            "TEST_MODE": True,
            "API_KEYS": (),
            "FIXTURES": "",
        })
        self.server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=QuietHandler
        )
        # A short poll interval makes shutdown, which waits for the next poll, quick.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_port}{self.app.config['URL_PREFIX']}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


def _worker_namespace():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{os.environ.get(NAMESPACE_VARIABLE, 'pytest')}-{worker}"


@pytest.fixture(scope="module")
def agents_api_server(tmp_path_factory):
    """One test double per test module: in this process, or the one at AGENTS_API_URL."""
    shared_url = os.environ.get(URL_VARIABLE)
    if shared_url:
        yield AgentsApi(shared_url, _worker_namespace(), os.environ.get(KEY_VARIABLE))
        return
    server = InProcessServer(tmp_path_factory.mktemp("agents-api") / "agents.db").start()
    try:
        yield AgentsApi(server.url)
    finally:
        server.stop()


@pytest.fixture
def agents_api(agents_api_server):
    """The test double, reset for this test: no agents, journal, faults or frozen clock."""
    agents_api_server.reset()
    return agents_api_server
