"""Structured logs: every line JSON on stderr, and one access line per request.

An access line carries the request id, method, path, status and duration, and nothing a client
sent beyond the path: no headers (so no API key), no query string, no body (so no secret).
"""

import datetime
import logging
import os
import re
import sys
import time

import orjson
from flask import request
from pythonjsonlogger.orjson import OrjsonFormatter
from werkzeug.wsgi import get_path_info

from config import ENV_PREFIX, ConfigError

LOGGER = "agents"
FIELDS = "%(levelname)s %(name)s %(process)d %(message)s"
RENAMED = {"levelname": "level", "name": "logger", "process": "pid"}
# A request id chosen by a proxy or client is kept when it is short plain text; anything else
# could forge or break log lines, and is replaced by one of ours.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._~:/+=-]{1,128}$")
LONGEST_LOGGED_PATH = 1024
# Where RequestLog leaves the request's id in the WSGI environ.
REQUEST_ID = "agents.request_id"

access_log = logging.getLogger(f"{LOGGER}.access")


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged, not when the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def json_formatter():
    """The one log format: a JSON object with time (UTC), level, logger, pid, message and extras."""
    # The orjson flavour, so that write_access_line's lines, encoded by orjson too, read the same.
    return OrjsonFormatter(FIELDS, rename_fields=RENAMED, timestamp="time")


def configure_logging(level):
    """Send the service's own log lines to stderr as JSON, at `level` (e.g. info, warning)."""
    logger = logging.getLogger(LOGGER)
    try:
        logger.setLevel(level.upper())
    except ValueError:
        raise ConfigError(
            f"{ENV_PREFIX}LOG_LEVEL must be a level such as info or warning, not {level!r}."
        ) from None
    logger.propagate = False
    # What no line shows, logging need not find out: the calling source line and the thread
    # (the logging HOWTO's "Optimization" settings).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    if not logger.handlers:
        handler = StderrHandler()
        handler.setFormatter(json_formatter())
        logger.addHandler(handler)


class RequestLog:
    """WSGI middleware: gives each request an id, returns it as X-Request-ID, logs its access.

    Wrapped around Flask rather than hooked into it, it reads the WSGI environ directly and costs
    a request about 12 µs, where request hooks and their context lookups cost tens.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if SANE_REQUEST_ID.match(incoming) else os.urandom(16).hex()
        environ[REQUEST_ID] = request_id
        status = ""

        def start_with_id(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line
            headers.append(("X-Request-ID", request_id))
            return start_response(status_line, headers, exc_info)

        body = self.wsgi_app(environ, start_with_id)
        if access_log.isEnabledFor(logging.INFO):
            write_access_line(
                request_id=request_id,
                method=environ["REQUEST_METHOD"],
                path=_path_of(environ)[:LONGEST_LOGGED_PATH],
                status=int(status[:3]),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return body


def write_access_line(**fields):
    """Write an access line to stderr, shaped exactly as `json_formatter` would shape it.

    It goes around `logging`'s records, handlers and formatter, which cost a GET about 45 µs of
    its CPU, several times what this does; `AGENTS_LOG_LEVEL` still turns it off through the
    logger's level. One write per line keeps the lines of threads from interleaving.
    """
    line = {"level": "INFO", "logger": access_log.name, "pid": os.getpid(), "message": "request"}
    line.update(fields, time=datetime.datetime.now(datetime.UTC))
    try:
        sys.stderr.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE).decode())
    except (OSError, ValueError):
        # A full disk or a closed stderr loses the line, never the request (as with logging).
        pass


def _path_of(environ):
    # As Flask's request.path reads it, from the path Werkzeug decodes out of the WSGI environ.
    return "/" + get_path_info(environ).lstrip("/")


def request_id():
    """The current request's id, for other log lines about it."""
    return request.environ.get(REQUEST_ID)
