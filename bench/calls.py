"""The service time of a simulated call: `bench/run --calls` (bench/README.md).

Starts the service in test mode as `serve` runs it (2 workers) and a webhook receiver on
127.0.0.1 that answers every delivery at once, creates an agent whose webhook and tool point at
the receiver, then runs simulated calls of five tool steps one after another: each call is nine
deliveries made while the POST waits (`assistant-request`, `status-update` in progress, five
`tool-calls`, `status-update` ended, `end-of-call-report`). Reports each call's wall time
as the client saw it and the server's CPU time per call.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import processes, report
from pytest_agents_api.receiver import WebhookReceiver
from tests.live_server import LiveServer

TOOL_STEPS = 5
SCRIPT = [{"role": "user", "content": "Where is my order?"}] + [
    {"tool": "lookup_order", "arguments": {"order_id": f"A-{step}"}} for step in range(TOOL_STEPS)
]
EVENTS = ["assistant-request", "tool-calls", "status-update", "end-of-call-report"]
TARGET_MS = 50
# assistant-request, two status-updates, a tool-calls per tool step, end-of-call-report.
DELIVERIES_PER_CALL = TOOL_STEPS + 4


def parse_options(argv):
    parser = argparse.ArgumentParser(prog="bench/run --calls", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="measured calls (300)")
    parser.add_argument("--warm-up", type=int, default=30, help="unmeasured calls first (30)")
    parser.add_argument("--output", type=Path, help="where the markdown goes (nowhere)")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_options(argv)
    with (
        tempfile.TemporaryDirectory(prefix="agents-bench-calls-") as folder,
        WebhookReceiver() as receiver,
        LiveServer(Path(folder) / "calls.db", workers=2, AGENTS_TEST_MODE="1") as service,
    ):
        figures = measure(service, receiver, options)
    markdown = markdown_of(figures, options)
    report.publish(markdown, options.output)
    return 0 if figures["deliveries_per_call"] == DELIVERIES_PER_CALL else 1


def measure(service, receiver, options):
    session = requests.Session()
    agent_id = _create_agent(session, service.url, receiver)
    for _ in range(options.warm_up):
        _call(session, service.url, agent_id)
    receiver.clear()
    cpu_before = processes.cpu_seconds(service.process.pid)
    walls = [_call(session, service.url, agent_id) for _ in range(options.calls)]
    cpu = processes.cpu_seconds(service.process.pid) - cpu_before
    return {
        "wall_ms": sorted(walls),
        "cpu_ms_per_call": cpu * 1000 / options.calls,
        "deliveries_per_call": len(receiver.deliveries) / options.calls,
    }


def _create_agent(session, url, receiver):
    tool = {
        "type": "function",
        "function": {"name": "lookup_order", "description": "Look an order up by its number."},
        "server": {"url": receiver.url_for("/tools")},
    }
    fields = {
        "name": "Order desk",
        "webhook_url": receiver.url_for("/hook"),
        "webhook_secret": "whsec-bench-secret",
        "webhook_events": EVENTS,
        "llm_config": {"provider": "openai", "model": "gpt-4o-mini", "tools": [tool]},
    }
    response = session.post(f"{url}/agents", json=fields, timeout=10)
    response.raise_for_status()
    return response.json()["agent"]["id"]


def _call(session, url, agent_id):
    started = time.perf_counter()
    response = session.post(
        f"{url}/_test/calls", json={"assistant_id": agent_id, "script": SCRIPT}, timeout=60
    )
    wall = (time.perf_counter() - started) * 1000
    if response.status_code != 201:
        raise SystemExit(f"a simulated call answered {response.status_code}: {response.text}")
    return wall


def markdown_of(figures, options):
    walls = figures["wall_ms"]
    median = statistics.median(walls)
    p90 = walls[int(len(walls) * 0.9) - 1]
    met = "yes" if median < TARGET_MS else "**no**"
    return "\n".join(
        [
            "# Simulated calls",
            "",
            f"{options.calls} calls of {TOOL_STEPS} tool steps, one after another, against a "
            f"receiver on 127.0.0.1 that answers at once ({figures['deliveries_per_call']:.0f} "
            "deliveries a call); test mode, 2 workers, after "
            f"{options.warm_up} unmeasured calls.",
            "",
            "## Figures",
            "",
            "| Wall ms: min | median | p90 | max | Server CPU ms per call | Median < 50 ms |",
            "|--:|--:|--:|--:|--:|---|",
            f"| {walls[0]:.1f} | {median:.1f} | {p90:.1f} | {walls[-1]:.1f} | "
            f"{figures['cpu_ms_per_call']:.1f} | {met} |",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
