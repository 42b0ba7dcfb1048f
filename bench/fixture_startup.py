"""What the fixtures cost: `agents_api`'s one server start per run and one reset per test, and
`webhook_receiver`'s start and stop, which every test that asks for it pays.

The plugin starts `agents-api serve --test-mode` the first time a test asks for it and stops it
when the run ends; every test then pays one reset of its module's namespace.

    .venv/bin/python bench/fixture_startup.py [N]      (default 30 resets)
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_agents_api import AgentsApi
from pytest_agents_api.receiver import WebhookReceiver
from pytest_agents_api.server import start_server, stop_process


def main(count):
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        url, process = start_server(Path(folder))
        started = (time.perf_counter() - began) * 1000
        api = AgentsApi(url, "bench-fixture")
        resets = []
        for _ in range(count):
            began = time.perf_counter()
            api.reset()
            resets.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        stop_process(process.pid)
        stopped = (time.perf_counter() - began) * 1000
    print(f"server start (once per run): {started:.0f} ms; stop: {stopped:.0f} ms")
    print(
        f"reset (once per test): median {statistics.median(resets):.1f} ms, "
        f"min {min(resets):.1f} ms, max {max(resets):.1f} ms over {count}"
    )
    starts, stops = [], []
    for _ in range(count):
        began = time.perf_counter()
        receiver = WebhookReceiver()
        started = time.perf_counter()
        receiver.close()
        starts.append((started - began) * 1000)
        stops.append((time.perf_counter() - started) * 1000)
    print(
        f"webhook receiver (once per test): start median {statistics.median(starts):.2f} ms, "
        f"stop median {statistics.median(stops):.2f} ms, slowest stop {max(stops):.2f} ms "
        f"over {count}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
