#!/usr/bin/env python3
"""POST throughput of a few writers, alone and beside a flood of GET /readyz.

    .venv/bin/python bench/readyz_flood.py --url http://127.0.0.1:18100

/readyz takes SQLite's write lock (BEGIN IMMEDIATE, then ROLLBACK) on every call, beside the
writers' own transactions. Runs wrk with --writers connections of POST /agents for --seconds,
first alone, then with --flood connections of GET /readyz at the same time, --rounds times in
turn; prints the fastest round of each as JSON.
"""

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import agents, load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--flood", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--flood-path",
        default="/readyz",
        help="what the flood asks for; /healthz sets the lock's cost apart",
    )
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="readyz-flood-"))
    posts = agents.write_bodies(folder / "posts.txt", map(agents.agent_body, range(200)))

    def post():
        return load._wrk(options.url, "post", [posts], options.seconds, options.writers)

    rounds = {"alone": [], "flooded": []}
    floods = []
    for _ in range(options.rounds):
        rounds["alone"].append(post())
        flood = {}

        def flood_once(into=flood):
            into.update(
                load._wrk(
                    options.url, "readyz", [options.flood_path], options.seconds + 1, options.flood
                )
            )

        flooder = threading.Thread(target=flood_once)
        flooder.start()
        rounds["flooded"].append(post())
        flooder.join()
        floods.append(flood)

    def best(runs):
        run = max(runs, key=lambda r: r["requests"] / r["duration_us"])
        return {
            "posts_per_s": round(run["requests"] / (run["duration_us"] / 1e6), 1),
            "p50_ms": run["p50_us"] / 1000,
            "p99_ms": run["p99_us"] / 1000,
            "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
        }

    report = {name: best(runs) for name, runs in rounds.items()}
    report["ratio"] = round(report["flooded"]["posts_per_s"] / report["alone"]["posts_per_s"], 2)
    report["flood"] = {
        "path": options.flood_path,
        "per_s": round(max(f["requests"] / (f["duration_us"] / 1e6) for f in floods), 1),
        "non_2xx": sum(f["non_2xx"] for f in floods),
        "p99_ms": max(f["p99_us"] for f in floods) / 1000,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
