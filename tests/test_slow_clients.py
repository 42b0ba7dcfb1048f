"""Clients that send slowly, or send nothing, or break HTTP, against gunicorn as configured.

serving.py serves with worker.BufferedThreadWorker: a request reaches a thread only once
it is whole, and gunicorn's own refusals come in the service's error shape.
"""

import contextlib
import json
import os
import re
import socket
import time

import pytest
import requests

from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
    """One worker with one thread: any connection that held the thread would stop the service."""
    folder = tmp_path_factory.mktemp("slow-clients")
    with LiveServer(folder / "agents.db", workers=1, AGENTS_THREADS="1") as server:
        yield server


def address(server):
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(server, raw, timeout=5):
    """Send `raw` bytes and read until the server closes; returns (status, headers, body)."""
    with socket.create_connection(address(server), timeout=timeout) as sock:
        sock.sendall(raw)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    "raw, status, code",
    [
        (b"GET /agents?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: %s\r\n" % (n, b"a" * 1000) for n in range(70))
            + b"\r\n",
            431,
            "header_fields_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: y\r\n" % n for n in range(150))
            + b"\r\n",
            431,
            "header_fields_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "header_fields_too_large",
        ),
        (b"GET/healthz\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ],
)
def test_requests_gunicorn_refuses_are_answered_in_the_error_shape(one_thread, raw, status, code):
    answer_status, headers, body = exchange(one_thread, raw)
    assert answer_status == status
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    document = json.loads(body)
    assert document["code"] == code and document["error"].endswith(".")


def test_a_long_query_within_the_head_limit_still_reaches_the_app(one_thread):
    answer = requests.get(f"{one_thread.url}/agents", params={"q": "a" * 20_000}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["code"] == "validation_error"


def test_clients_that_send_slowly_or_nothing_leave_the_thread_free(one_thread):
    held = []
    try:
        for _ in range(10):
            idle = socket.create_connection(address(one_thread))
            dripping = socket.create_connection(address(one_thread))
            dripping.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            slow_body = socket.create_connection(address(one_thread))
            slow_body.sendall(
                b"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: 100\r\n\r\n{"
            )
            held += [idle, dripping, slow_body]
        time.sleep(0.5)
        for path in ("/healthz", "/agents?limit=1", "/healthz"):
            started = time.monotonic()
            assert requests.get(f"{one_thread.url}{path}", timeout=2).status_code == 200
            assert time.monotonic() - started < 1
    finally:
        for sock in held:
            sock.close()


def test_a_request_that_arrives_in_pieces_is_served_whole(one_thread):
    body = json.dumps({"name": "Arrived in pieces"}).encode()
    raw = (
        b"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    ) + body
    with socket.create_connection(address(one_thread), timeout=5) as sock:
        for start in range(0, len(raw), 7):
            sock.sendall(raw[start : start + 7])
            time.sleep(0.005)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 201 ")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["agent"]["name"] == "Arrived in pieces"


def test_pipelined_requests_are_each_answered_in_order(one_thread):
    raw = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /agents/not-an-id HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(address(one_thread), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"200", b"404", b"200"]


def test_a_client_waiting_for_100_continue_gets_its_body_read(one_thread):
    answer = requests.post(
        f"{one_thread.url}/agents",
        data=json.dumps({"name": "Expecting"}),
        headers={"Content-Type": "application/json", "Expect": "100-continue"},
        timeout=5,
    )
    assert answer.status_code == 201


def test_a_body_over_the_limit_is_still_refused_413(one_thread):
    answer = requests.post(
        f"{one_thread.url}/agents",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"


def test_a_large_answer_to_a_client_that_does_not_read_leaves_the_thread_free(one_thread):
    # About 9 MB of list: more than the kernel's socket buffers take while nobody reads.
    messages = [{"role": "user", "content": f"{n} " + "m" * 99_990} for n in range(9)]
    for index in range(10):
        requests.post(
            f"{one_thread.url}/agents",
            timeout=10,
            json={
                "name": f"Long {index}",
                "llm_config": {"provider": "openai", "model": "gpt-4o-mini", "messages": messages},
            },
        ).raise_for_status()
    stalled = []
    try:
        for _ in range(4):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(address(one_thread))
            sock.sendall(b"GET /agents HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        assert requests.get(f"{one_thread.url}/healthz", timeout=2).status_code == 200
        assert time.monotonic() - started < 1
    finally:
        for sock in stalled:
            sock.close()


def heartbeat_of(worker_pid):
    """The ctime of the file a gunicorn worker touches to tell its master it lives."""
    folder = f"/proc/{worker_pid}/fd"
    for descriptor in os.listdir(folder):
        with contextlib.suppress(FileNotFoundError):
            if "wgunicorn-" in os.readlink(f"{folder}/{descriptor}"):
                return os.stat(f"{folder}/{descriptor}").st_ctime_ns
    raise AssertionError("the worker has no heartbeat file")


def test_a_busy_worker_still_tells_its_master_it_lives(one_thread):
    [worker] = one_thread.worker_pids()
    beats = {heartbeat_of(worker)}
    with requests.Session() as session:
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            assert session.get(f"{one_thread.url}/healthz", timeout=2).status_code == 200
            beats.add(heartbeat_of(worker))
    assert len(beats) >= 3


def test_a_client_that_waits_for_100_continue_gets_it_before_sending_its_body(one_thread):
    body = json.dumps({"name": "Waited for the 100"}).encode()
    head = (
        b"POST /agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(address(one_thread), timeout=2) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 201 ")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["agent"]["name"] == "Waited for the 100"
