"""Structured logs: every line JSON on stderr, and one access line per request.

An access line carries the request id, method, path, status and duration, and nothing a client
sent beyond the path: no headers (so no API key), no query string, no body (so no secret).
"""

import logging
import re
import sys
import time
import uuid

from flask import g, request
from pythonjsonlogger.orjson import OrjsonFormatter

from config import ENV_PREFIX, ConfigError

LOGGER = "agents"
FIELDS = "%(levelname)s %(name)s %(process)d %(message)s"
RENAMED = {"levelname": "level", "name": "logger", "process": "pid"}
# A request id chosen by a proxy or client is kept when it is short plain text; anything else
# could forge or break log lines, and is replaced by one of ours.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._~:/+=-]{1,128}$")
LONGEST_LOGGED_PATH = 1024

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
    # The orjson flavour: an access line is written on every request, and this one costs well
    # under half of the standard-library-json formatter's time.
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


def start_request():
    """Note when the request began and which id it goes by."""
    g.request_started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def finish_request(response):
    """Return the request id to the client and write the access line."""
    response.headers["X-Request-ID"] = g.request_id
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "request",
            extra={
                "request_id": g.request_id,
                "method": request.method,
                "path": request.path[:LONGEST_LOGGED_PATH],
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 2),
            },
        )
    return response


def request_id():
    """The current request's id, for other log lines about it."""
    return g.get("request_id")
