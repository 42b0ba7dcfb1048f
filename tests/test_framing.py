"""How a real gunicorn frames requests: chunked bodies meet the same size limit as sized ones,
and requests that never reach the app are still answered in the contract's error shape."""

import json
import socket
import threading

import pytest
import requests

from tests.conftest import VALID_AGENT

LIMIT = 1024 * 1024  # AGENTS_MAX_BODY_BYTES by default


def exchange(server, raw, timeout=30):
    """Send raw bytes to the server; returns (status, headers, body) of its answer.

    The bytes are sent from a thread of their own while the answer is read, since a server may
    answer (and close) before it has read all of them.
    """
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:

        def send():
            try:
                connection.sendall(raw)
                connection.shutdown(socket.SHUT_WR)
            except OSError:  # the server stopped reading: its answer says why
                pass

        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            if b"\r\n\r\n" not in answer:
                raise
        sender.join()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body


def chunked(body, size=65536):
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def post(server, body, framing):
    """POST /agents with `body` framed by Content-Length or as chunks."""
    if framing == "chunked":
        head, payload = b"Transfer-Encoding: chunked\r\n", chunked(body)
    else:
        head, payload = b"Content-Length: %d\r\n" % len(body), body
    return exchange(
        server,
        b"POST /agents HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + head
        + b"Connection: close\r\n\r\n"
        + payload,
    )


def padded_agent(name, size):
    """A valid agent's JSON, padded with trailing spaces to exactly `size` bytes."""
    text = json.dumps({**VALID_AGENT, "name": name}).encode()
    return text + b" " * (size - len(text))


def names(server):
    agents = requests.get(f"{server.url}/agents", timeout=30).json()["agents"]
    return {agent["name"] for agent in agents}


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
def test_a_body_over_the_limit_is_413_however_it_is_framed(live_server, framing):
    name = f"Over the limit, {framing}"
    status, headers, body = post(live_server, padded_agent(name, 2 * LIMIT), framing)

    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == "payload_too_large"
    assert name not in names(live_server)


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
@pytest.mark.parametrize(("size", "expected"), [(LIMIT, 201), (LIMIT + 1, 413)])
def test_the_limit_is_the_same_byte_for_sized_and_chunked_bodies(
    live_server, framing, size, expected
):
    status, _, body = post(live_server, padded_agent(f"{size} {framing}", size), framing)
    assert status == expected, body[:200]


# Requests gunicorn refuses before the app sees them. Each carries MARK where the request line or
# a header value would be echoed back, were it echoed.
MARK = "Xyzzy-S3cret-7f3c"
REFUSED_BEFORE_THE_APP = {
    "a request line that is not HTTP": (f"GARBAGE {MARK}\r\n\r\n", 400, "bad_request"),
    "a method with a bad character": (
        f"G@T /{MARK} HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
        "bad_request",
    ),
    "an HTTP version that does not exist": (
        f"GET /{MARK} HTTP/9.9\r\nHost: x\r\n\r\n",
        400,
        "bad_request",
    ),
    "a header name with a space": (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nBad {MARK}: 1\r\n\r\n",
        400,
        "bad_request",
    ),
    "a header value with a control character": (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Token: {MARK}\x01\r\n\r\n",
        400,
        "bad_request",
    ),
    "a header longer than the limit": (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MARK}{'a' * 9000}\r\n\r\n",
        431,
        "header_fields_too_large",
    ),
    "more headers than the limit": (
        "GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"X-{n}: {MARK}\r\n" for n in range(120))
        + "\r\n",
        431,
        "header_fields_too_large",
    ),
    "a transfer coding the server does not know": (
        f"POST /agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {MARK}\r\n\r\n",
        501,
        "not_implemented",
    ),
    "a chunk size that is not a number": (
        "POST /agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n{MARK}\r\n{{}}\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
}


@pytest.mark.parametrize(
    ("raw", "status", "code"), REFUSED_BEFORE_THE_APP.values(), ids=REFUSED_BEFORE_THE_APP.keys()
)
def test_a_request_refused_before_the_app_is_answered_in_the_error_shape_without_an_echo(
    live_server, raw, status, code
):
    answered, headers, body = exchange(live_server, raw.encode("latin-1"))

    assert answered == status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    shown = json.loads(body)
    assert set(shown) == {"error", "code"} and shown["code"] == code
    assert shown["error"].endswith(".")
    assert MARK not in body.decode("latin-1") and MARK not in str(headers)
    assert MARK not in live_server.log_text()
