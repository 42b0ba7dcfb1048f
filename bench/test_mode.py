"""What test mode costs a create: `bench/run --test-mode` (bench/README.md).

The same POST bodies go through WSGI, in this one process, to two apps on fresh SQLite files:
one outside test mode and one in it. Store-only (the default), neither fsyncs, so only what the
store does differs; `--as-served` fsyncs outside test mode, as `serve` runs it. Rounds take the
two apps in turn (each round in the other order), and each figure is the median over rounds of
the CPU time (time.process_time) per POST.
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

from app import create_app
from bench import agents

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
        per_post = {name: [] for name in apps}
        for round_number in range(options.rounds):
            order = list(apps) if round_number % 2 == 0 else list(reversed(apps))
            for name in order:
                cpu = post_all(apps[name], bodies, profiles.get(name))
                per_post[name].append(cpu / len(bodies) * 1e6)
        for app in apps.values():
            app.extensions["store"].engine.close()
    if options.profile:
        options.profile.mkdir(parents=True, exist_ok=True)
        for name, profile in profiles.items():
            profile.dump_stats(options.profile / f"{name.replace(' ', '-')}.prof")
    print(report_of(per_post, options))
    return 0


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
    return spent


def report_of(per_post, options):
    outside = statistics.median(per_post["outside"])
    test_mode = statistics.median(per_post["test mode"])
    ratio = test_mode / outside
    measure = "as served (fsync outside test mode only)" if options.as_served else "store-only"
    lines = [
        f"POST /agents through WSGI, one process, {measure}: median CPU per POST over "
        f"{options.rounds} interleaved rounds of {options.posts}",
        *(
            f"  {name:<9} {statistics.median(figures):7,.0f} µs  "
            f"(rounds: {', '.join(f'{figure:,.0f}' for figure in figures)})"
            for name, figures in per_post.items()
        ),
        f"  ratio     {ratio:7.2f}  (target {TARGET}: {'met' if ratio <= TARGET else 'not met'})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
