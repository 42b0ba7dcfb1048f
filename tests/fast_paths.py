"""Two apps on one database, one with the fast paths (routes/fast_reads.py, fast_writes.py) and
one without, and what each answers."""

from logs import REQUEST_ID
from tests.conftest import VALID_AGENT


class Pair:
    def __init__(self, fast, flask_only, seen):
        self.fast, self.flask_only, self.seen = fast, flask_only, seen

    @classmethod
    def of(cls, make_app, **settings):
        """Build (with fast paths, without), both with `settings`, and the requests Flask saw."""
        fast = make_app(**settings)
        flask_only = make_app(FAST_PATHS=False, **settings)
        seen = []
        # First of the hooks, so that it sees the requests the others refuse too.
        fast.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(REQUEST_ID))
        return cls(fast.test_client(), flask_only.test_client(), seen)

    def create(self, headers=None, path="/agents", **overrides):
        response = self.flask_only.post(path, json={**VALID_AGENT, **overrides}, headers=headers)
        assert response.status_code == 201, response.get_json()
        return next(iter(response.get_json().values()))

    def answers(self, method, path, headers=(), **request):
        """The same request to both apps: (the fast app's answer, Flask's, whether the fast
        path answered it, that is Flask did not see it)."""
        headers = {"X-Request-ID": "same-request", **dict(headers)}
        seen_before = len(self.seen)
        fast = self.fast.open(path, method=method, headers=headers, **request)
        answered_fast = len(self.seen) == seen_before
        flask = self.flask_only.open(path, method=method, headers=headers, **request)
        return fast, flask, answered_fast

    def same_answer(self, path, headers=(), method="GET", **request):
        """Asserts both apps answer the request with the same bytes; returns the answer and
        whether the fast path gave it."""
        fast, flask, answered_fast = self.answers(method, path, headers, **request)
        assert fast.status == flask.status
        assert fast.headers.to_wsgi_list() == flask.headers.to_wsgi_list()
        assert fast.data == flask.data
        return fast, answered_fast
