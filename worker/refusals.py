"""gunicorn's own refusals in the service's error shape.

gunicorn answers a request it cannot parse (a request line or head too long, malformed HTTP)
with an HTML page of its own, before the app sees it. Its workers' `handle_error` is the only
seam: `JsonErrorsMixin` replaces it, writing `{"error": ..., "code": ...}` instead; the body
never repeats the request line or a header value beyond gunicorn's short detail.
"""

import json
import ssl

from gunicorn import util
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidH2CPreface,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidProxyLine,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    InvalidSchemeHeaders,
    LimitRequestHeaders,
    LimitRequestLine,
    ObsoleteFolding,
    UnsupportedTransferCoding,
)
from gunicorn.workers import gthread

# (exception classes, status, reason, code, message); the first match wins.
_REFUSALS = (
    (
        (InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem),
        500,
        "Internal Server Error",
        "internal_error",
        None,
    ),
    (
        (LimitRequestLine,),
        414,
        "URI Too Long",
        "uri_too_long",
        "The request line is longer than this service accepts.",
    ),
    (
        (LimitRequestHeaders,),
        431,
        "Request Header Fields Too Large",
        "header_fields_too_large",
        "The request has more header fields, or longer ones, than this service accepts.",
    ),
    (
        (UnsupportedTransferCoding,),
        501,
        "Not Implemented",
        "not_implemented",
        "The request's Transfer-Encoding is not supported; send a Content-Length or chunked.",
    ),
    (
        (ExpectationFailed,),
        417,
        "Expectation Failed",
        "expectation_failed",
        "The request's Expect header asks for something this service does not do.",
    ),
    (
        (ForbiddenProxyRequest, ssl.SSLError),
        403,
        "Forbidden",
        "forbidden",
        "The request is not allowed from this address.",
    ),
    (
        (
            InvalidRequestLine,
            InvalidRequestMethod,
            InvalidHTTPVersion,
            InvalidHeader,
            InvalidHeaderName,
            ObsoleteFolding,
            InvalidSchemeHeaders,
            InvalidProxyLine,
            InvalidChunkSize,
            ChunkMissingTerminator,
            InvalidChunkExtension,
            InvalidH2CPreface,
        ),
        400,
        "Bad Request",
        "bad_request",
        "The request is not valid HTTP/1.1",
    ),
)
UNEXPECTED = "The server hit an unexpected error."
DETAIL_CHARACTERS = 200


def error_answer(status, reason, code, message):
    """A whole HTTP/1.1 answer, closing the connection, with the service's error body."""
    body = json.dumps({"error": message, "code": code}, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


_TOO_LONG_LINE = error_answer(
    414, "URI Too Long", "uri_too_long", "The request line is longer than this service accepts."
)
_TOO_LONG_HEAD = error_answer(
    431,
    "Request Header Fields Too Large",
    "header_fields_too_large",
    "The request has more header fields, or longer ones, than this service accepts.",
)


def too_long(head):
    """414 when most of an over-long head is its request line, else 431."""
    head = head[2:] if head.startswith(b"\r\n") else head
    line_end = head.find(b"\r\n")
    if line_end < 0 or line_end > len(head) - line_end:
        return _TOO_LONG_LINE
    return _TOO_LONG_HEAD


def refusal_answer(exc):
    """The answer to a request gunicorn failed to parse or serve, and whether it is the client's
    fault; (None, False) for an exception no rule covers."""
    for classes, status, reason, code, message in _REFUSALS:
        if isinstance(exc, classes):
            if status == 500:
                return error_answer(status, reason, code, UNEXPECTED), False
            if status == 400:
                detail = str(exc)[:DETAIL_CHARACTERS]
                message = f"{message}: {detail}." if detail else f"{message}."
            return error_answer(status, reason, code, message), True
    return None, False


class JsonErrorsMixin:
    """`handle_error` of gunicorn's workers, with the service's error body instead of HTML."""

    def handle_error(self, req, client, addr, exc):
        answer, clients_fault = refusal_answer(exc)
        if answer is None:
            # An error of the worker itself: gunicorn logs it and answers 500.
            answer = error_answer(500, "Internal Server Error", "internal_error", UNEXPECTED)
            self.log.exception("Error handling request")
        elif clients_fault:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        else:
            self.log.exception("Error handling request")
        try:
            util.write_nonblock(client, answer)
        except Exception:  # whatever the socket does, the worker goes on
            self.log.debug("Failed to send error message.")


class JsonThreadWorker(JsonErrorsMixin, gthread.ThreadWorker):
    """gunicorn's gthread worker, answering its refusals in the service's error shape."""
