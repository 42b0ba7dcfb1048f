"""The scale runs: `bench/run --scale 1000,100000,1000000` (bench/README.md, "At a million agents").

For each count, seeds a fresh SQLite file straight through the migrations' schema (rows rendered
as a POST stores them, inserted with executemany), then times what grows with the count: single
requests to the service under gunicorn, the search in process beside the plain scan it replaced,
and the operator's commands as processes of their own, with their peak memory.
"""

import base64
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

import models
from bench.agents import BUSINESSES, agent_body, agent_name
from schemas import AGENT
from storage.sqlite import SqliteEngine
from store import Store
from stored_form import etag_of, render, search_text, tool_secrets_text
from tests.live_server import LiveServer

RESULTS = Path(__file__).with_name("results-scale.md")
TEMPLATES = 50
SEED_BATCH = 10_000
SEED_CACHE_KB = 256_000
TIMED_REQUESTS = 30
# Stand-ins in a rendered template, replaced by each agent's own values.
ID_MARK, NAME_MARK, TIME_MARK = "@@id@@", "@@name@@", "@@time@@"
START = datetime(2026, 1, 1, tzinfo=UTC)
# A text no agent holds, one a few hold, one a fifth of them hold, one too short for the index.
SEARCHES = {
    "q= miss": "zq no such agent",
    "q= rare": None,  # the name of the middle agent: it and a few with more digits
    "q= common": BUSINESSES[0][0].lower(),
    "q= two characters": "ik",
}
AGENT_API = os.path.join(os.path.dirname(sys.executable), "agents-api")


def seed(path, count, page_size=None):
    """Fill a new file with `count` agents as POST would store them; returns (ids, seconds)."""
    if page_size:  # a page size other than the engine's: set before anything is written
        with sqlite3.connect(path) as connection:
            connection.execute(f"PRAGMA page_size = {int(page_size)}")
            connection.execute("PRAGMA journal_mode = wal")
    store = Store(SqliteEngine(str(path), durable=False))
    store.prepare()
    templates = [_template(AGENT.load(agent_body(index))) for index in range(TEMPLATES)]
    rng = random.Random(count)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]
    started = time.perf_counter()
    with store.activated(), models.db.connection_context(), models.write_transaction():
        # Room for the id index's pages: random ids land all over it.
        models.db.execute_sql(f"PRAGMA cache_size = -{SEED_CACHE_KB}")
        for first in range(0, count, SEED_BATCH):
            rows = [
                _row(templates[index % TEMPLATES], ids[index], index)
                for index in range(first, min(first + SEED_BATCH, count))
            ]
            models.db.cursor().executemany(models.INSERT_AGENT, rows)
        models.merge_search_index()  # as an import leaves it
    return ids, time.perf_counter() - started


def _template(fields):
    fields = {**fields, "name": NAME_MARK}
    document, _ = render(ID_MARK, fields, TIME_MARK, TIME_MARK)
    business = fields.get("business_name")
    return fields, document, business


def _row(template, agent_id, index):
    fields, document, business = template
    name = agent_name(index)
    stamp = _timestamp(index)
    document = (
        document.replace(ID_MARK, agent_id).replace(NAME_MARK, name).replace(TIME_MARK, stamp)
    )
    return (
        "default",
        agent_id,
        stamp,
        stamp,
        fields["is_active"],
        search_text({"name": name, "business_name": business}),
        fields.get("webhook_secret"),
        document,
        etag_of(document),
        tool_secrets_text(fields),
    )


def _timestamp(index):
    moment = START + timedelta(milliseconds=index)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cursor_after(index, agent_id):
    """The cursor the service issues for a page that ends at agent number `index`."""
    position = f"{_timestamp(index)}|{agent_id}".encode()
    return base64.urlsafe_b64encode(position).decode().rstrip("=")


def searches(count):
    return {**SEARCHES, "q= rare": agent_name(count // 2).lower()}


def time_requests(url, ids, count):
    """Median and slowest milliseconds of warm single requests, one at a time, per kind."""
    deep = int(count * 0.9)
    kinds = {
        "GET one": lambda rng: f"/agents/{rng.choice(ids)}",
        "list page (limit=100)": lambda rng: "/agents?limit=100",
        "active page": lambda rng: "/agents?limit=100&is_active=false",
        "keyset page at 90%": lambda rng: (
            f"/agents?limit=100&cursor={cursor_after(count - 1 - deep, ids[count - 1 - deep])}"
        ),
        **{
            name: (lambda rng, text=text: f"/agents?limit=100&q={requests.utils.quote(text)}")
            for name, text in searches(count).items()
        },
    }
    results = {}
    with requests.Session() as session:
        for name, path in kinds.items():
            rng = random.Random(1)
            for _ in range(3):
                session.get(url + path(rng), timeout=60).raise_for_status()
            spent = []
            for _ in range(TIMED_REQUESTS):
                target = url + path(rng)
                started = time.perf_counter()
                answer = session.get(target, timeout=60)
                spent.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
            results[name] = (statistics.median(spent), max(spent))
    return results


def time_searches(path, count):
    """Median milliseconds of one search page in process: the models' plan, and the plain scan."""
    store = Store(SqliteEngine(str(path), durable=False))
    store.prepare()
    scan = (
        'SELECT "document" FROM "agent" WHERE "namespace" = ? AND "search_text" LIKE ? '
        """ESCAPE '\\' ORDER BY "created_at" DESC, "id" DESC LIMIT ?"""
    )
    results = {}
    with store.activated(), models.db.connection_context():
        for name, text in searches(count).items():
            planned = _median_ms(lambda text=text: models.list_agents(101, query=text))
            scanned = _median_ms(
                lambda text=text: models.db.execute_sql(
                    scan, ("default", f"%{text}%", 101)
                ).fetchall()
            )
            results[name] = (planned, scanned)
    return results


def _median_ms(run, times=7):
    run()
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


def run_command(database, *arguments, stop_after=None):
    """Run `agents-api ARGUMENTS` on `database`; returns (seconds, peak RSS in MB, CPU seconds,
    standard output).

    A command still running after `stop_after` seconds is stopped, and its figures are those
    until then (a fifth item, `stopped`, says so).
    """
    environment = {**os.environ, "AGENTS_DATABASE_URL": f"sqlite:///{database}"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [AGENT_API, *map(str, arguments)],
        env=environment,
        stdout=subprocess.PIPE,  # a line or two, read once it has ended
        stderr=subprocess.PIPE,
    )
    # The child's own high-water mark, sampled while it runs (wait4's ru_maxrss would count
    # the memory of this process too, which the child had until it ran the command); its CPU
    # time is wait4's, the child's alone.
    peak_kb = 0
    stopped = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak_kb = max(peak_kb, _high_water_kb(process.pid))
        if not stopped and stop_after is not None and time.perf_counter() - started > stop_after:
            process.terminate()
            stopped = True
        time.sleep(0.02)
    spent = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output, error = process.stdout.read().decode(), process.stderr.read().decode()
    process.stdout.close()
    process.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime
    if stopped:
        return spent, peak_kb / 1024, cpu, output, "stopped"
    if process.returncode != 0:
        raise RuntimeError(f"agents-api {' '.join(map(str, arguments))} failed: {error}")
    return spent, peak_kb / 1024, cpu, output


def _high_water_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # it has just ended
        pass
    return 0


def measure(folder, count, page_size=None, import_seconds=None):
    """Every figure of one count, as a dict; an import is stopped after `import_seconds`."""
    database = folder / f"scale-{count}.db"
    print(f"Seeding {count:,} agents...", file=sys.stderr)
    ids, seeded = seed(database, count, page_size)
    figures = {
        "count": count,
        "seed_s": seeded,
        "file_mb": os.path.getsize(database) / 1e6,
        "bytes_per_agent": os.path.getsize(database) / count,
    }
    with LiveServer(database, workers=2) as server:
        figures["requests"] = time_requests(server.url, ids, count)
    figures["searches"] = time_searches(database, count)
    exported = folder / f"export-{count}.json"
    figures["export"] = run_command(database, "export", exported, "--include-secrets")
    figures["export_mb"] = os.path.getsize(exported) / 1e6
    figures["check"] = run_command(database, "check")
    figures["backup"] = run_command(database, "backup", folder / f"backup-{count}.db")
    imported = folder / f"imported-{count}.db"
    figures["import"] = run_command(imported, "import", exported, stop_after=import_seconds)
    if len(figures["import"]) == 5:  # stopped: how far it got, by the WAL it had written
        wal_bytes = os.path.getsize(f"{imported}-wal") if os.path.exists(f"{imported}-wal") else 0
        figures["import_wal_mb"] = wal_bytes / 1e6
    elif f"Imported {count} agent(s)." not in figures["import"][3]:
        raise RuntimeError(f"the import stored other than {count} agents: {figures['import'][3]}")
    for name in (exported, *folder.glob(f"imported-{count}.db*"), *folder.glob("backup-*")):
        name.unlink()
    return figures


def markdown(runs, command, started):
    """The figures of every count as the tables of bench/results-scale.md."""
    counts = [run["count"] for run in runs]
    header = "| | " + " | ".join(f"{count:,}" for count in counts) + " |"
    rule = "|---|" + "--:|" * len(counts)
    lines = [
        "# Scale runs",
        "",
        f"`{command}`, {started:%Y-%m-%d %H:%M} UTC, on 2 shared cores. Written by bench/scale.py.",
        "",
        "## Storing",
        "",
        header,
        rule,
        _row_of("seed, s", runs, lambda run: f"{run['seed_s']:,.1f}"),
        _row_of("seed, µs/agent", runs, lambda run: f"{run['seed_s'] / run['count'] * 1e6:,.0f}"),
        _row_of("file, MB", runs, lambda run: f"{run['file_mb']:,.1f}"),
        _row_of("bytes/agent", runs, lambda run: f"{run['bytes_per_agent']:,.0f}"),
        "",
        "## Single requests through gunicorn (median ms, slowest of 30 in brackets)",
        "",
        header,
        rule,
    ]
    for name in runs[0]["requests"]:
        lines.append(
            _row_of(name, runs, lambda run, name=name: "%.1f (%.1f)" % run["requests"][name][:2])
        )
    lines += [
        "",
        "## One search page in process (median ms): the plan taken, and the plain scan",
        "",
        header,
        rule,
    ]
    for name in runs[0]["searches"]:
        lines.append(
            _row_of(name, runs, lambda run, name=name: "%.2f / %.2f" % run["searches"][name])
        )
    lines += ["", "## Commands (seconds, peak RSS MB)", "", header, rule]
    for name in ("export", "import", "check", "backup"):
        lines.append(_row_of(name, runs, lambda run, name=name: _command_cell(run, name)))
    for name in ("export", "import"):
        lines.append(
            _row_of(
                f"{name}, µs/agent (wall / CPU)",
                runs,
                lambda run, name=name: _per_agent_cell(run, name),
            )
        )
    lines.append(_row_of("export file, MB", runs, lambda run: f"{run['export_mb']:,.0f}"))
    return "\n".join(lines) + "\n"


def _command_cell(run, name):
    seconds, peak_mb, _, _, *stopped = run[name]
    cell = f"{seconds:,.1f} s, {peak_mb:.0f} MB"
    if stopped:
        cell += f" (stopped; its WAL had reached {run['import_wal_mb']:,.0f} MB)"
    return cell


def _per_agent_cell(run, name):
    seconds, _, cpu, _, *stopped = run[name]
    if stopped:
        return "stopped"
    return f"{seconds / run['count'] * 1e6:,.0f} / {cpu / run['count'] * 1e6:,.0f}"


def _row_of(name, runs, cell):
    return f"| {name} | " + " | ".join(cell(run) for run in runs) + " |"


def main(counts, output=RESULTS, page_size=None, import_seconds=None):
    """Measure each count in turn, print the markdown and write it to `output`."""
    started = datetime.now(UTC)
    command = f"bench/run --scale {','.join(map(str, counts))}"
    if page_size:
        command += f" --page-size {page_size}"
    if import_seconds:
        command += f" --stop-import-after {import_seconds:g}"
    runs = []
    with tempfile.TemporaryDirectory(prefix="agents-scale-") as folder:
        for count in counts:
            runs.append(measure(Path(folder), count, page_size, import_seconds))
            print(runs[-1], file=sys.stderr)
            text = markdown(runs, command, started)
            if output:  # after each count: the larger ones take most of an hour
                Path(output).write_text(text)
    print(text)
    return 0
