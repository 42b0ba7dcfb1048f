"""The examples' tests, run as docs/testing.md shows, so that page cannot fall behind: the
Agents API client, and the webhook handler that the double's simulated calls drive."""

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from pytest_agents_api.plugin import module_namespace
from tests.live_server import ROOT

EXAMPLES = ROOT / "examples"
# Plugins the examples have no use for; leaving them out saves seconds of start-up per run.
UNUSED_PLUGINS = ["-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:cacheprovider"]


def run_example_tests(example, *arguments, **environment):
    """Run one example's tests as its reader would; every test must pass, none be skipped."""
    folder = EXAMPLES / example
    functions = sum(
        len(re.findall(r"^def test_", path.read_text(), re.M)) for path in folder.glob("test_*.py")
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTS_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *UNUSED_PLUGINS, *arguments, str(folder)],
        cwd=ROOT,
        env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}", **environment},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    # Only passes: a skip, an xfail or a deselection would show in the summary line.
    summary = re.search(r"^(\d+) passed in [\d.]+s", run.stdout, re.M)
    assert summary, run.stdout[-2000:]
    assert int(summary.group(1)) >= functions
    return run


def test_the_client_example_passes_against_the_in_process_fixture():
    run_example_tests("agents_client")


def test_the_client_example_passes_in_two_workers_sharing_one_server_started_from_the_command_line(
    test_mode_server,
):
    def journal(namespace):
        return requests.get(
            f"{test_mode_server.url}/_test/requests",
            timeout=5,
            headers={"X-Agents-Namespace": namespace},
        ).json()["requests"]

    untouched = journal("default")
    run_example_tests("agents_client", "-n", "2", AGENTS_API_URL=test_mode_server.url)
    # Each worker kept to a namespace of its own, and nothing reached the default one.
    for worker in ("gw0", "gw1"):
        assert journal(module_namespace_of(worker, "test_client"))
    assert journal("default") == untouched


def test_the_webhook_handler_example_passes_against_the_in_process_fixture():
    run_example_tests("webhook_handler")


def test_the_webhook_handler_example_passes_against_a_shared_server(test_mode_server):
    def default_calls():
        return requests.get(f"{test_mode_server.url}/_test/calls", timeout=5).json()["calls"]

    untouched = default_calls()
    run_example_tests("webhook_handler", "-n", "2", AGENTS_API_URL=test_mode_server.url)
    # The workers' calls were simulated in their own namespaces.
    assert default_calls() == untouched


def module_namespace_of(worker, module):
    """The namespace the plugin gives an example's test module in an xdist worker."""
    previous = os.environ.get("PYTEST_XDIST_WORKER")
    os.environ["PYTEST_XDIST_WORKER"] = worker
    try:
        return module_namespace(module)
    finally:
        if previous is None:
            os.environ.pop("PYTEST_XDIST_WORKER")
        else:
            os.environ["PYTEST_XDIST_WORKER"] = previous
