"""gunicorn settings, read from this folder by `gunicorn 'app:create_app()'`."""

import ipaddress
import multiprocessing
import os

from config import parse_api_keys

bind = [os.environ.get("AGENTS_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("AGENTS_WORKERS", min(multiprocessing.cpu_count() * 2, 8)))
timeout = 30
graceful_timeout = 20
accesslog = None
# gunicorn answers an over-long request line with an HTML 414 of its own; let the app answer
# instead, in the contract's error shape (query parameters have their own length limits).
limit_request_line = 0


def on_starting(server):
    """Without API keys, refuse any address but loopback unless that is asked for by name."""
    if parse_api_keys(os.environ.get("AGENTS_API_KEYS", "")):
        return
    if os.environ.get("AGENTS_ALLOW_UNAUTHENTICATED") == "1":
        return
    exposed = [address for address in server.cfg.bind if not _is_loopback(address)]
    if exposed:
        raise SystemExit(
            f"Refusing to listen on {', '.join(exposed)} without AGENTS_API_KEYS; "
            "set AGENTS_ALLOW_UNAUTHENTICATED=1 if open access is intended."
        )


def _is_loopback(address):
    if address.startswith("unix:"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
