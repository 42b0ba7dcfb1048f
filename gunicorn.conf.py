"""gunicorn settings, read by `agents-api serve` and by `gunicorn 'app:create_app()'` run here.

Signals to the master: TERM stops gracefully (no new connections; requests in flight finish
within graceful_timeout), INT and QUIT stop at once, HUP replaces the workers.
"""

import gc
import multiprocessing

from gunicorn.glogging import Logger

from config import exposure_refusal, load_settings, parse_api_keys
from logs import json_formatter

_settings = load_settings()

bind = [_settings["BIND"]]
# Two workers per core keep the cores busy while others wait on SQLite's fsync; each worker's
# few threads do the same within it. More only queue on SQLite's single writer.
workers = _settings["WORKERS"] or min(multiprocessing.cpu_count() * 2, 8)
threads = _settings["THREADS"]
# A worker that has not checked in for this long is stuck: it is killed and replaced.
timeout = 30
# On TERM, requests in flight get this long to finish before their worker is killed.
graceful_timeout = 20
keepalive = 5
loglevel = _settings["LOG_LEVEL"]
# The app writes one JSON access line per request itself (logs.py).
accesslog = None
# Runtime control is by signals to the master; no socket in the home directory.
control_socket_disable = True
# gunicorn answers an over-long request line with an HTML 414 of its own; let the app answer
# instead, in the contract's error shape (query parameters have their own length limits).
limit_request_line = 0


class JsonLogger(Logger):
    """gunicorn's own lines (start, stop, worker deaths) in the service's JSON format."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())


logger_class = JsonLogger


def on_starting(server):
    """Check the address, then build the app once, here in the master, before any worker."""
    settings = load_settings()
    refusal = exposure_refusal(
        server.cfg.bind, parse_api_keys(settings["API_KEYS"]), settings["ALLOW_UNAUTHENTICATED"]
    )
    if refusal:
        raise SystemExit(refusal)
    # Building the app creates or migrates the database. Workers are forked with the app already
    # built, so one started later to replace another never creates a database of its own: were
    # the file's folder gone at that moment, it would serve a new empty one in its place.
    # (preload_app would build it too, but before this check of the address.)
    server.app.wsgi()
    # Everything built so far lives as long as the workers do: frozen, a worker's full garbage
    # collections skip it (a full collection of the built app took 27 ms, frozen 0.01 ms), and its
    # memory pages stay shared with the master instead of being copied on the first collection.
    gc.freeze()
