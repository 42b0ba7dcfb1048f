"""The example client's tests, run as docs/testing.md shows, so that page cannot fall behind."""

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from pytest_agents_api.plugin import module_namespace
from tests.live_server import ROOT

EXAMPLE = ROOT / "examples" / "agents_client"
TEST_COUNT = len(re.findall(r"^def test_", (EXAMPLE / "test_client.py").read_text(), re.M))
# Plugins the example has no use for; leaving them out saves seconds of start-up per run.
UNUSED_PLUGINS = ["-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:cacheprovider"]


def run_example_tests(*arguments, **environment):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTS_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *UNUSED_PLUGINS, *arguments, str(EXAMPLE)],
        cwd=ROOT,
        env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}", **environment},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    assert re.search(rf"\b{TEST_COUNT} passed\b", run.stdout), run.stdout[-2000:]
    return run


def test_the_example_passes_against_the_in_process_fixture():
    run_example_tests()


def test_the_example_passes_in_two_workers_sharing_one_server_started_from_the_command_line(
    test_mode_server,
):
    def journal(namespace):
        return requests.get(
            f"{test_mode_server.url}/_test/requests",
            timeout=5,
            headers={"X-Agents-Namespace": namespace},
        ).json()["requests"]

    untouched = journal("default")
    run_example_tests("-n", "2", AGENTS_API_URL=test_mode_server.url)
    # Each worker kept to a namespace of its own, and nothing reached the default one.
    for worker in ("gw0", "gw1"):
        assert journal(module_namespace_of(worker))
    assert journal("default") == untouched


def module_namespace_of(worker):
    """The namespace the plugin gives the example's test module in an xdist worker."""
    previous = os.environ.get("PYTEST_XDIST_WORKER")
    os.environ["PYTEST_XDIST_WORKER"] = worker
    try:
        return module_namespace("test_client")
    finally:
        if previous is None:
            os.environ.pop("PYTEST_XDIST_WORKER")
        else:
            os.environ["PYTEST_XDIST_WORKER"] = previous
