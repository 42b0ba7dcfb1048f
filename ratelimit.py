"""Rate limits on the API routes, on when AGENTS_RATE_LIMIT is set (`100/minute`).

Requests are counted per API key, or per client address where no key is configured or the one
sent is not valid, in fixed windows. The count is a row in the database, so every worker (and,
on a shared database, every host) counts into the same one: one upsert per request, which
SQLite and PostgreSQL both take as written.
"""

import hashlib
import math
import time

from flask import current_app, g, request
from peewee import IntegerField, TextField

from auth import is_api_path, presented_key
from errors import ApiError
from models import BaseModel, db, write_transaction

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
WINDOW_NAMES = {1: "a second", 60: "a minute", 3600: "an hour"}


class RateLimitWindow(BaseModel):
    """How many requests a client has made in the window that started at `window_start`."""

    client = TextField(primary_key=True)
    window_start = IntegerField()
    count = IntegerField()


# One statement counts the request and reads the count back: a client's row is reset when a new
# window begins, so the table holds one row per client.
COUNT_REQUEST = (
    'INSERT INTO "rate_limit_window" ("client", "window_start", "count") VALUES (?, ?, 1) '
    'ON CONFLICT ("client") DO UPDATE SET "count" = CASE '
    'WHEN "rate_limit_window"."window_start" = excluded."window_start" '
    'THEN "rate_limit_window"."count" + 1 ELSE 1 END, '
    '"window_start" = excluded."window_start" '
    'RETURNING "count"'
)
FORGET_OLD_WINDOWS = 'DELETE FROM "rate_limit_window" WHERE "window_start" < ?'


def init_app(app):
    """Count every API request of `app` against its limit, when one is set."""
    if app.config["RATE_LIMIT"] is None:
        return
    app.before_request(_count)
    app.after_request(_add_headers)


def count_request(client, window, now=None):
    """Count one request of `client`; returns (count, the window's end in unix seconds)."""
    now = time.time() if now is None else now
    start = int(now // window) * window
    with write_transaction(flush=False):
        count = db.execute_sql(COUNT_REQUEST, (client, start)).fetchone()[0]
        if count == 1:  # the first request of a window: rows of windows before it are done
            db.execute_sql(FORGET_OLD_WINDOWS, (start - window,))
    return count, start + window


def _client():
    key = presented_key()
    if key is not None:
        # A digest, so that no key is ever written to the database file.
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"address:{request.remote_addr}"


def _count():
    if not is_api_path(request.path):
        return
    limit, window = current_app.config["RATE_LIMIT"]
    now = time.time()
    count, reset = count_request(_client(), window, now)
    g.rate_limit = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(limit - count, 0)),
        "X-RateLimit-Reset": str(reset),
    }
    if count > limit:
        retry_after = max(math.ceil(reset - now), 1)
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests: the limit is {limit} {WINDOW_NAMES[window]} per API key; "
            f"retry after {retry_after} seconds.",
            {**g.rate_limit, "Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


def _add_headers(response):
    counted = g.get("rate_limit")
    if counted is not None:
        response.headers.update(counted)
    return response
