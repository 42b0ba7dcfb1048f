"""How long the `agents_api` fixture takes to start a test double: the median of N starts.

A start is what a test module pays: build the app on a new SQLite file, listen on a free port,
and answer the first reset. The first start also imports Flask and the service; it is reported
apart, since a test session pays it once.

    .venv/bin/python bench/fixture_startup.py [N]      (default 30; target: median < 200 ms)
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_MS = 200


def start_once(folder):
    """Milliseconds from nothing to a test double that has answered its first reset."""
    began = time.perf_counter()
    from pytest_agents_api import AgentsApi, InProcessServer

    server = InProcessServer(Path(folder) / "agents.db").start()
    AgentsApi(server.url).reset()
    elapsed = (time.perf_counter() - began) * 1000
    server.stop()
    return elapsed


def main(count):
    with tempfile.TemporaryDirectory() as folder:
        first = start_once(Path(folder) / "first")
        times = []
        for index in range(count):
            (Path(folder) / str(index)).mkdir()
            times.append(start_once(Path(folder) / str(index)))
    median = statistics.median(times)
    print(f"first start (with imports): {first:.1f} ms")
    print(
        f"later starts: median {median:.1f} ms, min {min(times):.1f} ms, "
        f"max {max(times):.1f} ms over {count}"
    )
    print(f"target < {TARGET_MS} ms: {'met' if median < TARGET_MS else 'MISSED'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
