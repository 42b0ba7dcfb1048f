"""What test mode costs a create: `bench/run --test-mode` (bench/README.md).

Two apps in this one process on fresh SQLite files, one outside test mode and one in it, are
measured two ways: the same POST bodies through WSGI (outside test mode a plain create is
answered before Flask, routes/fast_writes.py; in test mode every request goes through Flask and
test mode's hooks), and the create itself, models.create_agent with the store's clock and ids
(in test mode the namespace's frozen clock and id seed), the measure the 1.25 target is set on.
Store-only (the default), neither fsyncs; `--as-served` fsyncs outside test mode, as `serve`
runs it. Rounds take the two apps in turn (each round in the other order), and each figure is
the median over rounds of the CPU time (time.process_time) per item.
"""

import argparse
import cProfile
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import orjson
from werkzeug.test import EnvironBuilder

import catalog
import models
from app import create_app
from bench import agents
from schemas import AGENT

TARGET = 1.25
# Requests sent to each app before measuring: the first of each compiles, caches and opens.
WARM_UP = 50


def parse_options(argv):
    parser = argparse.ArgumentParser(
        prog="bench/run --test-mode", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--posts", type=int, default=500, help="POSTs per app per round (500)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--as-served",
        action="store_true",
        help="fsync each write outside test mode, as `serve` runs it (store-only: neither does)",
    )
    parser.add_argument(
        "--profile", type=Path, help="write each mode's cProfile stats to DIR/<mode>.prof"
    )
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_options(argv)
    bodies = [orjson.dumps(agents.agent_body(index)) for index in range(options.posts)]
    with tempfile.TemporaryDirectory(prefix="agents-bench-test-mode-") as folder:
        apps = {
            "outside": service(Path(folder) / "plain.db", False, options.as_served),
            "test mode": service(Path(folder) / "test.db", True, options.as_served),
        }
        profiles = {name: cProfile.Profile() for name in apps} if options.profile else {}
        for app in apps.values():
            post_all(app, bodies[:WARM_UP])
        per_post = interleaved(
            apps, options.rounds, lambda name: post_all(apps[name], bodies, profiles.get(name))
        )
        loaded = {name: valid_fields(app, bodies) for name, app in apps.items()}
        per_create = interleaved(
            apps, options.rounds, lambda name: create_all(apps[name], loaded[name])
        )
        for app in apps.values():
            app.extensions["store"].engine.close()
    if options.profile:
        options.profile.mkdir(parents=True, exist_ok=True)
        for name, profile in profiles.items():
            profile.dump_stats(options.profile / f"{name.replace(' ', '-')}.prof")
    print(report_of(per_post, per_create, options))
    return 0


def interleaved(apps, rounds, run):
    """CPU µs per item of `run(name)` for each app, by round, taking the apps in turn (each
    round in the other order)."""
    figures = {name: [] for name in apps}
    for round_number in range(rounds):
        order = list(apps) if round_number % 2 == 0 else list(reversed(apps))
        for name in order:
            cpu, items = run(name)
            figures[name].append(cpu / items * 1e6)
    return figures


def service(path, test_mode, as_served):
    """An app on a fresh file; it fsyncs only when served outside test mode and `as_served`."""
    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "TEST_MODE": test_mode})
    store = app.extensions["store"]
    store.engine.durable = as_served and not test_mode
    store.prepare()
    return app


def post_all(app, bodies, profile=None):
    """POST each body to /agents through WSGI; returns the CPU seconds the app spent."""
    environs = [
        EnvironBuilder(
            path="/agents", method="POST", data=body, content_type="application/json"
        ).get_environ()
        for body in bodies
    ]
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    began = time.process_time()
    with profile or nullcontext():
        for environ in environs:
            answer = app(environ, start_response)
            b"".join(answer)
            getattr(answer, "close", lambda: None)()
    spent = time.process_time() - began
    refused = [status for status in statuses if not status.startswith("201")]
    if refused:
        sys.exit(f"a POST was answered {refused[0]}")
    return spent, len(bodies)


def valid_fields(app, bodies):
    """Each body as a POST's view has it once valid, under the app's catalog."""
    with catalog.activated(app.extensions["catalog"]):
        return [AGENT.load(orjson.loads(body)) for body in bodies]


def create_all(app, fields):
    """Store each agent as a POST's view does once it is valid (models.create_agent, with the
    store's clock and ids: in test mode the namespace's); returns (CPU seconds, creates)."""
    store = app.extensions["store"]
    with store.activated():
        store.engine.open()
        began = time.process_time()
        for agent in fields:
            models.create_agent(agent)
        return time.process_time() - began, len(fields)


def report_of(per_post, per_create, options):
    measure = "as served (fsync outside test mode only)" if options.as_served else "store-only"
    rounds = f"over {options.rounds} interleaved rounds of {options.posts}"
    return "\n".join(
        (
            f"POST /agents through WSGI, one process, {measure}: median CPU per POST {rounds}",
            *_figures(per_post),
            f"The create itself (models.create_agent with the store's clock and ids), {measure}: "
            f"median CPU per create {rounds}",
            *_figures(per_create, TARGET),
        )
    )


def _figures(per_item, target=None):
    lines = [
        f"  {name:<9} {statistics.median(figures):7,.0f} µs  "
        f"(rounds: {', '.join(f'{figure:,.0f}' for figure in figures)})"
        for name, figures in per_item.items()
    ]
    ratio = statistics.median(per_item["test mode"]) / statistics.median(per_item["outside"])
    verdict = (
        "" if target is None else f"  (target {target}: {'met' if ratio <= target else 'not met'})"
    )
    return [*lines, f"  ratio     {ratio:7.2f}{verdict}"]


if __name__ == "__main__":
    sys.exit(main())
