"""Benchmark the service against the framework floor: `bench/run [--quick]` (bench/README.md).

Both run under `gunicorn` with the repository's gunicorn.conf.py and two workers (of two
threads each, as `serve` runs them) on 127.0.0.1; the service on a fresh SQLite file seeded
through its API, the floor with constant bodies copied from the service's own answers. With
`--postgresql URL` the service is measured on fresh schemas of that server too, in the same
rounds. Each
scenario runs in rounds that take the floor and the service in turn, so the ratio of the two is
taken under the same conditions.
"""

import argparse
import json
import shlex
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench import agents, load, report
from tests.live_server import LiveServer
from tests.postgresql import fresh_schema

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
        "--output", type=Path, help="where the markdown goes (bench/results.md; quick: nowhere)"
    )
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        help="also run the service on this PostgreSQL server, on fresh schemas dropped after "
        "(e.g. postgresql://root@127.0.0.1:5432/test)",
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
    if options.output is None and not quick:
        options.output = RESULTS
    return options


def main(argv=None):
    """Run every scenario; print the results and write them where --output says."""
    options = parse_options(argv)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="agents-bench-") as folder, ExitStack() as schemas:
        urls = {
            "service": f"sqlite:///{folder}/service.db",
            "scale": f"sqlite:///{folder}/scale.db",
        }
        if options.postgresql:
            urls["postgresql"] = schemas.enter_context(fresh_schema(options.postgresql))
            urls["postgresql scale"] = schemas.enter_context(fresh_schema(options.postgresql))
        runs = _measure(Path(folder), urls, options)
    markdown = report.markdown(runs, options, started, _command(argv))
    print(markdown)
    if options.output:
        options.output.write_text(markdown)
    return 0 if report.all_answered(runs) else 1


def _measure(folder, urls, options):
    """Seed each server's agents, then drive them all. `urls` names the databases: the
    service's and the scale run's on SQLite, and on PostgreSQL when asked."""
    engines = [name for name in ("service", "postgresql") if name in urls]
    files = {}
    if options.scale_agents:
        for engine in engines:
            scale = "scale" if engine == "service" else f"{engine} scale"
            print(f"Seeding {options.scale_agents:,} agents into {scale}...", file=sys.stderr)
            scale_ids = agents.seed_directly(urls[scale], options.scale_agents)
            files[scale, "ids"] = agents.write_lines(folder / f"{scale}_ids.txt", scale_ids)

    with ExitStack() as running:
        servers = {}
        for engine in engines:
            servers[engine] = running.enter_context(
                LiveServer(
                    folder / f"{engine}.db", workers=WORKERS, AGENTS_DATABASE_URL=urls[engine]
                )
            )
            print(f"Seeding {options.agents:,} agents through the API...", file=sys.stderr)
            ids = agents.seed_through_api(servers[engine].url, options.agents)
            files[engine, "ids"] = agents.write_lines(folder / f"{engine}_ids.txt", ids)
        service = servers["service"]
        files["ids"] = files["service", "ids"]
        ids = files["ids"].read_text().split()
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
        floor = running.enter_context(
            LiveServer(
                folder / "floor.db",
                workers=WORKERS,
                app=FLOOR_APP,
                BENCH_FLOOR_BODIES=str(floor_bodies),
            )
        )
        targets = [("floor", floor, options.agents, None)]
        for engine in engines:
            targets.append((engine, servers[engine], options.agents, engine))
            if options.scale_agents:
                scale = "scale" if engine == "service" else f"{engine} scale"
                server = LiveServer(
                    folder / f"{scale}.db", workers=WORKERS, AGENTS_DATABASE_URL=urls[scale]
                )
                targets.append((engine, running.enter_context(server), options.scale_agents, scale))
        return _drive_all(targets, files, options)


def _drive_all(targets, files, options):
    """Run each scenario in rounds that take the servers in turn, so drift hits all alike.

    `targets` are (name, server, agents stored, its key in `files` for ids of its own).
    """
    rows = []
    for name, script, inputs in SCENARIOS:
        if options.scenario and script not in options.scenario:
            continue
        chosen = [target for target in targets if target[2] == options.agents or script in SCALED]
        arguments = {
            server: [files.get((own, key)) or files[key] for key in inputs]
            for _, server, _, own in chosen
        }
        print(
            f"{name}: {', '.join(f'{n} at {stored:,}' for n, _, stored, _ in chosen)}",
            file=sys.stderr,
        )
        for _, server, _, _ in chosen:
            load.warm_up(server, script, arguments[server], options.warm_up, options.connections)
        rounds = {server: [] for _, server, _, _ in chosen}
        for _ in range(options.rounds):
            for _, server, _, _ in chosen:
                rounds[server].append(
                    load.drive(
                        server, script, arguments[server], options.duration, options.connections
                    )
                )
        rows += [
            report.Row(name, script, server_name, stored, load.combine(rounds[server]))
            for server_name, server, stored, _ in chosen
        ]
    return rows


def _command(argv):
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join(["bench/run", *arguments])


if __name__ == "__main__":
    sys.exit(main())
