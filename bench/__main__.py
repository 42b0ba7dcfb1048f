"""Benchmark the service against the framework floor: `bench/run [--quick]` (bench/README.md).

The service runs under `gunicorn` with the repository's gunicorn.conf.py and two workers (as
`serve` runs them) on 127.0.0.1, on a fresh SQLite file seeded through its API. The floor is a
bare Flask app with constant bodies copied from the service's own answers, run twice: with
gunicorn's sync workers (the first line every ratio is taken against) and under the service's
own configuration. json-server, a peer, serves the same agents from a JSON file. With
`--postgresql URL` the service is measured on fresh schemas of that server too. Each scenario
runs in rounds that take every server in turn, so their ratios are taken under the same
conditions.
"""

import argparse
import json
import shlex
import socket
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench import agents, json_server, load, report, scale
from tests.live_server import LiveServer
from tests.postgresql import fresh_schema

RESULTS = Path(__file__).with_name("results.md")
FLOOR_APP = "bench.floor_app:create_app()"
WORKERS = 2
# Scenario name, wrk script, and the data files it reads (keys of `files` below).
SCENARIOS = (
    ("GET one", "get_one", ("ids",)),
    ("GET list page (limit=100)", "list_page", ("list_path",)),
    ("POST", "post", ("posts",)),
    ("PATCH", "patch", ("ids", "patches")),
    ("90/10 mix", "mix", ("ids", "posts", "patches")),
)
SCALED = ("get_one", "list_page")
DISTINCT_BODIES = 200
LIST_PAGE = "/agents?limit=100"
# json-server pages with _limit; `limit` would be a filter on a field of that name.
JSON_SERVER_LIST_PAGE = "/agents?_limit=100"


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
    parser.add_argument(
        "--no-peer", action="store_true", help="leave json-server out (in by default; quick: out)"
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
    if options.output is None and not quick and not options.scale:
        options.output = RESULTS
    options.peer = not (options.no_peer or quick)
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
    report.publish(markdown, options.output)
    return 0 if report.all_answered(runs) else 1


def _measure(folder, urls, options):
    """Seed each server's agents, then drive them all. `urls` names the databases: the
    service's and the scale run's on SQLite, and on PostgreSQL when asked."""
    engines = [name for name in ("service", "postgresql") if name in urls]
    scale_ids = {}
    if options.scale_agents:
        for engine in engines:
            scale = _scale_database(engine)
            print(f"Seeding {options.scale_agents:,} agents into {scale}...", file=sys.stderr)
            ids = agents.seed_directly(urls[scale], options.scale_agents)
            scale_ids[engine] = agents.write_lines(folder / f"{scale}_ids.txt", ids)
    if options.peer:
        json_server.install()

    with ExitStack() as running:
        services = {}
        ids = {}
        for engine in engines:
            services[engine] = running.enter_context(
                LiveServer(urls[engine], workers=WORKERS, log_path=folder / f"{engine}.log")
            )
            print(f"Seeding {options.agents:,} agents through the API...", file=sys.stderr)
            seeded = agents.seed_through_api(services[engine].url, options.agents)
            ids[engine] = agents.write_lines(folder / f"{engine}_ids.txt", seeded)
        service = services["service"]
        first_id = ids["service"].read_text().split()[0]
        first_new = options.agents
        files = {
            "ids": ids["service"],
            "posts": agents.write_bodies(
                folder / "posts.txt",
                map(agents.agent_body, range(first_new, first_new + DISTINCT_BODIES)),
            ),
            "patches": agents.write_bodies(
                folder / "patches.txt", map(agents.patch_body, range(DISTINCT_BODIES))
            ),
            "list_path": LIST_PAGE,
        }
        floor_bodies = folder / "floor.json"
        floor_bodies.write_text(
            json.dumps(
                {
                    "agent": requests.get(f"{service.url}/agents/{first_id}", timeout=10).text,
                    "list": requests.get(f"{service.url}{LIST_PAGE}", timeout=10).text,
                }
            )
        )
        floors = [
            LiveServer(
                folder / f"floor-{name}.db",
                workers=WORKERS,
                app=FLOOR_APP,
                arguments=arguments,
                BENCH_FLOOR_BODIES=str(floor_bodies),
            )
            for name, arguments in (("sync", ["--worker-class", "sync"]), ("gthread", []))
        ]
        targets = [
            report.Target("floor (sync)", floors[0], options.agents, files),
            report.Target("floor (gthread)", floors[1], options.agents, files),
        ]
        for engine in engines:
            own = {**files, "ids": ids[engine]}
            targets.append(report.Target(engine, services[engine], options.agents, own))
        if options.peer:
            peer = json_server.JsonServer(folder, _every_agent(service.url), _free_port())
            peer_files = {**files, "list_path": JSON_SERVER_LIST_PAGE}
            targets.append(report.Target("json-server", peer, options.agents, peer_files))
        for engine, engine_ids in scale_ids.items():
            scale = _scale_database(engine)
            server = LiveServer(urls[scale], workers=WORKERS, log_path=folder / f"{scale}.log")
            scale_files = {**files, "ids": engine_ids}
            targets.append(report.Target(engine, server, options.scale_agents, scale_files))
        for target in targets:
            if target.server not in services.values():
                running.enter_context(target.server)
        return _drive_all(targets, options)


def _every_agent(url):
    """Every agent the service at `url` holds, read a page at a time: one answer of all 1,000
    (2.5 MB) raised a worker's peak RSS from 56.5 to 63.3 MB, more than any benchmarked request
    does, and the benchmark reports that peak."""
    agents_read, query = [], {"limit": 100}
    while True:
        page = requests.get(f"{url}/agents", params=query, timeout=60).json()
        agents_read += page["agents"]
        if not page["has_more"]:
            return agents_read
        query["cursor"] = page["next_cursor"]


def _scale_database(engine):
    return "scale" if engine == "service" else f"{engine} scale"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _drive_all(all_targets, options):
    """Run each scenario in rounds that take the servers in turn, so drift hits all alike."""
    rows = []
    for name, script, inputs in SCENARIOS:
        if options.scenario and script not in options.scenario:
            continue
        targets = [
            target for target in all_targets if target.stored == options.agents or script in SCALED
        ]
        print(f"{name}: {', '.join(f'{t.name} at {t.stored:,}' for t in targets)}", file=sys.stderr)
        arguments = {id(target): [target.files[key] for key in inputs] for target in targets}
        for target in targets:
            load.warm_up(
                target.server, script, arguments[id(target)], options.warm_up, options.connections
            )
        rounds = {id(target): [] for target in targets}
        for _ in range(options.rounds):
            for target in targets:
                rounds[id(target)].append(
                    load.drive(
                        target.server,
                        script,
                        arguments[id(target)],
                        options.duration,
                        options.connections,
                    )
                )
        rows += [
            report.Row(name, script, target.name, target.stored, load.combine(rounds[id(target)]))
            for target in targets
        ]
    return rows


def _command(argv):
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join(["bench/run", *arguments])


if __name__ == "__main__":
    sys.exit(main())
