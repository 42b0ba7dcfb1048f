"""The worker's client socket: its descriptor stays non-blocking while its mode switches, and
blocking operations wait for the descriptor as a socket with a timeout does; and the stand-in a
thread writes its answer to, which sends a head with the body after it."""

import os
import socket
import threading
import time
from collections import deque
from types import SimpleNamespace

import pytest

from worker.buffered import JOINED_BODY_BYTES, THREAD_IO_TIMEOUT, _Outbox, _TimedSocket


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    timed = _TimedSocket(fileno=ours.detach())
    yield timed, theirs
    timed.close()
    theirs.close()


def test_switching_modes_leaves_the_descriptor_non_blocking(pair):
    timed, _ = pair
    for switch in (
        lambda: timed.setblocking(True),
        lambda: timed.settimeout(None),
        lambda: timed.settimeout(2.5),
        lambda: timed.setblocking(False),
    ):
        switch()
        assert not os.get_blocking(timed.fileno())
    timed.settimeout(None)
    assert (timed.gettimeout(), timed.getblocking()) == (THREAD_IO_TIMEOUT, True)
    timed.setblocking(False)
    assert (timed.gettimeout(), timed.getblocking()) == (0.0, False)
    with pytest.raises(ValueError):
        timed.settimeout(-1)


def test_non_blocking_it_never_waits(pair):
    timed, _ = pair
    timed.setblocking(False)
    with pytest.raises(BlockingIOError):
        timed.recv(10)


def test_blocking_it_waits_for_what_arrives_later(pair):
    timed, theirs = pair
    timed.setblocking(True)
    threading.Timer(0.1, theirs.sendall, [b"late"]).start()
    assert timed.recv(10) == b"late"
    threading.Timer(0.1, theirs.sendall, [b"into"]).start()
    buffer = bytearray(10)
    assert timed.recv_into(buffer) == 4 and buffer[:4] == b"into"


def test_blocking_it_gives_up_after_its_timeout(pair):
    timed, _ = pair
    timed.settimeout(0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        timed.recv(10)
    assert 0.2 <= time.monotonic() - started < 2


def test_sendall_waits_for_a_slow_reader_and_gives_up_on_one_that_stops(pair):
    timed, theirs = pair
    data = os.urandom(4 * 1024 * 1024)  # more than both sockets' buffers
    received = bytearray()

    def read_slowly():
        while len(received) < len(data):
            received.extend(theirs.recv(65536))
            time.sleep(0.001)

    reader = threading.Thread(target=read_slowly)
    timed.settimeout(5)
    reader.start()
    timed.sendall(data)
    reader.join()
    assert received == data

    timed.settimeout(0.2)
    with pytest.raises(TimeoutError):
        timed.sendall(data)


def test_a_peer_that_closes_is_seen_as_from_any_socket(pair):
    timed, theirs = pair
    timed.setblocking(True)
    theirs.close()
    assert timed.recv(10) == b""


def received_now(sock):
    sock.setblocking(False)
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


def test_an_answers_head_is_sent_with_its_body(pair):
    timed, theirs = pair
    outbox = _Outbox(timed, SimpleNamespace(outbox=deque()))
    outbox.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    assert received_now(theirs) == b""
    outbox.sendall(b"{}")
    time.sleep(0.05)
    assert received_now(theirs) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def test_a_head_alone_goes_when_the_answer_is_finished(pair):
    timed, theirs = pair
    outbox = _Outbox(timed, SimpleNamespace(outbox=deque()))
    outbox.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    outbox.finish()
    time.sleep(0.05)
    assert received_now(theirs) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_a_long_body_follows_its_head_in_order(pair):
    timed, theirs = pair
    conn = SimpleNamespace(outbox=deque())
    outbox = _Outbox(timed, conn)
    body = os.urandom(JOINED_BODY_BYTES + 1)
    outbox.sendall(b"HEAD\r\n\r\n")
    outbox.sendall(body)
    outbox.finish()
    received = bytearray()
    deadline = time.monotonic() + 5
    while len(received) < len(body) + 8 and time.monotonic() < deadline:
        chunk = received_now(theirs)
        if not chunk and conn.outbox:  # what the socket did not take: the poller's to write
            timed.sendall(conn.outbox.popleft())
        received += chunk
    assert bytes(received) == b"HEAD\r\n\r\n" + body
