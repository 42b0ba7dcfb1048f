"""WSGI middleware that gives a chunked request body a length, so the size limit holds for it.

Werkzeug enforces AGENTS_MAX_BODY_BYTES on a body sent with Content-Length (413 before reading),
but reads a chunked one (no Content-Length: the server says where it ends) only up to the limit
and silently drops the rest: a JSON object followed by a megabyte of spaces was accepted.
"""

import io


class SizedBodies:
    """Reads a body that has no Content-Length up to one byte over the limit, and hands it on
    with its length instead of its chunked framing: Flask then answers 413 for it exactly as
    for a sized body. (It is read before the request is routed or its key checked, as a sized
    body's first bytes are; never more than the limit and one byte.)"""

    def __init__(self, wsgi_app, max_bytes):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        if environ.get("wsgi.input_terminated") and not environ.get("CONTENT_LENGTH"):
            body = _read(environ["wsgi.input"], self.max_bytes + 1)
            # From here on it is a sized body: Werkzeug ignores Content-Length beside chunked.
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["wsgi.input_terminated"]
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.wsgi_app(environ, start_response)


def _read(stream, most):
    """Up to `most` bytes of the stream; fewer only where it ends."""
    parts, left = [], most
    while left > 0:
        part = stream.read(min(left, 65536))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
