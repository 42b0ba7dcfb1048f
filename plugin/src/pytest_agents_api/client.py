"""The client of a running test double: its URL for the code under test, its /_test routes as
methods for the test."""

import json
import urllib.error
import urllib.parse
import urllib.request

NAMESPACE_HEADER = "X-Agents-Namespace"
# Above the service's own bound on a whole simulated call.
CALL_TIMEOUT = 60


class TestModeError(Exception):
    """A /_test route refused a helper's request; the message is the service's own."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, status, body):
        super().__init__(f"{status}: {body.get('error', body)}")
        self.status = status
        self.body = body


class AgentsApi:
    """A running test double: `url` for the client under test, and its /_test routes as methods.

    `headers` are the ones every request of the client must carry: the namespace and, for a
    shared server with keys, the API key. Paths given to helpers are the API's own (`/agents`,
    `/assistants/{id}`, ...), without the URL prefix.
    """

    def __init__(self, url, namespace="default", api_key=None):
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.namespace = namespace
        self.headers = {NAMESPACE_HEADER: namespace}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def reset(self, seed=None):
        """Forget every agent, journal entry, fault, call and the frozen clock; `seed` fixes the
        ids."""
        self._call("POST", "/_test/reset", {} if seed is None else {"seed": seed})

    def requests(self, method=None, path=None):
        """The journal of API requests, oldest first; `path` may use `{id}`."""
        query = {"method": method, "path": path and self.prefix + path}
        query = urllib.parse.urlencode({name: value for name, value in query.items() if value})
        return self._call("GET", "/_test/requests" + (f"?{query}" if query else ""))["requests"]

    def clear_requests(self):
        """Empty the journal."""
        self._call("DELETE", "/_test/requests")

    def fail(self, method, path, status=503, **options):
        """Make the next matching request fail; options: error, code, delay_ms, times,
        retry_after, after_commit."""
        fault = {"method": method, "path": self.prefix + path, "status": status, **options}
        return self._call("POST", "/_test/faults", fault)["fault"]

    def faults(self):
        """The faults still waiting, each with the uses it has left as `times`."""
        return self._call("GET", "/_test/faults")["faults"]

    def clear_faults(self):
        """Delete every fault."""
        self._call("DELETE", "/_test/faults")

    def freeze(self, now):
        """Stamp every create and update with `now` (2025-12-13T10:00:00.000Z)."""
        self._call("PUT", "/_test/clock", {"now": now})

    def unfreeze(self):
        """Let the clock run again."""
        self._call("DELETE", "/_test/clock")

    def load(self, agents):
        """Store agents as given (`id`, `created_at`, `updated_at` allowed); returns them."""
        return self._call("POST", "/_test/fixtures", {"agents": agents})["agents"]

    def snapshot(self, name):
        """Save the current agents, clock and id seed under `name`."""
        self._call("POST", "/_test/snapshots", {"name": name})

    def restore(self, name):
        """Put the state saved under `name` back exactly."""
        self._call("POST", f"/_test/snapshots/{urllib.parse.quote(name, safe='')}/restore")

    def simulate_call(self, assistant_id, script=(), **fields):
        """Run a simulated call of the agent to its end and return its record.

        `script` holds `{"role", "content"}` and `{"tool", "arguments"}` steps; `fields` are
        the rest of POST /_test/calls: type, customer, phone_number, end_reason,
        duration_seconds, analysis, faults.
        """
        body = {"assistant_id": assistant_id, "script": list(script), **fields}
        return self._call("POST", "/_test/calls", body, timeout=CALL_TIMEOUT)["call"]

    def calls(self):
        """The calls simulated, oldest first, each with its deliveries."""
        return self._call("GET", "/_test/calls")["calls"]

    def call(self, call_id):
        """One simulated call, with its deliveries."""
        return self._call("GET", f"/_test/calls/{urllib.parse.quote(call_id, safe='')}")["call"]

    def deliveries(self, event=None, call_id=None):
        """Every webhook delivery, oldest first; optionally of one event, or of one call."""
        query = {"event": event, "call_id": call_id}
        query = urllib.parse.urlencode({name: value for name, value in query.items() if value})
        return self._call("GET", "/_test/deliveries" + (f"?{query}" if query else ""))["deliveries"]

    def clear_deliveries(self):
        """Empty the journal of deliveries."""
        self._call("DELETE", "/_test/deliveries")

    def _call(self, method, path, body=None, timeout=30):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.origin + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                raise TestModeError(error.code, json.load(error)) from None
