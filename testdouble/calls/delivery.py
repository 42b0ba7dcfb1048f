"""Delivering one webhook over HTTP: signed, bounded in time and in what is read back.

Each delivery has a connection of its own (urllib3's), follows no redirect and retries nothing.
Beside the connect and read timeouts, a watchdog shuts the connection down at the delivery's
deadline, so that a receiver answering one byte at a time cannot stretch a wait past it.
"""

import contextlib
import hashlib
import hmac
import socket
import ssl
import threading
import time
from http.client import HTTPException
from importlib import metadata
from typing import NamedTuple
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from testdouble.calls.bounds import MAX_ANSWER_BYTES


def _version():
    try:
        return metadata.version("agents-api")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "dev"


USER_AGENT = f"agents-api/{_version()} (test mode; simulated call)"
READ_SIZE = 16 * 1024


def signature(secret, timestamp, body):
    """`sha256=<hex>`: the HMAC-SHA256 of `<timestamp>.<body>` keyed with the secret."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class Answer(NamedTuple):
    """What came back: status, headers and body (at most MAX_ANSWER_BYTES), or the error.

    `error` is None, or one of timeout, connection_refused, connection_error, tls_error,
    invalid_response (not HTTP, or cut off) and too_large.
    """

    status: int | None
    headers: dict
    body: bytes
    error: str | None
    seconds: float


def post(url, headers, body, connect_timeout, deadline, await_answer=True):
    """POST body to url and read the answer, all before `deadline` (time.monotonic()).

    Without `await_answer` the request is sent and the connection closed: nothing is read.
    """
    started = time.monotonic()
    parts = urlsplit(url)
    connection_class = _BoundedHTTPS if parts.scheme == "https" else _BoundedHTTP
    connection = connection_class(
        parts.hostname,
        parts.port,
        timeout=_left(min(started + connect_timeout, deadline)),
        deadline=deadline,
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    status, answer_headers, data, error = None, {}, b"", None
    try:
        connection.connect()
        connection.timeout = _left(deadline)  # each wait for the receiver, from here on
        connection.request(
            "POST", target, body=body, headers=headers, preload_content=False, decode_content=False
        )
        if await_answer:
            response = connection.getresponse()
            status = response.status
            answer_headers = dict(response.headers.itermerged())
            data, error = _read_capped(response)
    except (OSError, HTTPException, HTTPError, ValueError) as failure:
        error = _error_code(failure, deadline)
    finally:
        connection.close()
    if connection.was_cut:  # what came before the cut may even parse as a whole answer
        error = "timeout"
    return Answer(status, answer_headers, data, error, time.monotonic() - started)


def _read_capped(response):
    chunks, size = [], 0
    while chunk := response.read(READ_SIZE):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return b"".join(chunks)[:MAX_ANSWER_BYTES], "too_large"
    return b"".join(chunks), None


def _error_code(failure, deadline):
    if isinstance(failure, NewConnectionError):  # a ConnectTimeoutError too, to urllib3
        refused = isinstance(failure.__cause__, ConnectionRefusedError)
        return "connection_refused" if refused else "connection_error"
    # The watchdog's cut reads as the receiver closing the connection: the deadline says why.
    if isinstance(failure, (TimeoutError, Urllib3Timeout)) or time.monotonic() >= deadline:
        return "timeout"
    if isinstance(failure, (SSLError, ssl.SSLError, ssl.CertificateError)):
        return "tls_error"
    if isinstance(failure, (HTTPException, ProtocolError)):
        return "invalid_response"
    return "connection_error"


def _left(moment):
    return max(moment - time.monotonic(), 0.001)


class _Watchdog:
    """One thread that shuts each watched connection down at its deadline.

    One for the process rather than a timer per delivery: a thread costs more to start than a
    delivery to a local receiver takes. Started on first use, so also in each forked worker.
    """

    def __init__(self):
        self._changed = threading.Condition()
        self._deadlines = {}  # connection -> its deadline (time.monotonic())
        self._thread = None

    def watch(self, connection, deadline):
        """Cut `connection` at `deadline` unless it is forgotten first."""
        with self._changed:
            self._deadlines[connection] = deadline
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            self._changed.notify()

    def forget(self, connection):
        """Leave `connection` alone: it is done."""
        with self._changed:
            self._deadlines.pop(connection, None)

    def _run(self):
        with self._changed:
            while True:
                now = time.monotonic()
                for connection, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[connection]
                        connection.cut()
                soonest = min(self._deadlines.values(), default=None)
                self._changed.wait(None if soonest is None else soonest - now)


_WATCHDOG = _Watchdog()


class _Watched:
    """A connection that the watchdog shuts down at its deadline, whatever it is waiting for."""

    def __init__(self, *args, deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.was_cut = False
        _WATCHDOG.watch(self, deadline)

    def cut(self):
        """Shut the socket down: a wait on it returns at once."""
        self.was_cut = True
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        _WATCHDOG.forget(self)
        super().close()


class _BoundedHTTP(_Watched, HTTPConnection):
    pass


class _BoundedHTTPS(_Watched, HTTPSConnection):
    pass


def host_of(url):
    """The Host header for a URL: its host, and its port when one is given."""
    return urlsplit(url).netloc.rpartition("@")[2]
