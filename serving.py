"""gunicorn's settings for the service, and what its master does before the workers start.

`agents-api serve` runs gunicorn with `--config python:serving`, so an installed service needs
no file from a checkout; `gunicorn.conf.py` in the checkout reads this same module, for
`gunicorn 'app:create_app()'` run there.

Signals to the master: TERM stops gracefully (no new connections; requests in flight finish
within graceful_timeout), INT and QUIT stop at once, HUP replaces the workers.
"""

import ctypes
import gc
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

from gunicorn.glogging import Logger

from config import ConfigError, exposure_refusal, load_settings
from logs import configure_logging, json_formatter
from storage import DatabaseUnavailable, leave_out_unused_drivers

try:
    _settings = load_settings()
except ConfigError as error:
    sys.exit(f"Error: {error}")
# Nothing above imports Peewee; the app, the models and migrations are imported after this.
leave_out_unused_drivers(_settings["DATABASE_URL"])

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
# Clients that send slowly, send nothing or read slowly wait on each worker's poller, not on its
# few threads: this worker hands a thread only a whole request (head, and a body up to
# AGENTS_MAX_BODY_BYTES) and writes what a client does not take at once from the poller. With
# gthread, 100 connections dripping one byte a second and 100 silent ones left 0% of /healthz
# probes answered within 1 s; with this worker 100% (bench/slow_clients.py). It also answers
# what gunicorn refuses before the app in the contract's JSON error shape (worker/refusals.py).
worker_class = "worker.BufferedThreadWorker"
# That worker writes answers through its own buffer, which sendfile would go around.
sendfile = False
loglevel = _settings["LOG_LEVEL"]
# The app writes one JSON access line per request itself (logs.py).
accesslog = None
# Runtime control is by signals to the master; no socket in the home directory.
control_socket_disable = True
# No line limit of gunicorn's own, so that the app answers long query strings in the contract's
# error shape (query parameters have their own length limits). The worker bounds the whole head
# at 64 KiB instead (414 or 431, in the error shape too): unbounded, gunicorn's parser copies the
# line on every read, and one 16 MB line kept a thread and a core busy for 39 s.
limit_request_line = 0


class JsonLogger(Logger):
    """gunicorn's own lines (start, stop, worker deaths) in the service's JSON format."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())


logger_class = JsonLogger


def on_starting(server):
    """Check the address, then build the app and prepare its database once, here in the master."""
    settings = load_settings()
    refusal = exposure_refusal(
        _addresses(server.cfg.bind), settings["API_KEYS"], settings["ALLOW_UNAUTHENTICATED"]
    )
    if refusal:
        raise SystemExit(f"Error: {refusal}")
    configure_logging(settings["LOG_LEVEL"])
    # Workers are forked with the database already prepared, so one started later to replace
    # another never creates a database of its own: were the file's folder gone at that moment,
    # it would serve a new empty one in its place. (preload_app would build the app too, but
    # before this check of the address.)
    try:
        store = server.app.wsgi().extensions.get("store")
    except ConfigError as error:  # a catalog file it cannot read
        raise SystemExit(f"Error: {error}") from None
    if store is not None:  # None for another app served with these settings (bench's floor)
        try:
            store.prepare()
        except (ConfigError, DatabaseUnavailable) as error:
            raise SystemExit(f"Error: {error}") from None
        import migrations

        server.log.info(
            "Database: %s (schema version %d)", store.engine.location, migrations.latest_version()
        )
    # Everything built so far lives as long as the workers do: frozen, a worker's full garbage
    # collections skip it (a full collection of the built app took 27 ms, frozen 0.01 ms), and its
    # memory pages stay shared with the master instead of being copied on the first collection.
    gc.freeze()


def _addresses(binds):
    """The listening addresses, with a socket handed over as fd://N named by what it is bound to."""
    addresses = []
    for address in binds:
        if address.startswith("fd://"):
            with socket.socket(fileno=os.dup(int(address[5:]))) as listener:
                host, port = listener.getsockname()[:2]
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        addresses.append(address)
    return addresses


# prctl's option that sets the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def post_fork(server, worker):
    """Make the new worker leave as soon as its master dies.

    A master killed with SIGKILL cannot stop its workers, and gunicorn's own check lets an
    orphaned worker finish its requests first, for up to graceful_timeout: it keeps serving and
    keeps the port, so the restarted service cannot bind it. (Measured from kill -9 of the
    master to the port bound again: 20.7 s with a slow request in flight before; 0.01 s with
    the kernel's parent-death signal, 0.07 s with a thread polling every 0.1 s.)
    """
    master = worker.ppid
    if not _killed_with_parent():
        threading.Thread(target=_leave_when_orphaned, args=(master,), daemon=True).start()
    if os.getppid() != master:  # the master died before the signal was asked for
        os._exit(1)


def _killed_with_parent():
    """Ask Linux to SIGKILL this process when its parent dies; False where it cannot."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except AttributeError:  # not Linux
        return False
    return prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0


def _leave_when_orphaned(master):
    while os.getppid() == master:
        time.sleep(0.1)
    os._exit(1)
