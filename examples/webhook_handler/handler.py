"""A webhook handler of the kind a service built on the platform writes: a small Flask app.

Every event comes to one URL, `/webhook`. It answers `assistant-request` by picking the agent for
the caller (a regular customer gets the VIP agent with a greeting by name, a blocked number is
refused), answers the `order_status` tool from its order book, keeps each call's status updates
and its end-of-call report (once, however often it is delivered), and refuses every delivery
whose signature or timestamp is not right.

    flask --app 'handler:create_app("whsec-...", {"vip": "<agent id>"})' run
"""

import functools
import hashlib
import hmac
import json
import time

from flask import Flask, jsonify, request

MAX_AGE_SECONDS = 300


def signature_is_valid(payload, signature, timestamp, secret, now=None):
    """The platform's scheme: sha256=HMAC-SHA256(secret, "<timestamp>.<raw body>"), and fresh."""
    if not signature or not timestamp or not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    signed = timestamp.encode() + b"." + payload
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode(), expected.encode())


def create_app(secret, agents, customers=None, orders=None):
    """The handler, verifying with `secret`; `agents` maps "vip" to an agent id.

    `customers` maps a phone number to `{"name", "vip"?, "blocked"?}`; `orders` maps an order id
    to what the order_status tool answers about it.
    """
    app = Flask(__name__)
    customers = customers or {}
    orders = orders or {}
    app.reports = {}  # call id -> its end-of-call report
    app.statuses = {}  # call id -> the statuses it went through

    def signed(view):
        """Refuse a delivery the platform did not sign, or signed too long ago."""

        @functools.wraps(view)
        def checked():
            headers = request.headers
            signature = headers.get("X-Webhook-Signature")
            timestamp = headers.get("X-Webhook-Timestamp")
            if not signature_is_valid(request.get_data(), signature, timestamp, secret):
                return jsonify(error="Invalid signature or timestamp."), 401
            return view(json.loads(request.get_data())["message"])

        return checked

    def pick_agent(number):
        customer = customers.get(number)
        if customer is None:
            return {}  # the agent the number is configured with
        if customer.get("blocked"):
            return {"error": "Calls from this number are not accepted."}
        if customer.get("vip"):
            greeting = f"Welcome back, {customer['name']}! How can I help?"
            return {
                "assistant_id": agents["vip"],
                "assistant_override": {"first_message": greeting},
            }
        return {}

    def answer_tool(tool_call):
        function = tool_call["function"]
        if function["name"] != "order_status":
            result = {"error": f"Unknown tool {function['name']}."}
        else:
            order_id = function["arguments"].get("order_id")
            result = orders.get(order_id, {"error": f"No order {order_id}."})
        return {"tool_call_id": tool_call["id"], "result": result}

    @app.post("/webhook")
    @signed
    def webhook(message):
        call_id = message["call"]["id"]
        if message["type"] == "assistant-request":
            return jsonify(pick_agent(message["customer"]["number"]))
        if message["type"] == "tool-calls":
            return jsonify(results=[answer_tool(call) for call in message["tool_call_list"]])
        if message["type"] == "status-update":
            app.statuses.setdefault(call_id, []).append(message["status"])
        elif message["type"] == "end-of-call-report":
            # A delivery may come twice: the first one is kept.
            app.reports.setdefault(
                call_id,
                {
                    "summary": message["summary"],
                    "analysis": message["analysis"],
                    "duration_seconds": message["duration_seconds"],
                    "end_reason": message["end_reason"],
                },
            )
        return jsonify(received=True)

    @app.get("/reports/<call_id>")
    def report(call_id):
        if call_id not in app.reports:
            return jsonify(error="No report for that call."), 404
        return jsonify(app.reports[call_id])

    return app
