"""Every bound on a simulated call, so that no receiver can hold a worker or fill the database.

docs/testing.md quotes them. The timing can be shortened for the service's own tests
(`create_app({"CALL_TIMING": Timing(...)})`); it is no setting of the service.
"""

from typing import NamedTuple

MAX_SCRIPT_STEPS = 100
MAX_FAULT_DELAY_MS = 10_000
# What is read back of an answer; a longer one is cut off and recorded as `too_large`.
MAX_ANSWER_BYTES = 64 * 1024
# What the journal keeps of a request or response body; the request is always sent whole.
MAX_RECORDED_BODY_BYTES = 64 * 1024
MAX_RECORDED_HEADER_CHARS = 1_000


class Timing(NamedTuple):
    """How long a call waits, in seconds, for each part of it."""

    connect: float = 2.0
    assistant_request: float = 5.0
    tool_calls: float = 10.0
    other_events: float = 10.0
    # The whole call, delays and waits included: below gunicorn's 30-second worker timeout, so
    # that even a worker with a single thread (the sync worker) is never killed for a call.
    call: float = 25.0

    def answer_timeout(self, event):
        """How long after it is sent a delivery of `event` may take to be answered."""
        if event == "assistant-request":
            return self.assistant_request
        if event == "tool-calls":
            return self.tool_calls
        return self.other_events
