"""The pytest plugin: the `agents_api` fixture, a test double of the Agents API for every test,
and `webhook_receiver`, a local HTTP server for the webhooks of the calls it simulates.

One server per test run: `agents-api serve --test-mode` started on a free loopback port the
first time a test asks for it, or the server at AGENTS_API_URL. Each test module works in a
namespace of its own (per pytest-xdist worker too), and each test starts from a reset of it.
"""

import hashlib
import os
import re
import tempfile

import pytest

from pytest_agents_api.client import AgentsApi
from pytest_agents_api.receiver import WebhookReceiver
from pytest_agents_api.server import RUN_FOLDER_VARIABLE, shared_server_url, stop_shared_server

URL_VARIABLE = "AGENTS_API_URL"
KEY_VARIABLE = "AGENTS_API_KEY"
NAMESPACE_VARIABLE = "AGENTS_API_NAMESPACE"
# A namespace is 1 to 64 of these.
NAMESPACE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")


def pytest_configure(config):
    """The controlling process makes the folder its workers share the run's server through."""
    if hasattr(config, "workerinput"):  # an xdist worker: its controller made the folder
        return
    config._agents_api_folder = tempfile.mkdtemp(prefix="agents-api-run-")
    config._agents_api_outer_folder = os.environ.get(RUN_FOLDER_VARIABLE)
    os.environ[RUN_FOLDER_VARIABLE] = config._agents_api_folder


def pytest_unconfigure(config):
    """Stop the run's server, if one was started, once every worker is done."""
    folder = getattr(config, "_agents_api_folder", None)
    if folder is None:
        return
    stop_shared_server(folder)
    # A pytest run inside another (a plugin's own tests) gives the outer one its folder back.
    if config._agents_api_outer_folder is None:
        os.environ.pop(RUN_FOLDER_VARIABLE, None)
    else:
        os.environ[RUN_FOLDER_VARIABLE] = config._agents_api_outer_folder


@pytest.fixture(scope="session")
def agents_api_url():
    """The base URL of the run's test double, with AGENTS_URL_PREFIX when set."""
    shared = os.environ.get(URL_VARIABLE)
    if shared:
        return shared.rstrip("/")
    origin = shared_server_url(os.environ[RUN_FOLDER_VARIABLE])
    prefix = os.environ.get("AGENTS_URL_PREFIX", "").strip().strip("/")
    return f"{origin}/{prefix}" if prefix else origin


@pytest.fixture(scope="module")
def agents_api_server(agents_api_url, request):
    """The test double as this test module sees it: in the module's own namespace."""
    return AgentsApi(
        agents_api_url, module_namespace(request.module.__name__), os.environ.get(KEY_VARIABLE)
    )


@pytest.fixture
def agents_api(agents_api_server):
    """The test double, reset for this test: no agents, journal, faults or frozen clock."""
    agents_api_server.reset()
    return agents_api_server


@pytest.fixture
def webhook_receiver():
    """An HTTP server on 127.0.0.1 that records every delivery and answers as the test says."""
    with WebhookReceiver() as receiver:
        yield receiver


def module_namespace(module_name):
    """`<AGENTS_API_NAMESPACE or pytest>-<xdist worker>-<module>`, within a namespace's 64."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = f"{os.environ.get(NAMESPACE_VARIABLE, 'pytest')}-{worker}-"
    digest = hashlib.sha256(module_name.encode()).hexdigest()[:8]
    readable = NAMESPACE_CHARACTERS.sub("_", module_name.rsplit(".", 1)[-1])
    room = 64 - len(prefix) - len(digest) - 1
    return NAMESPACE_CHARACTERS.sub("_", f"{prefix}{readable[:room]}-{digest}")[:64]
