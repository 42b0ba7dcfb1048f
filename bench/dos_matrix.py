#!/usr/bin/env python3
"""Serving settings under slow clients: every candidate, every attack, and wrk throughput.

    .venv/bin/python bench/dos_matrix.py --seed-db /tmp/dos/seed.db --out /tmp/dos/matrix.json

Each candidate is `agents-api serve` (the workers and threads it picks, 2 per core) with
GUNICORN_CMD_ARGS or AGENTS_* added, or nginx in front of gthread; "current" is gunicorn's
gthread worker as serving.py had it before worker.BufferedThreadWorker. Each attack
runs bench/slow_clients.py for --duration seconds against a fresh server on a copy of
--seed-db (a database holding the agents whose list is several MB). Throughput is wrk at 32
connections against 2 workers, taking the candidate and the current settings in turn, as ratios
of their fastest rounds. Ports 18100-18199 on 127.0.0.1 only.
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import agents, load, processes  # noqa: E402

VENV = ROOT / ".venv" / "bin"
BUFFERED = "--worker-class worker.BufferedThreadWorker --no-sendfile"
# gunicorn's own gthread worker, as serving.py had it before worker.BufferedThreadWorker.
GTHREAD = "--worker-class gthread"
CANDIDATES = {
    "current": {"args": GTHREAD},
    "gthread-threads-32": {"args": GTHREAD, "env": {"AGENTS_THREADS": "32"}},
    "gthread-threads-128": {"args": GTHREAD, "env": {"AGENTS_THREADS": "128"}},
    "gevent": {"args": "--worker-class gevent --worker-connections 1000"},
    "tornado": {"args": "--worker-class tornado"},
    "buffered-gthread": {"args": BUFFERED},
    "nginx+current": {"args": GTHREAD, "nginx": True},
}
ATTACKS = {
    "quiet": {},
    "slowloris": {"drip": 100, "idle": 100},
    "no_read": {"no_read": 16},
    "slow_body": {"slow_body": 20},
    "combined": {"drip": 100, "idle": 100, "slow_body": 20, "no_read": 16},
    "slowloris_x10": {"drip": 1000, "idle": 1000},
    "no_close": {"no_close": 8},
    "long_lines": {"long_line": 4, "line_mb": 16},
}
NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    client_header_timeout 10s; client_body_timeout 10s; send_timeout 30s;
    keepalive_timeout 5s;
    # Larger than AGENTS_MAX_BODY_BYTES: the service answers 413 in its own shape.
    client_max_body_size 2m; client_body_buffer_size 1m;
    large_client_header_buffers 4 16k;
    upstream service {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering on; proxy_request_buffering on;
            proxy_buffers 64 64k; proxy_busy_buffers_size 128k;
        }}
    }}
}}
"""


class Server:
    """`agents-api serve` on a copy of the seeded database, or nginx in front of one."""

    def __init__(self, name, candidate, port, seed_db, work, workers=0):
        self.name, self.port, self.work = name, port, work
        self.url = f"http://127.0.0.1:{port}"
        self.nginx = None
        upstream = port + 50 if candidate.get("nginx") else port
        database = work / f"{name}-{port}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copy(seed_db, database)
        env = {
            **os.environ,
            "AGENTS_DATABASE_URL": f"sqlite:///{database}",
            "AGENTS_BIND": f"127.0.0.1:{upstream}",
            "AGENTS_LOG_LEVEL": "warning",
            "AGENTS_WORKERS": str(workers),
            "GUNICORN_CMD_ARGS": candidate.get("args", ""),
            **candidate.get("env", {}),
        }
        self.log = open(work / f"{name}-{port}.log", "ab")
        self.process = subprocess.Popen(
            [str(VENV / "agents-api"), "serve"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_healthy(f"http://127.0.0.1:{upstream}")
        if candidate.get("nginx"):
            folder = work / f"nginx-{port}"
            folder.mkdir(exist_ok=True)
            conf = folder / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=folder, port=port, upstream=upstream))
            self.nginx = subprocess.Popen(
                ["nginx", "-c", str(conf), "-g", "daemon off;"],
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            _wait_healthy(self.url)

    def stop(self):
        if self.nginx:
            self.nginx.send_signal(signal.SIGQUIT)
            _reap(self.nginx, 10)
        try:
            children = processes.worker_pids(self.process.pid)
        except OSError:
            children = []
        self.process.send_signal(signal.SIGTERM)
        _reap(self.process, 25)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def _reap(process, seconds):
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_healthy(url, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


def attack(server, options, duration, agent_id):
    arguments = [
        str(VENV / "python"),
        str(ROOT / "bench" / "slow_clients.py"),
        "--url",
        server.url,
        "--duration",
        str(duration),
        "--agent-id",
        agent_id,
    ]
    for name, value in options.items():
        arguments += [f"--{name.replace('_', '-')}", str(value)]
    finished = subprocess.run(
        arguments, capture_output=True, text=True, check=True, timeout=duration + 60
    )
    return json.loads(finished.stdout)


def throughput(candidate, seed_db, work, files, port, rounds, seconds):
    """wrk GET one and POST against the candidate and the current settings, in turn."""
    servers = {
        "candidate": Server("tp-candidate", candidate, port, seed_db, work, workers=2),
        "current": Server("tp-current", CANDIDATES["current"], port + 1, seed_db, work, workers=2),
    }
    figures = {}
    try:
        for script, arguments in (("get_one", [files["ids"]]), ("post", [files["posts"]])):
            runs = {name: [] for name in servers}
            for server in servers.values():
                load.warm_up(server, script, arguments, 1, 32)
            for _ in range(rounds):
                for name, server in servers.items():
                    runs[name].append(load.drive(server, script, arguments, seconds, 32))
            best = {name: load.combine(found) for name, found in runs.items()}
            # Server CPU per request moves least with the noise of the machine (bench/README.md).
            cpu = {
                name: statistics.median(run.cpu_us_per_request for run in found)
                for name, found in runs.items()
            }
            figures[script] = {
                "candidate_rps": round(best["candidate"].requests_per_second),
                "current_rps": round(best["current"].requests_per_second),
                "ratio": round(
                    best["candidate"].requests_per_second / best["current"].requests_per_second, 2
                ),
                "candidate_cpu_us": round(cpu["candidate"]),
                "current_cpu_us": round(cpu["current"]),
                "cpu_ratio": round(cpu["candidate"] / cpu["current"], 2),
                "candidate_p99_ms": round(best["candidate"].p99_ms, 1),
                "current_p99_ms": round(best["current"].p99_ms, 1),
                "errors": best["candidate"].non_2xx + best["candidate"].socket_errors,
            }
    finally:
        for server in servers.values():
            server.stop()
    return figures


def correctness(url, agent_id):
    """Concurrent writes: every POST stored once, one winner per If-Match, one idempotent create."""
    import requests

    session_local = threading.local()

    def session():
        if not hasattr(session_local, "session"):
            session_local.session = requests.Session()
        return session_local.session

    before = session().get(f"{url}/agents", timeout=30).json()["agents"]

    def create(index):
        answer = session().post(f"{url}/agents", json=agents.agent_body(index), timeout=30)
        return answer.status_code, answer.json()["agent"]["id"] if answer.ok else None

    with ThreadPoolExecutor(32) as pool:
        created = list(pool.map(create, range(640)))
    ids = [agent for status, agent in created if status == 201]
    after = session().get(f"{url}/agents", timeout=30).json()["agents"]

    etag = session().get(f"{url}/agents/{agent_id}", timeout=10).headers["ETag"]

    def patch(index):
        return (
            session()
            .patch(
                f"{url}/agents/{agent_id}",
                json={"name": f"Contender {index}"},
                headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
                timeout=30,
            )
            .status_code
        )

    def idempotent(_):
        answer = session().post(
            f"{url}/agents",
            json=agents.agent_body(9999),
            headers={"Idempotency-Key": "dos-matrix-once"},
            timeout=30,
        )
        return answer.status_code, answer.headers.get("Idempotent-Replayed")

    with ThreadPoolExecutor(32) as pool:
        patches = list(pool.map(patch, range(32)))
        once = list(pool.map(idempotent, range(32)))
    return {
        "posts_201": len(ids),
        "posts_distinct_ids": len(set(ids)),
        "rows_added": len(after) - len(before),
        "if_match_winners": patches.count(200),
        "if_match_412": patches.count(412),
        "idempotent_created": sum(1 for status, replayed in once if status == 201 and not replayed),
        "idempotent_replayed": sum(1 for _, replayed in once if replayed == "true"),
        "other_statuses": sorted(
            {status for status in patches if status not in (200, 412)}
            | {status for status, _ in once if status != 201}
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidate", action="append", choices=list(CANDIDATES))
    parser.add_argument("--attack", action="append", choices=list(ATTACKS))
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-seconds", type=int, default=4)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-correctness", action="store_true")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--port", type=int, default=18120)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dos-matrix-"))
    with sqlite3.connect(options.seed_db) as seeded:
        ids = [row[0] for row in seeded.execute("SELECT id FROM agent")]
    files = {
        "ids": agents.write_lines(work / "ids.txt", ids),
        "posts": agents.write_bodies(work / "posts.txt", map(agents.agent_body, range(200))),
    }
    results = json.loads(options.out.read_text()) if options.out.exists() else {}
    for name in options.candidate or CANDIDATES:
        candidate = CANDIDATES[name]
        found = results.setdefault(name, {})
        for attack_name in [] if options.throughput_only else options.attack or ATTACKS:
            server = Server(name, candidate, options.port, options.seed_db, work)
            try:
                duration = 5 if attack_name == "quiet" else options.duration
                report = attack(server, ATTACKS[attack_name], duration, ids[0])
            finally:
                server.stop()
            found[attack_name] = {
                "probe": {k: v for k, v in report["probe"].items() if k != "by_path"},
                "by_path": {
                    path: {k: block[k] for k in ("success_pct", "p99_ms")}
                    for path, block in report["probe"]["by_path"].items()
                },
                "attack": report["attack"],
            }
            probe = report["probe"]
            print(
                f"{name:22} {attack_name:10} ok {probe['success_pct']}% "
                f"p50 {probe['p50_ms']} p99 {probe['p99_ms']} ms {probe['outcomes']}",
                flush=True,
            )
            options.out.write_text(json.dumps(results, indent=1))
        if not (options.skip_correctness or options.throughput_only):
            server = Server(name, candidate, options.port, options.seed_db, work)
            try:
                found["correctness"] = correctness(server.url, ids[0])
            finally:
                server.stop()
            print(f"{name:22} correctness {found['correctness']}", flush=True)
        if not options.skip_throughput:
            found["throughput"] = throughput(
                candidate,
                options.seed_db,
                work,
                files,
                options.port + 10,
                options.rounds,
                options.round_seconds,
            )
            print(f"{name:22} throughput {found['throughput']}", flush=True)
        options.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
