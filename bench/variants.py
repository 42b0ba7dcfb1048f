"""What a path family and the rate limits cost: `bench/run --variants` (bench/README.md).

GET one and POST against one service through `/agents` and through `/assistants`, and against a
second service on the same file with `AGENTS_RATE_LIMIT` set high enough never to refuse, so
every request is counted in the database as a limited one would be. The servers are taken in turn
round by round, as in the main benchmark, and every figure is a ratio to `/agents` without limits.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from bench import agents, load, report
from tests.live_server import LiveServer

WORKERS = 2
VARIANTS = (
    ("/agents", "/agents", False),
    ("/assistants", "/assistants", False),
    ("/agents, rate limits on", "/agents", True),
)
SCENARIOS = (("GET one", "get_one", "ids"), ("POST", "post", "posts"))
# Counted like any limit, never reached in a run.
NEVER_REACHED = "100000000/hour"


def parse_options(argv):
    parser = argparse.ArgumentParser(
        prog="bench/run --variants", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--agents", type=int, default=1000, help="agents seeded (1000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per scenario (6)")
    parser.add_argument("--duration", type=int, default=2, help="seconds of each round (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections (32)")
    parser.add_argument("--output", type=Path, help="where the markdown goes (nowhere)")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="agents-bench-variants-") as folder:
        results = measure(Path(folder), options)
    markdown = markdown_of(results, options)
    report.publish(markdown, options.output)
    answered = all(run.non_2xx == 0 and run.socket_errors == 0 for run in results.values())
    return 0 if answered else 1


def measure(folder, options):
    database = folder / "agents.db"
    with (
        LiveServer(database, workers=WORKERS) as plain,
        LiveServer(
            database,
            workers=WORKERS,
            log_path=folder / "limited.log",
            AGENTS_RATE_LIMIT=NEVER_REACHED,
        ) as limited,
    ):
        files = {
            "ids": agents.write_lines(
                folder / "ids.txt", agents.seed_through_api(plain.url, options.agents)
            ),
            "posts": agents.write_bodies(
                folder / "posts.txt",
                map(agents.agent_body, range(options.agents, options.agents + 200)),
            ),
        }
        results = {}
        for scenario, script, data in SCENARIOS:
            print(f"{scenario}: {', '.join(name for name, _, _ in VARIANTS)}", file=sys.stderr)
            rounds = {name: [] for name, _, _ in VARIANTS}
            for _, path, limits in VARIANTS:
                server = limited if limits else plain
                load.warm_up(server, script, [files[data], path], 1, options.connections)
            for _ in range(options.rounds):
                for name, path, limits in VARIANTS:
                    server = limited if limits else plain
                    rounds[name].append(
                        load.drive(
                            server,
                            script,
                            [files[data], path],
                            options.duration,
                            options.connections,
                        )
                    )
            for name in rounds:
                results[scenario, name] = load.combine(rounds[name])
        return results


def markdown_of(results, options):
    lines = [
        "# Path families and rate limits",
        "",
        f"{WORKERS} workers as `serve` runs them, {options.agents:,} agents, wrk at "
        f"{options.connections} connections, {options.rounds} rounds of {options.duration} s "
        "taking the variants in turn; each variant's fastest round.",
        "",
        "## Figures",
        "",
        "| Scenario | Variant | req/s | Ratio to /agents | CPU µs/req | CPU ratio | p99 ms "
        "| Non-2xx |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for scenario, _, _ in SCENARIOS:
        base = results[scenario, VARIANTS[0][0]]
        for name, _, _ in VARIANTS:
            run = results[scenario, name]
            lines.append(
                f"| {scenario} | {name} | {run.requests_per_second:,.0f} | "
                f"{run.requests_per_second / base.requests_per_second:.2f} | "
                f"{run.cpu_us_per_request:,.0f} | "
                f"{run.cpu_us_per_request / base.cpu_us_per_request:.2f} | "
                f"{run.p99_ms:.1f} | {run.non_2xx} |"
            )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    sys.exit(main())
