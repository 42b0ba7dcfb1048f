"""What each delivery of a call carries: the body of section 8 of the contract, as sent bytes.

Every body is `{"message": {"type", "timestamp", "call", "phone_number", "customer",
"assistant", ...event fields}}`, written as compact UTF-8 JSON with its keys in a fixed order,
so that the same call on a frozen clock is delivered byte for byte the same.
"""

import hashlib
import uuid
from datetime import UTC, datetime

from stored_form import to_json

PHONE_CALL_NUMBER = "+12025550100"  # a number of the 555-01xx range kept for fiction
CUSTOMER_NUMBER = "+12025550143"


def derived_id(call_id, what):
    """An id that depends only on the call's id and what it names: a lowercase UUIDv4."""
    digest = hashlib.sha256(f"{call_id}:{what}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def parties(call_id, call_type, customer=None, phone_number=None):
    """The call's `customer` and `phone_number` objects: the given members over the defaults.

    A phone call has a number on both ends; a web call has neither.
    """
    if call_type == "web_call":
        number_defaults = {"id": None, "number": None, "name": None}
        customer_defaults = {"number": None}
    else:
        number_defaults = {
            "id": derived_id(call_id, "phone-number"),
            "number": PHONE_CALL_NUMBER,
            "name": None,
        }
        customer_defaults = {"number": CUSTOMER_NUMBER}
    return {**customer_defaults, **(customer or {})}, {**number_defaults, **(phone_number or {})}


class CallFacts:
    """What every delivery of one call repeats: its id, type, ends, and agent."""

    def __init__(self, call_id, call_type, customer, phone_number, assistant):
        self.call_id = call_id
        self.call_type = call_type
        self.customer = customer
        self.phone_number = phone_number
        self.assistant = assistant

    def body(self, event, timestamp, call_status, event_fields):
        """The delivery's body as bytes: the event's message at `timestamp`, its fields last."""
        message = {
            "type": event,
            "timestamp": timestamp,
            "call": {"id": self.call_id, "type": self.call_type, "status": call_status},
            "phone_number": self.phone_number,
            "customer": self.customer,
            "assistant": self.assistant,
            **event_fields,
        }
        return to_json({"message": message}).encode()


def tool_call(call_id, step_index, name, arguments):
    """One entry of a tool-calls delivery's `tool_call_list`."""
    return {
        "id": derived_id(call_id, f"tool-call-{step_index}"),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def transcript_text(result):
    """A tool's result as the transcript holds it: a string as it is, anything else as JSON."""
    return result if isinstance(result, str) else to_json(result)


def summary(agent, messages):
    """The end-of-call report's summary of a simulated call."""
    spoken = sum(1 for message in messages if message["role"] in ("user", "assistant"))
    tools = len(messages) - spoken
    return (
        f"Simulated call with {agent.get('name') or 'a transient agent'}: "
        f"{spoken} messages, {tools} tool calls."
    )


def unix_seconds(timestamp):
    """A service timestamp (2025-12-13T10:00:00.000Z) as whole Unix seconds."""
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(moment.timestamp())
