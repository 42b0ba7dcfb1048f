"""gunicorn's own refusals in the service's error shape.

A request gunicorn cannot parse (a broken request line, headers over its limits, a bad chunk)
never reaches the app: gunicorn answers it with an HTML page that quotes the offending text.
Its workers' `handle_error` is the only seam: `JsonRefusals` replaces it, answering with the
contract's JSON error body, and quotes nothing the client sent, neither in the answer nor in the
log (a header value may be an API key).
"""

import json
import ssl

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers import gthread


def error_answer(status, reason, code, message):
    """A whole HTTP/1.1 answer, closing the connection, with the service's error body."""
    body = json.dumps({"error": message, "code": code}, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


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
        "header_fields_too_large",
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
        try:
            util.write_nonblock(client, error_answer(status, reason, code, message))
        except Exception:
            self.log.debug("Failed to send error message.")


class JsonThreadWorker(JsonRefusals, gthread.ThreadWorker):
    """gunicorn's threaded worker (gthread), refusing in the contract's error shape."""


TOO_LONG_LINE = error_answer(*REFUSALS[errors.LimitRequestLine])
TOO_LONG_HEAD = error_answer(*REFUSALS[errors.LimitRequestHeaders])


def too_long(head):
    """The answer to an over-long head: 414 when most of it is its request line, else 431."""
    head = head[2:] if head.startswith(b"\r\n") else head
    line_end = head.find(b"\r\n")
    if line_end < 0 or line_end > len(head) - line_end:
        return TOO_LONG_LINE
    return TOO_LONG_HEAD
