"""The benchmark's results as markdown: ratios to the floors, the targets, and the raw figures."""

import os
import platform
import subprocess
from dataclasses import dataclass

from bench.load import THREADS, Run, wrk_path

FLOOR = "floor (sync)"
SAME_CONFIG_FLOOR = "floor (gthread)"
FLOORS = (FLOOR, SAME_CONFIG_FLOOR)


@dataclass
class Target:
    """A server the scenarios drive: its name in the results, and the inputs its scripts read."""

    name: str
    server: object
    stored: int
    files: dict


@dataclass
class Row:
    """One run: which scenario, against which server, with how many agents stored."""

    scenario: str
    script: str
    server: str
    stored: int
    run: Run


def publish(markdown, output):
    """Print a run's markdown, and write it to `output` too when one is given."""
    print(markdown)
    if output:
        output.write_text(markdown)


def all_answered(rows):
    """True when no run saw a non-2xx answer or a socket error."""
    return all(row.run.non_2xx == 0 and row.run.socket_errors == 0 for row in rows)


def markdown(rows, options, started, command):
    """The whole results document."""
    figures = _Figures(rows, options.agents)
    lines = [
        "# Benchmark results",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}` on {_machine()}. "
        f"wrk with {THREADS} thread(s) and {options.connections} connections; each scenario "
        f"warms every server up for {options.warm_up} s, then runs {options.rounds} round(s) "
        f"of {options.duration} s on each in turn, and each server's figures are those of its "
        "fastest round (a busy machine only ever slows a round down); requests, failures and "
        "memory count every round, and the raw figures give the slowest and fastest round's "
        "req/s. "
        "The service runs under gunicorn with the repository's gunicorn.conf.py (as `serve` "
        "runs it) and 2 workers on 127.0.0.1, on a fresh SQLite file (WAL, every write fsynced "
        f"before it is answered) holding {options.agents:,} agents POSTed through its API "
        "before the runs. The floor is a bare Flask app (bench/floor_app.py) answering the same "
        "routes with the service's own bodies as constants, with 2 gunicorn workers of the "
        "sync class, the cheapest gunicorn has (it reads and answers one request a "
        "connection); the same floor under the service's own configuration is the second "
        "line. json-server 0.17 (Node.js, one process, bench/peers/) serves the same agents "
        "from its JSON file. Every figure below comes from this one run.",
        "",
        "## Ratios to the floors",
        "",
        "| Scenario | Server | Agents | req/s | Ratio to sync floor "
        "| Ratio to gthread floor | CPU µs/req | CPU ratio to sync floor |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        floor = figures.floor(row.script)
        same_config = figures.floor(row.script, SAME_CONFIG_FLOOR)
        if row.server == FLOOR:
            continue
        lines.append(
            f"| {row.scenario} | {row.server} | {row.stored:,} "
            f"| {row.run.requests_per_second:,.0f} "
            f"| {row.run.requests_per_second / floor.requests_per_second:.2f} "
            f"| {row.run.requests_per_second / same_config.requests_per_second:.2f} "
            f"| {row.run.cpu_us_per_request:.0f} "
            f"| {row.run.cpu_us_per_request / floor.cpu_us_per_request:.2f} |"
        )
    lines += ["", "## Targets", "", "| Target | Measured | Met |", "|---|--:|---|"]
    for label, measured, met in figures.targets():
        lines.append(f"| {label} | {measured} | {'yes' if met else '**no**'} |")
    lines += _engines(rows)
    lines += [
        "",
        "## Raw figures",
        "",
        "| Scenario | Server | Agents | Requests (all rounds) | req/s | Rounds' req/s "
        "| p50 ms | p99 ms | CPU µs/req | Non-2xx | Socket errors | Peak RSS/worker MB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        run = row.run
        slowest, fastest = run.spread
        lines.append(
            f"| {row.scenario} | {row.server} | {row.stored:,} | {run.requests:,} "
            f"| {run.requests_per_second:,.0f} | {slowest:,.0f} to {fastest:,.0f} "
            f"| {run.p50_ms:.2f} | {run.p99_ms:.2f} "
            f"| {run.cpu_us_per_request:.0f} | {run.non_2xx} | {run.socket_errors} "
            f"| {run.peak_rss_mb:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _engines(rows):
    """The service on PostgreSQL beside the same scenario on SQLite, when it was measured."""
    sqlite = {(row.script, row.stored): row.run for row in rows if row.server == "service"}
    shared = [row for row in rows if row.server == "postgresql"]
    if not shared:
        return []
    lines = [
        "",
        "## PostgreSQL beside SQLite",
        "",
        "| Scenario | Agents | SQLite req/s | PostgreSQL req/s | Ratio | SQLite p99 ms "
        "| PostgreSQL p99 ms | CPU µs/req (SQLite) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in shared:
        other = sqlite.get((row.script, row.stored))
        if other is None:
            continue
        lines.append(
            f"| {row.scenario} | {row.stored:,} | {other.requests_per_second:,.0f} "
            f"| {row.run.requests_per_second:,.0f} "
            f"| {row.run.requests_per_second / other.requests_per_second:.2f} "
            f"| {other.p99_ms:.1f} | {row.run.p99_ms:.1f} "
            f"| {row.run.cpu_us_per_request:.0f} ({other.cpu_us_per_request:.0f}) |"
        )
    return lines


class _Figures:
    """Look-ups into one run's rows."""

    def __init__(self, rows, agents):
        self.rows = rows
        self.agents = agents

    def floor(self, script, name=FLOOR):
        return self._run(name, script, self.agents)

    def service(self, script, stored=None):
        return self._run("service", script, stored or self.agents)

    def _run(self, server, script, stored):
        for row in self.rows:
            if (row.server, row.script, row.stored) == (server, script, stored):
                return row.run
        return None

    def ratio(self, script):
        return self.service(script).requests_per_second / self.floor(script).requests_per_second

    def targets(self):
        """(label, measured, met) for every target the run can speak to."""
        get_one = self.service("get_one")
        if get_one:
            yield self._ratio_target("get_one", "GET one", 0.90)
            floor_p99 = self.floor("get_one").p99_ms
            yield (
                "GET one p99 ≤ 2 × the floor's",
                f"{get_one.p99_ms:.1f} ms (floor {floor_p99:.1f} ms)",
                get_one.p99_ms <= 2 * floor_p99,
            )
        if self.service("list_page"):
            yield self._ratio_target("list_page", "List page", 0.60)
        service_rows = [row for row in self.rows if row.server == "service"]
        for row in service_rows:
            if row.stored != self.agents:
                yield self._scale_target(row)
        if self.service("post"):
            yield self._ratio_target("post", "POST", 0.25)
        if self.service("patch"):
            yield self._ratio_target("patch", "PATCH", 0.25)
        if get_one:
            cpu_ratio = get_one.cpu_us_per_request / self.floor("get_one").cpu_us_per_request
            yield "CPU per GET one ≤ 1.3 × the floor's", f"{cpu_ratio:.2f}", cpu_ratio <= 1.3
        peak_rss = max(row.run.peak_rss_mb for row in service_rows)
        yield "Peak RSS per worker ≤ 60 MB", f"{peak_rss:.1f} MB", peak_rss <= 60
        failures = sum(row.run.non_2xx + row.run.socket_errors for row in self.rows)
        yield "Non-2xx answers and socket errors, all runs", str(failures), failures == 0

    def _ratio_target(self, script, label, minimum):
        ratio = self.ratio(script)
        return f"{label} ≥ {minimum:.2f} of the sync floor", f"{ratio:.2f}", ratio >= minimum

    def _scale_target(self, row):
        small = self.service(row.script)
        own = row.run.requests_per_second / small.requests_per_second
        # The inverse ratio of CPU per request says the same with less noise from the machine.
        cpu = small.cpu_us_per_request / row.run.cpu_us_per_request
        label = f"{row.scenario} at {row.stored:,} agents vs at {self.agents:,}"
        measured = f"{own:.2f} (by CPU per request {cpu:.2f})"
        if row.script == "list_page":
            return f"{label} ≥ 0.90", measured, own >= 0.9
        return f"{label} (no target)", measured, True


def _machine():
    wrk = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True).stdout
    wrk_version = wrk.split()[1] if wrk else "wrk"
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
        f"wrk {wrk_version}"
    )


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()
