"""What a call takes from a receiver's answer: the agent to go on with, or a tool's result.

An assistant-request answer is `{}` (the stored agent), `{"assistant": {...}}` (a transient
agent, validated like a POST body), `{"assistant_id", "assistant_override"?}` (another stored
agent, shallow-merged with the override and validated) or `{"error"}` (the call is refused).
Anything else, or no 2xx answer in time, leaves the stored agent in place, with the reason.
"""

from typing import Any, NamedTuple

from marshmallow import ValidationError

from models import AgentNotFound
from schemas import AGENT
from sentences import validation_message
from stored_form import to_json
from strict_json import parse_json
from testdouble.calls import agents

TRANSPORT_PROBLEMS = {
    "connection_refused": "The receiver refused the connection.",
    "connection_error": "The receiver could not be reached.",
    "tls_error": "The TLS handshake with the receiver failed.",
    "invalid_response": "The receiver's answer was not valid HTTP.",
    "too_large": "The answer was larger than the service reads.",
}


class Resolution(NamedTuple):
    """The agent a call goes on with, and how its assistant-request answer decided it.

    `answer` is none (no assistant-request was delivered), stored, transient, assistant_id,
    error (the call is refused, `reason` holds the answer's text) or invalid (`reason` says
    why it was not used).
    """

    answer: str
    agent: agents.CallAgent
    reason: str | None
    involved: tuple


class ToolResult(NamedTuple):
    """A tool's result and the form it came in: results, result, error, raw, or none (with
    the reason no result came)."""

    form: str
    result: Any
    reason: str | None


def unanswered(called):
    """The resolution of a call whose assistant-request was not delivered."""
    return Resolution("none", called, None, (called,))


def resolve(called, answer, seconds, namespace):
    """The resolution of a call from the answer to its assistant-request."""
    body, problem = _answer_body(answer, seconds)
    if problem is None and not isinstance(body, dict):
        problem = "The answer is not a JSON object."
    if problem is not None:
        return Resolution("invalid", called, problem, (called,))
    if "error" in body:
        error = body["error"]
        return Resolution(
            "error", called, error if isinstance(error, str) else to_json(error), (called,)
        )
    try:
        if "assistant" in body:
            return Resolution(
                "transient", agents.transient(_agent(body["assistant"])), None, (called,)
            )
        if "assistant_id" in body:
            return _other_agent(called, body, namespace)
    except ValidationError as error:
        reason = f"The answer's agent is not valid: {validation_message(error.messages)}"
        return Resolution("invalid", called, reason, (called,))
    except _Unusable as error:
        return Resolution("invalid", called, str(error), (called,))
    if body:
        reason = "The answer has none of assistant, assistant_id and error."
        return Resolution("invalid", called, reason, (called,))
    return Resolution("stored", called, None, (called,))


class _Unusable(Exception):
    """An answer that names something the call cannot use; the message says what."""


def _agent(value):
    if not isinstance(value, dict):
        raise _Unusable("The answer's assistant is not an object.")
    return AGENT.load(value)


def _other_agent(called, body, namespace):
    agent_id = body["assistant_id"]
    override = body.get("assistant_override", {})
    if not isinstance(agent_id, str):
        raise _Unusable("The answer's assistant_id is not a string.")
    if not isinstance(override, dict):
        raise _Unusable("The answer's assistant_override is not an object.")
    try:
        other = agents.stored(agent_id, namespace)
    except AgentNotFound:
        raise _Unusable(f"The answer's assistant_id {agent_id} names no stored agent.") from None
    resolved = agents.overridden(other, _agent({**other.fields, **override})) if override else other
    return Resolution("assistant_id", resolved, None, (called, other))


def tool_result(answer, tool_call_id, seconds):
    """A synchronous tool's result from its answer."""
    body, problem = _answer_body(answer, seconds)
    if problem is not None:
        return ToolResult("none", None, problem)
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        for entry in body["results"]:
            if isinstance(entry, dict) and entry.get("tool_call_id") == tool_call_id:
                return ToolResult("results", entry.get("result"), None)
        return ToolResult("none", None, f"The answer's results hold none for {tool_call_id}.")
    if isinstance(body, dict) and "result" in body:
        return ToolResult("result", body["result"], None)
    if isinstance(body, dict) and "error" in body:
        return ToolResult("error", {"error": body["error"]}, None)
    return ToolResult("raw", body, None)


def _answer_body(answer, seconds):
    """The answer's JSON and None, or None and the reason there is none to use."""
    if answer.error == "timeout":
        return None, f"No answer came within {seconds:g} s."
    if answer.error is not None:
        return None, TRANSPORT_PROBLEMS[answer.error]
    if not 200 <= answer.status < 300:
        return None, f"The receiver answered {answer.status}."
    try:
        return parse_json(answer.body), None
    except ValueError:
        return None, "The answer is not JSON."
