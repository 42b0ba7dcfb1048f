"""Driving a server with wrk and reading back what it measured."""

import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from bench import processes

LUA = Path(__file__).with_name("lua")
# wrk runs each thread's init in turn, starting each thread as soon as its own init is done, and
# starts its clock only once all are: with two threads, the requests the first made while the
# second read 100,000 ids were counted and their time was not, overstating req/s by up to 4x.
# One wrk thread spends about 65 µs of CPU a request: enough for five times the floor's rate.
THREADS = 1


@dataclass
class Run:
    """One scenario against one server: wrk's figures and the server's own counters."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    cpu_us_per_request: float
    peak_rss_mb: float
    # The slowest and fastest round's req/s, once rounds are combined.
    spread: tuple = ()


def wrk_path():
    """The wrk executable; bench/run installs it when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "wrk is not installed; run the benchmark with bench/run, which installs it."
        )
    return path


def warm_up(server, script, arguments, seconds, connections):
    """Load the server unmeasured, so every code path and page is warm when measuring starts."""
    if seconds:
        _wrk(server.url, script, arguments, seconds, connections)


def drive(server, script, arguments, seconds, connections):
    """Run `script` against `server` for `seconds`; wrk's figures and the server's counters."""
    master = server.process.pid
    cpu_before = processes.cpu_seconds(master)
    figures = _wrk(server.url, script, arguments, seconds, connections)
    cpu = processes.cpu_seconds(master) - cpu_before
    return Run(
        requests=figures["requests"],
        requests_per_second=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        cpu_us_per_request=cpu * 1e6 / max(figures["requests"], 1),
        peak_rss_mb=processes.peak_worker_rss_mb(master),
    )


def combine(runs):
    """Rounds of one scenario on one server as one run: the figures of its fastest round.

    A busy machine only ever slows a round down, so the fastest round is the least disturbed;
    the requests, failures and memory of every round are still counted.
    """
    best = max(runs, key=lambda run: run.requests_per_second)
    return replace(
        best,
        requests=sum(run.requests for run in runs),
        non_2xx=sum(run.non_2xx for run in runs),
        socket_errors=sum(run.socket_errors for run in runs),
        peak_rss_mb=max(run.peak_rss_mb for run in runs),
        spread=(min(run.requests_per_second for run in runs), best.requests_per_second),
    )


def _wrk(url, script, arguments, seconds, connections):
    command = [
        wrk_path(),
        "--threads",
        str(min(THREADS, connections)),
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--script",
        f"{script}.lua",
        url,
        "--",
        *map(str, arguments),
    ]
    finished = subprocess.run(
        command, cwd=LUA, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    for line in finished.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise RuntimeError(f"wrk printed no figures:\n{finished.stdout}\n{finished.stderr}")
