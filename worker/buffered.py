"""gthread with the waiting moved onto the worker's poller: slow clients hold no thread.

gunicorn's gthread worker gives a connection a thread as soon as its first byte arrives, and the
thread then blocks until the request head is complete, and again until the whole response has
been sent. A client that sends its head one byte a second, or asks for the whole list and never
reads it, keeps a thread for as long as it likes, and with 2 threads a worker a handful of them
stop the service (bench/slow_clients.py; figures in docs/operations.md).

`BufferedThreadWorker`:

- reads a connection's request head, and a body of a known length up to AGENTS_MAX_BODY_BYTES,
  without blocking as bytes arrive; only a complete request is handed to a thread. A head still
  unfinished after HEAD_TIMEOUT seconds, or a body that takes longer than BODY_TIMEOUT, is
  answered 408 and closed; a connection that sent nothing is just closed;
- writes what a response could not write at once from the poller as the client reads it; the
  thread goes back to the pool. A client that reads nothing for SEND_TIMEOUT seconds is dropped;
- waits for the client's FIN on the poller when closing, not in the main loop.
"""

import errno
import re
import select
import selectors
import socket
import time
from collections import deque
from functools import partial

from gunicorn import http
from gunicorn.workers import gthread

from config import load_settings
from worker.refusals import JsonThreadWorker, error_answer, too_long

# Seconds a connection may take to send its whole request head, from its first byte (or, kept
# alive, from the first byte of its next request).
HEAD_TIMEOUT = 10.0
# Seconds a body of known length may take after its head.
BODY_TIMEOUT = 30.0
# Seconds a response may go without the client reading any of it.
SEND_TIMEOUT = 30.0
# Seconds a closing connection waits for the client's FIN (gunicorn waits 2 s, in the main loop).
LINGER_TIMEOUT = 2.0
# A head longer than this is refused with 431 on the poller. The API needs a few hundred bytes;
# gunicorn's own bounds (100 fields of 8 KiB) would let every waiting connection hold 800 KiB.
MAX_HEAD_BYTES = 64 * 1024
# Any blocking read or write left to a thread (a chunked body, say) gives up after this long.
THREAD_IO_TIMEOUT = 10.0
# Seconds between the worker's signs of life to the master, which kills it after `timeout` (30)
# without one; gunicorn gives one at every turn of its loop, about one a request under load.
NOTIFY_INTERVAL = 1.0

RECEIVE_CHUNK = 64 * 1024
# A body up to this long is sent with its head in one call; a longer one is not copied for it.
JOINED_BODY_BYTES = 64 * 1024
INTERIM_ANSWER = re.compile(rb"HTTP/\d\.\d 1\d\d ")
HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)
# A client that sends Expect: 100-continue waits for gunicorn's 100 before it sends the body.
EXPECT = re.compile(rb"\r\nexpect[ \t]*:", re.IGNORECASE)


class _TimedSocket(socket.socket):
    """A client socket whose descriptor stays non-blocking, its mode kept here instead.

    Python makes a system call each time a socket switches between non-blocking and timed, and
    hands the interpreter to another thread meanwhile; gunicorn and this worker switched about
    seven times a request (GET one answered 11% faster without them). The poller uses the socket
    non-blocking. Blocking, as threads use it, an operation waits for the descriptor up to the
    timeout (THREAD_IO_TIMEOUT when none is given: a thread never waits forever), then raises
    TimeoutError as a socket with a timeout does.
    """

    __slots__ = ("_timeout",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        super().setblocking(False)
        self._timeout = 0.0

    def setblocking(self, flag):
        self._timeout = THREAD_IO_TIMEOUT if flag else 0.0

    def settimeout(self, value):
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = THREAD_IO_TIMEOUT if value is None else float(value)

    def gettimeout(self):
        return self._timeout

    def getblocking(self):
        return self._timeout != 0.0

    def recv(self, size, flags=0):
        return self._waiting(select.POLLIN, super().recv, size, flags)

    def recv_into(self, buffer, size=0, flags=0):
        return self._waiting(select.POLLIN, super().recv_into, buffer, size, flags)

    def send(self, data, flags=0):
        return self._waiting(select.POLLOUT, super().send, data, flags)

    def sendall(self, data, flags=0):
        view = memoryview(data).cast("B")
        # As for a timed socket, the timeout bounds the whole of it, not each send.
        deadline = time.monotonic() + self._timeout
        while view:
            sent = self._waiting(select.POLLOUT, super().send, view, flags, deadline=deadline)
            view = view[sent:]

    # Never waits, whatever the mode: the answer's writer keeps what the client does not take.
    send_now = socket.socket.send

    def _waiting(self, event, operation, *args, deadline=None):
        if self._timeout == 0.0:
            return operation(*args)
        if deadline is None:
            deadline = time.monotonic() + self._timeout
        while True:
            try:
                return operation(*args)
            except BlockingIOError:
                self._wait_until(event, deadline)

    def _wait_until(self, event, deadline):
        remaining = deadline - time.monotonic()
        if remaining > 0:
            poller = select.poll()
            poller.register(self, event)
            if poller.poll(remaining * 1000):
                return
        raise TimeoutError("timed out")


class _Outbox:
    """Stands in for the client socket while a thread writes a response: sends what the socket
    takes at once and keeps the rest for the poller, so the thread never waits on the client.

    gunicorn writes a response's head, then its body: the head waits for the first write after
    it (or `finish`), so a response of one body goes out in one system call, not two. An
    interim answer (100 Continue, which a client may wait for before it sends its body) goes at
    once.
    """

    def __init__(self, sock, conn):
        self._sock = sock
        self._conn = conn
        self._head = None
        self._expecting_head = True

    def sendall(self, data):
        if self._expecting_head and not INTERIM_ANSWER.match(data):
            self._expecting_head = False
            self._head = bytes(data)
            return
        if self._head is not None and len(data) <= JOINED_BODY_BYTES:
            data, self._head = self._head + data, None
        self.finish()
        self._send(data)

    def finish(self):
        """Send what is held back: the thread is done with the response."""
        if self._head is not None:
            head, self._head = self._head, None
            self._send(head)

    def _send(self, data):
        conn = self._conn
        if conn.outbox:
            conn.outbox.append(bytes(data))
            return
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send_now(view)
            except BlockingIOError:
                conn.outbox.append(bytes(view))
                return
            view = view[sent:]

    def send(self, data):
        self.sendall(data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Conn(gthread.TConn):
    def __init__(self, cfg, sock, client, server):
        super().__init__(cfg, sock, client, server)
        self.head = bytearray()
        self.scanned = 0
        self.needed = None  # bytes of head and body to have before handing over
        self.deadline = 0.0
        self.outbox = deque()
        self.finish = None  # the future of the request whose answer is still being written
        self.waiting = False  # on the poller, and in the worker's `reading`


class BufferedThreadWorker(JsonThreadWorker):
    """gthread that hands a thread only whole requests and never lets one wait on a client."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_body = load_settings()["MAX_BODY_BYTES"]
        self.reading = set()  # connections waiting for more of their request
        self.writing = set()  # connections with an answer left to write
        self.lingering = deque()  # connections closing, waiting for the client's FIN
        self.notified_at = float("-inf")

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
        if cfg.is_ssl or "h2" in (getattr(cfg, "http_protocols", None) or ()):
            log.warning(
                "BufferedThreadWorker reads plain HTTP/1.1 only; "
                "TLS and HTTP/2 belong to the proxy in front."
            )

    def notify(self):
        """Tell the master this worker lives, once a NOTIFY_INTERVAL: each time is a system call."""
        now = time.monotonic()
        if now - self.notified_at >= NOTIFY_INTERVAL:
            self.notified_at = now
            super().notify()

    # Reading requests.

    def accept(self, listener):
        try:
            client, address = listener.accept()
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno != errno.ECONNABORTED:
                raise
            return
        sock = _TimedSocket(fileno=client.detach())
        self.nr_conns += 1
        conn = _Conn(self.cfg, sock, address, listener.getsockname())
        self._read_request(conn)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection has begun its next request."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_request(conn)

    def _read_request(self, conn, buffered=b""):
        """Read the connection's next request as it arrives; a thread gets it once it is whole."""
        conn.head = bytearray(buffered)
        conn.scanned = 0
        conn.needed = None
        conn.deadline = time.monotonic() + HEAD_TIMEOUT
        conn.waiting = False
        conn.sock.setblocking(False)
        if buffered and self._check_request(conn):
            return
        # Often the request is there already: no need to wait for the poller to say so.
        self._on_readable(conn, conn.sock)

    def _on_readable(self, conn, client):
        try:
            data = client.recv(RECEIVE_CHUNK)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data == b"":
            self._stop_reading(conn)
            self._drop(conn)
            return
        if data:
            conn.head += data
            if self._check_request(conn):
                return
        if not conn.waiting:
            conn.waiting = True
            self.reading.add(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _check_request(self, conn):
        """Hand the request over, or refuse it, once it is whole or too large; True if done."""
        head = conn.head
        if conn.needed is None:
            end = head.find(HEAD_END, max(conn.scanned - 3, 0))
            if end < 0:
                conn.scanned = len(head)
                if len(head) > MAX_HEAD_BYTES:
                    self._refuse(conn, too_long(head))
                    return True
                return False
            if end > MAX_HEAD_BYTES:
                self._refuse(conn, too_long(head[:end]))
                return True
            fields = bytes(head[: end + 2])
            length = CONTENT_LENGTH.search(fields)
            if length is None or TRANSFER_ENCODING.search(fields) or EXPECT.search(fields):
                # No body, or one the thread has to read itself (chunked, or awaiting 100
                # Continue), within its timeout.
                self._hand_over(conn)
                return True
            length = int(length.group(1))
            if length > self.max_body:
                # The application refuses it with 413 without reading it.
                self._hand_over(conn)
                return True
            conn.needed = end + 4 + length
            conn.deadline = time.monotonic() + BODY_TIMEOUT
        if len(head) >= conn.needed:
            self._hand_over(conn)
            return True
        return False

    def _hand_over(self, conn):
        self._stop_reading(conn)
        conn.sock.setblocking(True)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True
        self.enqueue_req(conn)

    def _stop_reading(self, conn):
        if not conn.waiting:
            return
        conn.waiting = False
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.reading.discard(conn)

    def _refuse(self, conn, answer):
        self._stop_reading(conn)
        try:
            conn.sock.send(answer)
        except OSError:
            pass
        self._linger(conn)

    # Writing answers.

    def handle_request(self, req, conn):
        sock = conn.sock
        conn.sock = outbox = _Outbox(sock, conn)
        try:
            return super().handle_request(req, conn)
        finally:
            outbox.finish()
            conn.sock = sock

    def finish_request(self, conn, fs):
        if conn.outbox:
            # What the client has not taken yet is written from the poller; then the connection
            # goes on (kept alive), or, without `finish`, the answer ends with it.
            kept_alive = not fs.cancelled() and fs.exception() is None and fs.result()
            conn.finish = fs if kept_alive else None
            conn.deadline = time.monotonic() + SEND_TIMEOUT
            conn.sock.setblocking(False)
            self.writing.add(conn)
            self.poller.register(conn.sock, selectors.EVENT_WRITE, partial(self._on_writable, conn))
            return
        result = False if fs.cancelled() or fs.exception() is not None else fs.result()
        # gthread marks a request it keeps for later with this private sentinel.
        if result is gthread._DEFER:
            super().finish_request(conn, fs)
        elif not result:
            # gunicorn would wait for the client's FIN here, blocking this loop for up to 2 s.
            self._linger(conn)
        elif conn.parser.unreader.buf.getvalue() and self.alive:
            # The client sent its next request already: read it on the poller too.
            self._read_request(conn, conn.parser.unreader.take_buffered())
        else:
            super().finish_request(conn, fs)

    def _on_writable(self, conn, client):
        try:
            while conn.outbox:
                chunk = conn.outbox[0]
                sent = client.send(chunk)
                conn.deadline = time.monotonic() + SEND_TIMEOUT
                if sent < len(chunk):
                    conn.outbox[0] = memoryview(chunk)[sent:]
                    return
                conn.outbox.popleft()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._stop_writing(conn)
            self._drop(conn)
            return
        self._stop_writing(conn)
        if conn.finish is None:
            self._linger(conn)
        else:
            fs, conn.finish = conn.finish, None
            self.finish_request(conn, fs)

    def _stop_writing(self, conn):
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.writing.discard(conn)

    # Closing.

    def _linger(self, conn):
        """Send FIN, then wait on the poller for the client's, as gunicorn's graceful close does."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn)
            return
        conn.deadline = time.monotonic() + LINGER_TIMEOUT
        conn.sock.setblocking(False)
        self.lingering.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_lingering, conn))

    def _on_lingering(self, conn, client):
        try:
            if client.recv(RECEIVE_CHUNK):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._stop_lingering(conn)
        self._drop(conn)

    def _stop_lingering(self, conn):
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            self.lingering.remove(conn)
        except ValueError:
            pass

    def _drop(self, conn):
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Every loop: end connections past their deadline (gthread's own, then these)."""
        super().murder_pending()
        now = time.monotonic()
        # Stopping, a worker closes the connections that have not begun a request.
        for conn in [c for c in self.reading if c.deadline <= now or not (c.head or self.alive)]:
            if conn.head:
                self._refuse(
                    conn,
                    error_answer(
                        408,
                        "Request Timeout",
                        "request_timeout",
                        "The request was not received in time.",
                    ),
                )
            else:
                self._stop_reading(conn)
                self._drop(conn)
        for conn in [conn for conn in self.writing if conn.deadline <= now]:
            self._stop_writing(conn)
            self._drop(conn)
        while self.lingering and self.lingering[0].deadline <= now:
            conn = self.lingering[0]
            self._stop_lingering(conn)
            self._drop(conn)
