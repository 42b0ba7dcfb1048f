"""Benchmark the service against the framework floor: `bench/run [--quick]` (bench/README.md).

Both run under `gunicorn` with the repository's gunicorn.conf.py and two workers (of two
threads each, as `serve` runs them) on 127.0.0.1; the service on a fresh SQLite file seeded
through its API, the floor with constant bodies copied from the service's own answers. Each
scenario runs in rounds that take the floor and the service in turn, so the ratio of the two is
taken under the same conditions.
"""

import argparse
import json
import shlex
import sys
import tempfile
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench import agents, load, report, scale
from tests.live_server import LiveServer

RESULTS = Path(__file__).with_name("results.md")
FLOOR_APP = "bench.floor_app:create_app()"
WORKERS = 2
# Scenario name, wrk script, and the data files it reads (keys of `files` below).
SCENARIOS = (
    ("GET one", "get_one", ("ids",)),
    ("GET list page (limit=100)", "list_page", ()),
    ("POST", "post", ("posts",)),
    ("PATCH", "patch", ("ids", "patches")),
    ("90/10 mix", "mix", ("ids", "posts", "patches")),
)
SCALED = ("get_one", "list_page")
DISTINCT_BODIES = 200


def parse_options(argv):
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run with few agents and no 100,000-agent scale runs, "
        "to check that the benchmark works",
    )
    parser.add_argument(
        "--duration",
        type=int,
        help="seconds of each round of each scenario on each server (2; quick 1)",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds per scenario, taking the servers in turn (8; quick 1)"
    )
    parser.add_argument("--warm-up", type=int, help="unmeasured seconds before each (2; quick 0)")
    parser.add_argument("--agents", type=int, help="agents seeded through the API (1000; quick 50)")
    parser.add_argument(
        "--scale-agents", type=int, help="agents in the scale runs, 0 for none (100000; quick 0)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections (32)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[script for _, script, _ in SCENARIOS],
        help="run only this scenario (repeatable; all by default)",
    )
    parser.add_argument(
        "--scale",
        type=lambda text: [int(count) for count in text.split(",")],
        help="instead: the scale runs at these agent counts, e.g. 1000,100000 (bench/scale.py)",
    )
    parser.add_argument("--page-size", type=int, help="the scale runs' SQLite page size")
    parser.add_argument(
        "--stop-import-after", type=float, help="seconds after which a scale run stops an import"
    )
    parser.add_argument(
        "--output", type=Path, help="where the markdown goes (bench/results.md; quick: nowhere)"
    )
    options = parser.parse_args(argv)
    quick = options.quick
    # Many short rounds rather than a few long ones: on a shared machine some rounds of a server
    # run far slower than others (within one run, 502 to 1,171 req/s for the same list page), and
    # more rounds make it likelier that each server has one the machine left alone.
    defaults = {
        "duration": (2, 1),
        "rounds": (8, 1),
        "warm_up": (2, 0),
        "agents": (1000, 50),
        "scale_agents": (100_000, 0),
    }
    for name, (full, short) in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, short if quick else full)
    if options.output is None and not quick and not options.scale:
        options.output = RESULTS
    return options


def main(argv=None):
    """Run every scenario; print the results and write them where --output says."""
    options = parse_options(argv)
    if options.scale:
        return scale.main(
            options.scale,
            options.output or scale.RESULTS,
            options.page_size,
            options.stop_import_after,
        )
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="agents-bench-") as folder:
        runs = _measure(Path(folder), options)
    markdown = report.markdown(runs, options, started, _command(argv))
    print(markdown)
    if options.output:
        options.output.write_text(markdown)
    return 0 if report.all_answered(runs) else 1


def _measure(folder, options):
    files = {}
    scale_server = None
    if options.scale_agents:
        print(f"Seeding {options.scale_agents:,} agents into SQLite...", file=sys.stderr)
        scale_ids = agents.seed_into_sqlite(folder / "scale.db", options.scale_agents)
        files["scale_ids"] = agents.write_lines(folder / "scale_ids.txt", scale_ids)

    with LiveServer(folder / "service.db", workers=WORKERS) as service:
        print(f"Seeding {options.agents:,} agents through the API...", file=sys.stderr)
        ids = agents.seed_through_api(service.url, options.agents)
        files["ids"] = agents.write_lines(folder / "ids.txt", ids)
        first_new = options.agents
        files["posts"] = agents.write_bodies(
            folder / "posts.txt",
            map(agents.agent_body, range(first_new, first_new + DISTINCT_BODIES)),
        )
        files["patches"] = agents.write_bodies(
            folder / "patches.txt", map(agents.patch_body, range(DISTINCT_BODIES))
        )
        floor_bodies = folder / "floor.json"
        floor_bodies.write_text(
            json.dumps(
                {
                    "agent": requests.get(f"{service.url}/agents/{ids[0]}", timeout=10).text,
                    "list": requests.get(f"{service.url}/agents?limit=100", timeout=10).text,
                }
            )
        )
        floor = LiveServer(
            folder / "floor.db",
            workers=WORKERS,
            app=FLOOR_APP,
            BENCH_FLOOR_BODIES=str(floor_bodies),
        )
        if options.scale_agents:
            scale_server = LiveServer(folder / "scale.db", workers=WORKERS)
        with floor, scale_server or nullcontext():
            return _drive_all(floor, service, scale_server, files, options)


def _drive_all(floor, service, scale_server, files, options):
    """Run each scenario in rounds that take the servers in turn, so drift hits all alike."""
    rows = []
    for name, script, inputs in SCENARIOS:
        if options.scenario and script not in options.scenario:
            continue
        targets = [("floor", floor, options.agents), ("service", service, options.agents)]
        if scale_server and script in SCALED:
            targets.append(("service", scale_server, options.scale_agents))
        arguments = {
            server: [
                files["scale_ids" if server is scale_server and key == "ids" else key]
                for key in inputs
            ]
            for _, server, _ in targets
        }
        print(
            f"{name}: {', '.join(f'{n} at {stored:,}' for n, _, stored in targets)}",
            file=sys.stderr,
        )
        for _, server, _ in targets:
            load.warm_up(server, script, arguments[server], options.warm_up, options.connections)
        rounds = {server: [] for _, server, _ in targets}
        for _ in range(options.rounds):
            for _, server, _ in targets:
                rounds[server].append(
                    load.drive(
                        server, script, arguments[server], options.duration, options.connections
                    )
                )
        rows += [
            report.Row(name, script, server_name, stored, load.combine(rounds[server]))
            for server_name, server, stored in targets
        ]
    return rows


def _command(argv):
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join(["bench/run", *arguments])


if __name__ == "__main__":
    sys.exit(main())
