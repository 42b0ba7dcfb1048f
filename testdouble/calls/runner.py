"""Running a simulated call from its request to its record, delivering each event in order.

The order is the platform's: assistant-request (its answer picks the agent, or refuses the
call), status-update in-progress, the script's steps (a tool step delivers tool-calls and puts
the tool's result into the transcript), status-update ended, end-of-call-report. Every
delivery, sent, faulted or not sent, goes into the journal with the call when it ends.
"""

import hashlib
import time

from marshmallow import ValidationError

from store import current_store, utc_timestamp, write_transaction
from testdouble import state
from testdouble.analysis import Unsatisfiable, generate
from testdouble.calls import agents, answers, delivery, messages, records
from testdouble.calls.bounds import MAX_RECORDED_BODY_BYTES, MAX_RECORDED_HEADER_CHARS
from testdouble.calls.faults import Faults

REFUSED_END_REASON = "assistant-request-error"
ASYNC_RESULT = "The tool runs asynchronously; its result is not awaited."


def run_call(request, namespace, timing):
    """Run the call `request` (validated) asks for to its end; returns its record.

    Raises AgentNotFound for an unknown agent, and ValidationError when the agent's analysis
    schema admits no value and the call gives none; either way nothing is delivered.
    """
    called = agents.stored(request["assistant_id"], namespace)
    with write_transaction():  # an unusable schema rolls the id back: nothing changes
        call_id = current_store().new_id(namespace)
        analysis = request.get("analysis")
        if "analysis" not in request:
            analysis = _analysis_or_refusal(called, _analysis_seed(namespace, call_id))
    return _Call(request, namespace, timing, called, call_id, analysis).run()


def _analysis_seed(namespace, call_id):
    """The analysis generator's seed: from the namespace's seed (if reset with one) and the id."""
    sequence = state.IdSequence.get_or_none(state.IdSequence.namespace == namespace)
    seeded = "none" if sequence is None else sequence.seed
    return int.from_bytes(hashlib.sha256(f"{seeded}:{call_id}".encode()).digest()[:8], "big")


def planned_analysis(agent, seed):
    """A value for the agent's enabled structured-data schema, or None without one.

    Raises ValueError (Unsatisfiable among them) when the schema admits no value it can make.
    """
    plan = (agent.fields.get("analysis_plan") or {}).get("structured_data_plan") or {}
    if not plan.get("enabled") or "schema" not in plan:
        return None
    return generate(plan["schema"], seed)


def _analysis_or_refusal(agent, seed):
    try:
        return planned_analysis(agent, seed)
    except ValueError as error:
        raise ValidationError({"analysis": [_no_analysis(error)]}) from None


def _no_analysis(error):
    kind = "admits no value" if isinstance(error, Unsatisfiable) else "cannot be used"
    return (
        f"must be given: the agent's analysis_plan.structured_data_plan.schema {kind} "
        f"({str(error).rstrip('.')})."
    )


class _Call:
    """One call as it runs: its facts, faults, deadline, transcript and what it delivered."""

    def __init__(self, request, namespace, timing, called, call_id, analysis):
        self.request = request
        self.namespace = namespace
        self.timing = timing
        self.called = called
        self.call_id = call_id
        self.analysis = analysis
        self.analysis_error = None
        self.deadline = time.monotonic() + timing.call
        # Read once: a clock frozen for the call stays frozen for all of it.
        frozen = state.frozen_time(namespace)
        self.now = utc_timestamp if frozen is None else lambda: frozen
        self.faults = Faults(request["faults"])
        customer, phone_number = messages.parties(
            call_id, request["type"], request.get("customer"), request.get("phone_number")
        )
        self.facts = messages.CallFacts(
            call_id, request["type"], customer, phone_number, called.public
        )
        self.transcript = []
        self.tool_calls = []
        self.skipped = []
        self.deliveries = []
        self.error = None

    def run(self):
        resolution = self._resolve()
        if resolution.answer == "error":
            return self._refuse(resolution)
        agent = resolution.agent
        self.facts.assistant = agent.public
        plan = agent.fields.get("analysis_plan")
        if "analysis" not in self.request and plan != self.called.fields.get("analysis_plan"):
            self._plan_analysis_again(agent)
        routing = agents.Routing(self.called, agent, resolution.involved)
        started_at = self.now()
        in_progress = {"status": "in-progress"}
        self._event("status-update", routing.event("status-update"), "in-progress", in_progress)
        for index, step in enumerate(self.request["script"]):
            if "tool" in step:
                self._tool_step(index, step, agent, routing)
            else:
                self.transcript.append({"role": step["role"], "content": step["content"]})
        ended_at = self.now()
        end_reason = self.request["end_reason"]
        ended = {"status": "ended", "end_reason": end_reason}
        self._event("status-update", routing.event("status-update"), "ended", ended)
        duration = self.request.get("duration_seconds")
        if duration is None:
            duration = messages.unix_seconds(ended_at) - messages.unix_seconds(started_at)
        report = {
            "duration_seconds": duration,
            "summary": messages.summary(agent.public, self.transcript),
            "messages": self.transcript,
            "analysis": self.analysis,
            "recording_url": None,
            "end_reason": end_reason,
            "started_at": started_at,
            "ended_at": ended_at,
        }
        route = routing.event("end-of-call-report")
        self._event("end-of-call-report", route, "ended", report)
        return self._record(resolution, "ended", end_reason, duration, started_at, ended_at)

    def _resolve(self):
        route = agents.first_route(self.called, "assistant-request")
        if route.url is None:
            self.skipped.append({"event": "assistant-request", "reason": route.skipped})
            return answers.unanswered(self.called)
        answer = self._deliver("assistant-request", route, "ringing", {})
        if answer is None:
            return answers.unanswered(self.called)
        seconds = self.timing.answer_timeout("assistant-request")
        return answers.resolve(self.called, answer, seconds, self.namespace)

    def _refuse(self, resolution):
        routing = agents.Routing(self.called, self.called, resolution.involved)
        self.error = resolution.reason
        refused = {
            "status": "ended-with-error",
            "end_reason": REFUSED_END_REASON,
            "error": resolution.reason,
        }
        self._event("status-update", routing.event("status-update"), "ended-with-error", refused)
        self.analysis = None
        ended_at = self.now()
        return self._record(resolution, "ended-with-error", REFUSED_END_REASON, 0, None, ended_at)

    def _plan_analysis_again(self, agent):
        """The agent the answer chose has a plan of its own; too late now for a 400."""
        try:
            self.analysis = planned_analysis(agent, _analysis_seed(self.namespace, self.call_id))
        except ValueError as error:
            self.analysis = None
            self.analysis_error = "analysis " + _no_analysis(error)

    def _tool_step(self, index, step, agent, routing):
        name, arguments = step["tool"], step["arguments"]
        entry = messages.tool_call(self.call_id, index, name, arguments)
        tool = agents.find_tool(agent, name)
        record = {"id": entry["id"], "name": name, "arguments": arguments, "async": False}
        if tool is None:
            self.skipped.append({"event": "tool-calls", "tool": name, "reason": "unknown_tool"})
            result = answers.ToolResult("none", None, f"The agent has no tool called {name}.")
        else:
            record["async"] = agents.is_async(tool)
            result = self._call_tool(tool, entry, routing, record["async"])
        self.tool_calls.append({**record, **result._asdict()})
        if result.form == "async":
            content = (tool or {}).get("async_response") or ASYNC_RESULT
        elif result.form == "none":
            content = messages.transcript_text({"error": result.reason})
        else:
            content = messages.transcript_text(result.result)
        self.transcript.append({"role": "tool", "content": content})

    def _call_tool(self, tool, entry, routing, is_async):
        route = routing.tool(tool)
        name = entry["function"]["name"]
        if route.url is None:
            self.skipped.append({"event": "tool-calls", "tool": name, "reason": route.skipped})
            return answers.ToolResult("none", None, "The tool call was not delivered.")
        fields = {"tool_call_list": [entry]}
        answer = self._deliver("tool-calls", route, "in-progress", fields, not is_async)
        if answer is None:
            return answers.ToolResult("none", None, "The tool call was not delivered.")
        if is_async:
            return answers.ToolResult("async", None, None)
        seconds = self.timing.answer_timeout("tool-calls")
        return answers.tool_result(answer, entry["id"], seconds)

    def _event(self, event, route, status, fields):
        if route.url is None:
            self.skipped.append({"event": event, "reason": route.skipped})
            return
        self._deliver(event, route, status, fields)

    def _deliver(self, event, route, status, fields, await_answer=True):
        """Send one event as its fault says; returns the (first) answer, None if none was sent."""
        fault = self.faults.get(event)
        sent_at = self.now()
        body = self.facts.body(event, sent_at, status, fields)
        timestamp = messages.unix_seconds(sent_at) + fault.timestamp_shift
        headers = _headers(route.url, event, timestamp, body)
        secret = fault.signing_secret(route.secret)
        if secret is not None:
            headers["X-Webhook-Signature"] = delivery.signature(secret, timestamp, body)
        record = _Delivery(self.call_id, event, route.url, fault.shown, headers, body, sent_at)
        if fault.drop:
            return self._journal(record.not_sent("dropped"))
        if fault.delay_ms:  # sleep(0) would still give the processor away
            time.sleep(min(fault.delay_ms / 1000, max(self.deadline - time.monotonic(), 0)))
        first = None
        for _ in range(fault.copies):
            if time.monotonic() >= self.deadline:
                self.error = f"The call ran past its {self.timing.call:g} s deadline."
                self._journal(record.not_sent("deadline_exceeded"))
                break
            deadline = min(time.monotonic() + self.timing.answer_timeout(event), self.deadline)
            answer = delivery.post(
                route.url, headers, body, self.timing.connect, deadline, await_answer
            )
            self._journal(record.sent(answer, await_answer))
            first = first or answer
        return first

    def _journal(self, entry):
        self.deliveries.append(entry)

    def _record(self, resolution, status, end_reason, duration, started_at, ended_at):
        call = {
            "id": self.call_id,
            "type": self.facts.call_type,
            "status": status,
            "assistant_id": self.called.stored_id,
            "assistant": self.facts.assistant,
            "resolution": {"answer": resolution.answer, "reason": resolution.reason},
            "customer": self.facts.customer,
            "phone_number": self.facts.phone_number,
            "end_reason": end_reason,
            "error": self.error,
            "messages": self.transcript,
            "tool_calls": self.tool_calls,
            "analysis": self.analysis,
            "analysis_error": self.analysis_error,
            "duration_seconds": duration,
            "started_at": started_at,
            "ended_at": ended_at,
            "skipped": self.skipped,
        }
        records.record_call(call, self.deliveries, self.namespace)
        return {**call, "deliveries": self.deliveries}


def _headers(url, event, timestamp, body):
    """Every header the delivery is sent with, so that the journal shows all of them."""
    return {
        "Host": delivery.host_of(url),
        "User-Agent": delivery.USER_AGENT,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Accept-Encoding": "identity",
        "X-Webhook-Event": event,
        "X-Webhook-Timestamp": str(timestamp),
    }


class _Delivery:
    """A delivery as the journal keeps it, before and after it is sent."""

    def __init__(self, call_id, event, url, fault, headers, body, sent_at):
        self.base = {
            "call_id": call_id,
            "event": event,
            "url": url,
            "fault": fault,
            "request": {"method": "POST", "headers": headers, **_recorded_body(body)},
            "sent_at": sent_at,
        }

    def not_sent(self, error):
        return {**self.base, "sent": False, "awaited": False, "response": None,
                "duration_ms": 0, "error": error}  # fmt: skip

    def sent(self, answer, awaited):
        response = None
        if answer.status is not None:
            response = {
                "status": answer.status,
                "headers": {
                    name: value[:MAX_RECORDED_HEADER_CHARS]
                    for name, value in answer.headers.items()
                },
                **_recorded_body(answer.body, answer.error == "too_large"),
            }
        return {
            **self.base,
            "sent": True,
            "awaited": awaited,
            "response": response,
            "duration_ms": round(answer.seconds * 1000),
            "error": answer.error,
        }


def _recorded_body(body, cut_off=False):
    kept = body[:MAX_RECORDED_BODY_BYTES]
    return {
        "body": kept.decode("utf-8", "replace"),
        "truncated": cut_off or len(body) > len(kept),
    }
