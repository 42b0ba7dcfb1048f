"""What the fast paths (fast_reads.py, fast_writes.py) share: WSGI middleware in front of Flask
that answers the requests it takes exactly, and hands every other one to Flask.

They are installed only where no Flask hook needs to see each request: not in test mode
(namespaces, faults, the journal and the clock are Flask's hooks) nor under rate limits (their
count and headers are too). They sit inside RequestLog, so the request id and the access line
are the same either way.
"""

import re

from auth import known_key
from routes.agents import FAMILIES
from strict_fields import LOWERCASE_UUID_PATTERN

JSON = ("Content-Type", "application/json")


def fast_paths_allowed(app):
    """Whether requests may be answered before Flask: not in test mode nor under rate limits,
    and not where the config sets FAST_PATHS to False, as the tests that compare both paths do."""
    if not app.config.get("FAST_PATHS", True):
        return False
    return not app.config["TEST_MODE"] and app.config["RATE_LIMIT"] is None


class FastPath:
    """Answers, at `<prefix>/<family>` and `<prefix>/<family>/<lowercase id>`, what `takes`
    accepts with a known key, as `answer` says; hands on every other request, and each one
    `answer` leaves (None)."""

    def __init__(self, app, wsgi_app):
        self.wsgi_app = wsgi_app
        self.store = app.extensions["store"]
        self.keys = app.config["API_KEYS"]
        families = "|".join(FAMILIES)
        agent_id = LOWERCASE_UUID_PATTERN.strip("^$")
        self.paths = re.compile(
            rf"{re.escape(app.config['URL_PREFIX'])}/({families})(?:/({agent_id}))?"
        )
        # Builds URLs as url_for does for a request at the root.
        self.urls = app.url_map.bind("localhost")

    def __call__(self, environ, start_response):
        answer = None
        if not environ.get("SCRIPT_NAME"):
            match = self.paths.fullmatch(environ.get("PATH_INFO", ""))
            if match and self.takes(environ, *match.groups()) and self._authorized(environ):
                answer = self.answer(environ, *match.groups())
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def takes(self, environ, family, agent_id):
        """Whether this path answers the request (`agent_id` None for the family's path)."""
        raise NotImplementedError

    def answer(self, environ, family, agent_id):
        """(status, headers, body), or None to hand the request to Flask."""
        raise NotImplementedError

    def _authorized(self, environ):
        """No keys are set, or the Bearer token is one: else Flask answers the 401."""
        return not self.keys or known_key(environ.get("HTTP_AUTHORIZATION", ""), self.keys)
