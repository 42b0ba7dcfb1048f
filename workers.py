"""gunicorn's workers, answering the requests gunicorn itself refuses in the contract's shape.

A request gunicorn cannot parse (a broken request line, headers over its limits, a bad chunk)
never reaches the app: gunicorn answers it with an HTML page that quotes the offending text.
These workers answer with the contract's JSON error body instead, and quote nothing the client
sent, neither in the answer nor in the log (a header value may be an API key).

`serving.py` names the one that fits AGENTS_THREADS: ThreadWorker for several threads a worker,
SyncWorker for one.
"""

import json
import ssl

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers import gthread, sync

NOT_HTTP = (400, "Bad Request", "bad_request")
# gunicorn's refusals, looked up along the exception's classes: (status, reason, code, message).
REFUSALS = {
    errors.InvalidRequestLine: (*NOT_HTTP, "The request line is not valid HTTP/1.1."),
    errors.InvalidRequestMethod: (*NOT_HTTP, "The request line is not valid HTTP/1.1."),
    errors.InvalidHTTPVersion: (*NOT_HTTP, "The request line is not valid HTTP/1.1."),
    errors.InvalidHeader: (*NOT_HTTP, "A request header is not valid HTTP/1.1."),
    errors.InvalidHeaderName: (*NOT_HTTP, "A request header is not valid HTTP/1.1."),
    errors.ObsoleteFolding: (*NOT_HTTP, "A request header is not valid HTTP/1.1."),
    errors.InvalidSchemeHeaders: (*NOT_HTTP, "A request header is not valid HTTP/1.1."),
    errors.InvalidChunkSize: (*NOT_HTTP, "The chunked request body is not valid HTTP/1.1."),
    errors.ChunkMissingTerminator: (*NOT_HTTP, "The chunked request body is not valid HTTP/1.1."),
    errors.InvalidChunkExtension: (*NOT_HTTP, "The chunked request body is not valid HTTP/1.1."),
    errors.LimitRequestLine: (
        414,
        "URI Too Long",
        "uri_too_long",
        "The request line is longer than this service accepts.",
    ),
    errors.LimitRequestHeaders: (
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
        "The request's headers are larger or more than this service accepts.",
    ),
    errors.UnsupportedTransferCoding: (
        501,
        "Not Implemented",
        "not_implemented",
        "The request's Transfer-Encoding is not one this service supports.",
    ),
    errors.ExpectationFailed: (
        417,
        "Expectation Failed",
        "expectation_failed",
        "The request's Expect header asks for something this service does not do.",
    ),
    errors.ForbiddenProxyRequest: (
        403,
        "Forbidden",
        "forbidden",
        "This service does not accept proxied requests from that address.",
    ),
    # A header the app tried to send is the app's fault, not the client's.
    errors.InvalidResponseHeader: None,
    errors.InvalidResponseHeaderName: None,
    errors.ConfigurationProblem: None,
    errors.ParseException: (*NOT_HTTP, "The request is not valid HTTP/1.1."),
    ssl.SSLError: (*NOT_HTTP, "The TLS handshake failed."),
}
UNEXPECTED = (500, "Internal Server Error", "internal_error", "The server hit an unexpected error.")


def refusal(error):
    """(status, reason, code, message) of the answer to a request that failed with `error`."""
    for kind in type(error).__mro__:
        if kind in REFUSALS:
            return REFUSALS[kind] or UNEXPECTED
    return UNEXPECTED


class JsonRefusals:
    """What replaces gunicorn's `handle_error` in both workers."""

    def handle_error(self, req, client, addr, exc):
        answer = refusal(exc)
        status, reason, code, message = answer
        if answer is UNEXPECTED:
            # The path only: a query string or header is the client's text (access lines alike).
            where = f" {req.method} {req.path}" if req is not None and req.path else ""
            self.log.exception("Error handling request%s", where)
        else:
            ip = addr[0] if addr else "unix socket"
            self.log.warning("Refused a request from %s: %s", ip, type(exc).__name__)
        body = json.dumps({"error": message, "code": code}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:
            self.log.debug("Failed to send error message.")


class ThreadWorker(JsonRefusals, gthread.ThreadWorker):
    """gunicorn's threaded worker (gthread), refusing in the contract's error shape."""


class SyncWorker(JsonRefusals, sync.SyncWorker):
    """gunicorn's one-request-at-a-time worker, refusing in the contract's error shape."""
