"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every delivery and
answers as the test scripts it, per event and per path.

def test_the_handler_gets_signed_reports(agents_api, webhook_receiver):
    webhook_receiver.verify_with("whsec-test-secret")
    webhook_receiver.answer("tool-calls", path="/tools", json={"result": {"open": True}})
    ...
    assert [d.event for d in webhook_receiver.deliveries] == ["status-update", ...]
    assert all(d.verified for d in webhook_receiver.deliveries)
"""

import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_agents_api.signatures import DEFAULT_MAX_AGE, HEADERS, WebhookVerificationError, verify

# Bodies larger than this are not stored whole (a delivery is far smaller).
MAX_RECORDED_BODY = 16 * 1024 * 1024


@dataclass
class ReceivedDelivery:
    """One request as the receiver got it: raw body and headers, and its verification."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    verified: bool | None = None  # None when no secret applies to its path
    verification_error: str | None = None

    def header(self, name, default=None):
        """A header's value, whatever the case of its name."""
        wanted = name.lower()
        return next(
            (value for key, value in self.headers.items() if key.lower() == wanted), default
        )

    @property
    def event(self):
        """The X-Webhook-Event it carried, or None."""
        return self.header(HEADERS["EVENT"])

    @property
    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def message(self):
        """The delivery's `message` object."""
        return self.json["message"]


@dataclass
class _Script:
    event: str | None
    path: str | None
    status: int
    body: bytes | None  # None: the JSON of `value`, or of what it returns for the delivery
    headers: dict[str, str]
    delay: float
    times: int | None
    value: Any = None
    used: int = field(default=0)

    def matches(self, event, path):
        return (self.event is None or self.event == event) and (
            self.path is None or self.path == path
        )

    def body_for(self, delivery):
        if self.body is not None:
            return self.body
        return _json_bytes(self.value(delivery) if callable(self.value) else self.value)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1, on a free port, that records deliveries and answers them.

    Without a script every delivery is answered 200 `{}`. With `verify_with(secret)` each
    delivery is checked like the SDK's `Webhooks.verify` and marked `verified`; with
    `reject=True` the ones that fail are answered 401 with the SDK's message.
    """

    def __init__(self):
        self.deliveries = []
        self._scripts = []
        self._secrets = {}  # path (None: every path) -> (secret, reject, max_age)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # handle_request only ever takes a connection already waiting (see _serve).
        self._server.timeout = 0
        # close() wakes the serving loop through this pair at once: serve_forever would see it
        # only at its next poll, which made stopping 50 times slower than starting (20 ms).
        self._woken, self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._woken, selectors.EVENT_READ)
            while not self._closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._server:
                        self._server.handle_request()

    def url_for(self, path="/"):
        """The receiver's URL with `path`: give it to an agent as a webhook or tool URL."""
        return self.url + path

    def answer(
        self, event=None, path=None, *, status=200, json=None, body=None, headers=None,
        delay=0.0, times=None,
    ):  # fmt: skip
        """Answer deliveries of `event` to `path` (None: any) with `status` and a JSON value
        (or raw `body` bytes) after `delay` seconds; `times` limits how often. The latest
        script that matches is used.

        `json` may be a function of the ReceivedDelivery, for answers that depend on it (a
        tool call's id, say).
        """
        if body is None and json is None:
            body = b"{}"
        answer_headers = {"Content-Type": "application/json", **(headers or {})}
        script = _Script(event, path, status, body, answer_headers, delay, times, json)
        with self._lock:
            self._scripts.append(script)

    def verify_with(self, secret, path=None, reject=False, max_age=DEFAULT_MAX_AGE):
        """Verify deliveries to `path` (None: every path) with `secret`, as the SDK would.

        `max_age` is the SDK's maxAge: a delivery stamped by a frozen clock far from now needs
        a larger one. With `reject`, deliveries that fail are answered 401.
        """
        with self._lock:
            self._secrets[path] = (secret, reject, max_age)

    def wait_for(self, event, count=1, timeout=5.0):
        """The deliveries of `event` once `count` have come (an async tool's may come after the
        call returns); AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.of(event)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.of(event))} {event} deliveries within {timeout:g} s, "
                        f"not {count}."
                    )
                self._arrived.wait(left)
            return self.of(event)

    def events(self):
        """The X-Webhook-Event of every delivery, in the order they came."""
        return [delivery.event for delivery in self.deliveries]

    def of(self, event):
        """The deliveries of one event, in the order they came."""
        return [delivery for delivery in self.deliveries if delivery.event == event]

    def clear(self):
        """Forget the deliveries received so far; the scripts stay."""
        with self._lock:
            self.deliveries.clear()

    def close(self):
        """Stop serving; answers still waiting out a delay are cut short."""
        self._closing.set()
        self._wake.send(b"\0")
        self._thread.join(5)
        self._server.server_close()
        self._woken.close()
        self._wake.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _receive(self, method, path, headers, body):
        delivery = ReceivedDelivery(method, path, headers, body, time.time())
        with self._lock:
            secret, reject, max_age = (
                self._secrets.get(path) or self._secrets.get(None) or (None, False, None)
            )
            if secret is not None:
                self._verify(delivery, secret, max_age)
            self.deliveries.append(delivery)
            self._arrived.notify_all()
            script = self._script_for(delivery.event, path)
        if reject and delivery.verified is False:
            message = _json_bytes({"error": delivery.verification_error})
            script = _Script(
                None, None, 401, message, {"Content-Type": "application/json"}, 0, None
            )
        return delivery, script

    def _verify(self, delivery, secret, max_age):
        try:
            verify(
                delivery.body,
                delivery.header(HEADERS["SIGNATURE"]),
                delivery.header(HEADERS["TIMESTAMP"]),
                secret,
                max_age=max_age,
            )
        except WebhookVerificationError as error:
            delivery.verified, delivery.verification_error = False, str(error)
        except ValueError:  # signed, but the body is not JSON
            delivery.verified = True
        else:
            delivery.verified = True

    def _script_for(self, event, path):
        for script in reversed(self._scripts):
            if script.matches(event, path) and (script.times is None or script.used < script.times):
                script.used += 1
                return script
        return _Script(None, None, 200, b"{}", {"Content-Type": "application/json"}, 0, None)


def _json_bytes(value):
    return json.dumps(value).encode()


def _handler_for(receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's naming)
            self._handle()

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST  # noqa: N815

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_RECORDED_BODY))
            delivery, script = receiver._receive(self.command, self.path, dict(self.headers), body)
            if script.delay and receiver._closing.wait(script.delay):
                return
            answer = script.body_for(delivery)
            try:
                self.send_response(script.status)
                for name, value in script.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller stopped listening: an async tool call, or a timeout

        def log_message(self, *args):
            pass

    return Handler
