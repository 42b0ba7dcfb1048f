#!/usr/bin/env python3
"""Slow, idle and non-reading clients against a running service, with a well-behaved probe beside.

    python bench/slow_clients.py --url http://127.0.0.1:18100 --drip 100 --idle 100 --duration 15

Attackers (each kind reconnects when the server closes it, as a real one would):

- ``--drip N``: open a connection and send a request head one byte every ``1/--drip-rate``
  seconds; the head never ends.
- ``--idle M``: open a connection and send nothing.
- ``--slow-body K``: send a POST /agents head announcing ``--body-bytes`` at once, then the body
  at ``--body-rate`` bytes a second.
- ``--no-read L``: ask for ``--no-read-path`` (the whole list by default) with a 4 KiB receive
  buffer and never read the answer.
- ``--no-close C``: send GET /healthz with ``Connection: close``, read the answer and the
  server's FIN, but keep the socket open (never send FIN back); repeat with a new connection.
- ``--long-line J``: send request lines of ``--line-mb`` MiB as fast as the server takes them,
  read the answer, repeat; records how long each one took and what came back.

Meanwhile one probe thread does GET /healthz and GET /agents/{id} in turn, each on a new
connection (``--probe-keepalive`` reuses one), with a 1 s deadline for the whole exchange. A probe
succeeds when a 2xx arrives complete within the deadline. ``--seed`` first POSTs agents with a
long first_message, so that the list is several MB. Only loopback targets are accepted.

Prints one JSON document: the probe's success rate and latency percentiles (failures count at
the time they took), and per attacker kind the connections opened, how many the server closed
and after how long, and what it answered them.
"""

import argparse
import asyncio
import http.client
import ipaddress
import json
import socket
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:18100")
    parser.add_argument(
        "--duration", type=float, default=15.0, help="seconds of attack and probing"
    )
    parser.add_argument("--drip", type=int, default=0, metavar="N")
    parser.add_argument("--drip-rate", type=float, default=1.0, help="bytes a second per dripper")
    parser.add_argument("--idle", type=int, default=0, metavar="M")
    parser.add_argument("--slow-body", type=int, default=0, metavar="K")
    parser.add_argument("--body-bytes", type=int, default=1_000_000)
    parser.add_argument("--body-rate", type=float, default=1.0, help="bytes a second per body")
    parser.add_argument("--no-read", type=int, default=0, metavar="L")
    parser.add_argument("--no-read-path", default="/agents")
    parser.add_argument("--no-close", type=int, default=0, metavar="C")
    parser.add_argument("--long-line", type=int, default=0, metavar="J")
    parser.add_argument("--line-mb", type=float, default=16.0)
    parser.add_argument("--no-reconnect", action="store_true", help="attackers connect only once")
    parser.add_argument("--probe-timeout", type=float, default=1.0)
    parser.add_argument("--probe-interval", type=float, default=0.05)
    parser.add_argument("--probe-keepalive", action="store_true")
    parser.add_argument(
        "--probe-delay",
        type=float,
        default=0.5,
        help="seconds after the attackers start before probing starts",
    )
    parser.add_argument("--agent-id", help="the agent the probe reads (default: the newest)")
    parser.add_argument(
        "--seed", type=int, default=0, metavar="COUNT", help="POST this many agents before starting"
    )
    parser.add_argument("--first-message-length", type=int, default=2000)
    parser.add_argument("--api-key")
    parser.add_argument("--json-out", help="also write the JSON report to this file")
    args = parser.parse_args(argv)
    url = urllib.parse.urlsplit(args.url)
    args.host, args.port = url.hostname, url.port or 80
    if not _is_loopback(args.host):
        parser.error("only loopback addresses are valid targets")
    return args


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _headers(args, extra=None):
    headers = {"Host": f"{args.host}:{args.port}"}
    if args.api_key:
        headers["Authorization"] = f"Bearer {args.api_key}"
    headers.update(extra or {})
    return headers


def _head(args, method, path, extra=None):
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in _headers(args, extra).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---------------------------------------------------------------------------------------------
# Seeding and finding the agent the probe reads


def agent_body(index, first_message_length):
    text = f"Thank you for calling agent {index}. " * (first_message_length // 20 + 1)
    return {
        "name": f"Slow-client bench agent {index}",
        "business_name": "Slow Clients Ltd",
        "first_message": text[:first_message_length],
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief. " * 60}],
        },
    }


def _request(args, method, path, body=None, timeout=30):
    connection = http.client.HTTPConnection(args.host, args.port, timeout=timeout)
    try:
        headers = _headers(args, {"Content-Type": "application/json"} if body is not None else None)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def seed(args):
    def create(index):
        body = json.dumps(agent_body(index, args.first_message_length))
        status, payload = _request(args, "POST", "/agents", body)
        if status != 201:
            raise RuntimeError(f"POST /agents answered {status}: {payload[:200]!r}")

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(args.seed)))
    return time.monotonic() - started


def find_agent_id(args):
    status, payload = _request(args, "GET", "/agents?limit=1")
    if status == 200:
        agents = json.loads(payload)["agents"]
        if agents:
            return agents[0]["id"]
    status, payload = _request(args, "POST", "/agents", json.dumps(agent_body(0, 100)))
    return json.loads(payload)["agent"]["id"]


# ---------------------------------------------------------------------------------------------
# The probe


def probe(args, paths, stop, start_at, results):
    """GET each of `paths` in turn until `stop`; append (path, ok, seconds, outcome)."""
    while time.monotonic() < start_at and not stop.is_set():
        time.sleep(0.01)
    kept = None
    index = 0
    while not stop.is_set():
        path = paths[index % len(paths)]
        index += 1
        started = time.monotonic()
        deadline = started + args.probe_timeout
        outcome = "ok"
        ok = False
        try:
            connection = kept or http.client.HTTPConnection(
                args.host, args.port, timeout=args.probe_timeout
            )
            connection.request("GET", path, headers=_headers(args))
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            response = connection.getresponse()
            response.read()
            elapsed = time.monotonic() - started
            ok = 200 <= response.status < 300 and elapsed <= args.probe_timeout
            outcome = str(response.status) if elapsed <= args.probe_timeout else "late"
            if args.probe_keepalive and not response.will_close:
                kept = connection
            else:
                connection.close()
                kept = None
        except (OSError, http.client.HTTPException) as error:
            elapsed = time.monotonic() - started
            outcome = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
            if kept is not None:
                kept.close()
            kept = None
        results.append((path, ok, elapsed, outcome))
        time.sleep(args.probe_interval)
    if kept is not None:
        kept.close()


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def probe_summary(results, generic_paths):
    def block(rows):
        latencies = [row[2] for row in rows]
        outcomes = {}
        for row in rows:
            outcomes[row[3]] = outcomes.get(row[3], 0) + 1
        return {
            "requests": len(rows),
            "ok": sum(1 for row in rows if row[1]),
            "success_pct": round(100 * sum(1 for row in rows if row[1]) / len(rows), 1)
            if rows
            else None,
            "p50_ms": _ms(percentile(latencies, 0.50)),
            "p99_ms": _ms(percentile(latencies, 0.99)),
            "max_ms": _ms(max(latencies) if latencies else None),
            "outcomes": outcomes,
        }

    summary = block(results)
    summary["by_path"] = {
        name: block([row for row in results if row[0] == path])
        for name, path in generic_paths.items()
    }
    return summary


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


# ---------------------------------------------------------------------------------------------
# Attackers


class Tally:
    """What happened to one kind of attacker's connections."""

    def __init__(self):
        self.opened = 0
        self.connect_failed = 0
        self.closed_by_server = 0
        self.lifetimes = []
        self.answers = {}
        self.bytes_sent = 0
        self.rounds = []  # long lines: (seconds, status, bytes of the answer)

    def answered(self, data):
        status = "none"
        if data.startswith(b"HTTP/"):
            status = data.split(b" ", 2)[1].decode(errors="replace")
        self.answers[status] = self.answers.get(status, 0) + 1

    def report(self):
        return {
            "opened": self.opened,
            "connect_failed": self.connect_failed,
            "closed_by_server": self.closed_by_server,
            "median_lifetime_s": round(statistics.median(self.lifetimes), 1)
            if self.lifetimes
            else None,
            "answers": self.answers,
            "bytes_sent": self.bytes_sent,
            **({"rounds": self.rounds} if self.rounds else {}),
        }


async def _connect(args, tally, receive_buffer=None):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (args.host, args.port)), 5)
    except (TimeoutError, OSError):
        sock.close()
        tally.connect_failed += 1
        await asyncio.sleep(0.2)
        return None
    tally.opened += 1
    return sock


async def trickle(args, tally, stop, first, trickled, rate):
    """Connect, send `first`, then `trickled` one byte at a time at `rate` bytes a second.

    Reads meanwhile: the server closing the connection (or answering) ends the round.
    """
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        sock = await _connect(args, tally)
        if sock is None:
            continue
        opened = time.monotonic()
        reading = loop.create_task(loop.sock_recv(sock, 65536))
        try:
            if first:
                await loop.sock_sendall(sock, first)
                tally.bytes_sent += len(first)
            position = 0
            while not stop.is_set():
                done, _ = await asyncio.wait({reading}, timeout=1 / rate if trickled else 0.5)
                if done:
                    tally.answered(reading.result())
                    tally.closed_by_server += 1
                    tally.lifetimes.append(time.monotonic() - opened)
                    break
                if trickled:
                    byte = trickled[position % len(trickled) : position % len(trickled) + 1]
                    position += 1
                    await loop.sock_sendall(sock, byte)
                    tally.bytes_sent += 1
        except OSError:
            tally.closed_by_server += 1
            tally.lifetimes.append(time.monotonic() - opened)
            tally.answered(b"")
        finally:
            reading.cancel()
            sock.close()
        if args.no_reconnect:
            await _wait(stop)
            return


async def never_read(args, tally, stop):
    """Ask for a large answer through a small receive buffer, and never read it."""
    loop = asyncio.get_running_loop()
    sock = await _connect(args, tally, receive_buffer=4096)
    while sock is None and not stop.is_set():
        sock = await _connect(args, tally, receive_buffer=4096)
    if sock is None:
        return
    try:
        request = _head(args, "GET", args.no_read_path)
        await loop.sock_sendall(sock, request)
        tally.bytes_sent += len(request)
        await _wait(stop)
    except OSError:
        tally.closed_by_server += 1
    finally:
        # Closing with unread data resets the connection.
        sock.close()


async def never_close(args, tally, stop):
    """Ask for a closing answer, read it to the server's FIN, and keep our side open."""
    loop = asyncio.get_running_loop()
    held = []
    request = _head(args, "GET", "/healthz", {"Connection": "close"})
    try:
        while not stop.is_set():
            sock = await _connect(args, tally)
            if sock is None:
                continue
            held.append(sock)
            opened = time.monotonic()
            try:
                await loop.sock_sendall(sock, request)
                received = bytearray()
                while not stop.is_set():
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
                    if not chunk:
                        break
                    received += chunk
                tally.answered(bytes(received[:64]))
                tally.closed_by_server += 1
                tally.lifetimes.append(time.monotonic() - opened)
            except (TimeoutError, OSError):
                tally.answered(b"")
            if args.no_reconnect:
                await _wait(stop)
    finally:
        for sock in held:
            sock.close()


async def long_lines(args, tally, stop):
    """Send request lines of --line-mb MiB, time the answer, and repeat until stopped."""
    loop = asyncio.get_running_loop()
    target = b"/agents?q=" + b"a" * int(args.line_mb * 1024 * 1024)
    request = b"GET " + target + b" HTTP/1.1\r\n" + _head(args, "X", "/").split(b"\r\n", 1)[1]
    while not stop.is_set():
        sock = await _connect(args, tally)
        if sock is None:
            continue
        started = time.monotonic()
        received = bytearray()
        try:
            sending = loop.create_task(loop.sock_sendall(sock, request))
            while not _complete(received):
                chunk = await loop.sock_recv(sock, 1 << 20)
                if not chunk:
                    break
                received += chunk
            sending.cancel()
        except OSError:
            pass
        finally:
            sock.close()
        seconds = round(time.monotonic() - started, 2)
        tally.answered(bytes(received[:64]))
        tally.rounds.append([seconds, _status(received), len(received)])
        tally.bytes_sent += len(request)
        if args.no_reconnect:
            await _wait(stop)
            return


def _complete(data):
    """True once `data` holds a whole answer with a Content-Length (else: read until closed)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(data) >= end + 4 + int(value)
    return False


def _status(data):
    return data.split(b" ", 2)[1].decode(errors="replace") if data.startswith(b"HTTP/") else None


async def _wait(stop):
    while not stop.is_set():
        await asyncio.sleep(0.1)


async def attack(args, stop_event, tallies):
    stop = asyncio.Event()
    body_head = _head(
        args,
        "POST",
        "/agents",
        {
            "Content-Type": "application/json",
            "Content-Length": str(args.body_bytes),
        },
    )
    drip_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Drip-%d: %d\r\n" % (n, n) for n in range(1000)
    )
    body = b"[" + b" " * (args.body_bytes - 2) + b"]"
    tasks = []
    for _ in range(args.drip):
        tasks.append(trickle(args, tallies["drip"], stop, b"", drip_head, args.drip_rate))
    for _ in range(args.idle):
        tasks.append(trickle(args, tallies["idle"], stop, b"", b"", 1))
    for _ in range(args.slow_body):
        tasks.append(trickle(args, tallies["slow_body"], stop, body_head, body, args.body_rate))
    for _ in range(args.no_read):
        tasks.append(never_read(args, tallies["no_read"], stop))
    for _ in range(args.no_close):
        tasks.append(never_close(args, tallies["no_close"], stop))
    for _ in range(args.long_line):
        tasks.append(long_lines(args, tallies["long_line"], stop))

    async def watch():
        while not stop_event.is_set():
            await asyncio.sleep(0.05)
        stop.set()

    await asyncio.gather(watch(), *tasks)


def main(argv=None):
    args = parse_args(argv)
    report = {
        "url": args.url,
        "duration_s": args.duration,
        "attackers": {
            "drip": args.drip,
            "idle": args.idle,
            "slow_body": args.slow_body,
            "no_read": args.no_read,
            "no_close": args.no_close,
            "long_line": args.long_line,
        },
    }
    if args.seed:
        report["seed_seconds"] = round(seed(args), 1)
    agent_id = args.agent_id or find_agent_id(args)
    paths = ["/healthz", f"/agents/{agent_id}"]

    tallies = {kind: Tally() for kind in report["attackers"]}
    stop = threading.Event()
    results = []
    started = time.monotonic()
    prober = threading.Thread(
        target=probe, args=(args, paths, stop, started + args.probe_delay, results), daemon=True
    )
    attacker = threading.Thread(
        target=lambda: asyncio.run(attack(args, stop, tallies)), daemon=True
    )
    attacker.start()
    prober.start()
    time.sleep(args.duration)
    stop.set()
    prober.join(args.probe_timeout + 2)
    attacker.join(10)

    report["probe"] = probe_summary(results, {"healthz": paths[0], "get_one": paths[1]})
    report["attack"] = {
        kind: tally.report() for kind, tally in tallies.items() if report["attackers"][kind]
    }
    text = json.dumps(report, indent=1)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
