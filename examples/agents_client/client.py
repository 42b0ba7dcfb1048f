"""A small client of the Agents API, written the way another service would write one.

It retries what is safe to retry (connection errors, 429 and 5xx), waits as long as Retry-After
asks, and sends every create with an Idempotency-Key, so a create whose answer was lost on the
way back is retried without making a second agent.
"""

import time
import uuid

import requests

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class AgentsApiError(Exception):
    """The service refused a request; `code` and `details` are from its error body."""

    def __init__(self, status, body):
        super().__init__(body.get("error", f"HTTP {status}"))
        self.status = status
        self.code = body.get("code")
        self.details = body.get("details", [])
        self.after_retry = False


class AgentsClient:
    """Create, read, change and delete agents at `base_url` (e.g. https://host/api/v1)."""

    def __init__(
        self,
        base_url,
        api_key=None,
        headers=None,
        retries=3,
        backoff=0.05,
        timeout=10,
        sleep=time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def create_agent(self, **fields):
        """Create an agent; one key for every attempt makes the retries safe."""
        key = {"Idempotency-Key": str(uuid.uuid4())}
        return self._send("POST", "/agents", json=fields, headers=key)["agent"]

    def get_agent(self, agent_id):
        return self._send("GET", f"/agents/{agent_id}")["agent"]

    def list_agents(self):
        return self._send("GET", "/agents")["agents"]

    def update_agent(self, agent_id, **changes):
        """Change some fields (a merge patch: sending it twice changes nothing more)."""
        return self._send("PATCH", f"/agents/{agent_id}", json=changes)["agent"]

    def delete_agent(self, agent_id):
        """Delete an agent. A retry that finds it gone means an earlier attempt did it."""
        try:
            self._send("DELETE", f"/agents/{agent_id}")
        except AgentsApiError as error:
            if error.status != 404 or not error.after_retry:
                raise

    def close(self):
        self.session.close()

    def _send(self, method, path, **kwargs):
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(
                    method, self.base_url + path, timeout=self.timeout, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout):
                if last:
                    raise
                self.sleep(self.backoff * 2**attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self.sleep(self._wait(response, attempt))
                continue
            if response.ok:
                return response.json()
            error = AgentsApiError(response.status_code, response.json())
            error.after_retry = attempt > 0
            raise error

    def _wait(self, response, attempt):
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return float(retry_after)
        return self.backoff * 2**attempt

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
