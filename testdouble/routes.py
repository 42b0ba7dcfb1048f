"""The /_test routes of test mode: reset, fixtures, journal, faults, snapshots, the clock, and
simulated calls with the journal of their webhook deliveries.

Each acts on the request's namespace only (X-Agents-Namespace, `default` without one).
"""

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

from models import AgentIdsTaken
from openapi import BODY_ERRORS, operation
from routes.jsonio import json_response, read_json_body
from schemas import SuccessSchema
from testdouble import state
from testdouble.calls import records, runner
from testdouble.calls.schemas import (
    CallEnvelopeSchema,
    CallListSchema,
    CallRequestSchema,
    DeliveryListSchema,
    DeliveryQuerySchema,
)
from testdouble.schemas import (
    AgentsLoadedSchema,
    ClockSchema,
    FaultEnvelopeSchema,
    FaultListSchema,
    FaultSchema,
    FixturesSchema,
    JournalQuerySchema,
    JournalSchema,
    ResetSchema,
    SnapshotEnvelopeSchema,
    SnapshotSchema,
    is_name,
    taken_id_errors,
)

bp = Blueprint("testing", __name__, url_prefix="/_test")
bp.tag = "test mode"
bp.uses_database = True
bp.protected = True

RESET = ResetSchema()
FIXTURES = FixturesSchema()
JOURNAL_QUERY = JournalQuerySchema()
SNAPSHOT = SnapshotSchema()
CLOCK = ClockSchema()
CALL_REQUEST = CallRequestSchema()
DELIVERY_QUERY = DeliveryQuerySchema()
CALL_ID = {"call_id": {"description": "The call's id.", "schema": {"type": "string"}}}
SUCCESS = '{"success":true}'
DONE = (200, "Done.", SuccessSchema, None)


@bp.post("/reset")
@operation(ok=DONE, body=ResetSchema, errors=BODY_ERRORS)
def reset():
    """Forget the namespace's agents, journal, faults and clock; a `seed` makes ids repeatable."""
    body = read_json_body() if request.get_data(cache=True) else {}
    state.reset_namespace(g.namespace, seed=RESET.load(body).get("seed"))
    return json_response(SUCCESS)


@bp.post("/fixtures")
@operation(
    ok=(201, "The loaded agents.", AgentsLoadedSchema, None),
    body=FixturesSchema,
    errors=BODY_ERRORS,
)
def load_fixtures():
    """Load agents as given, all or none."""
    agents = FIXTURES.load(read_json_body())["agents"]
    try:
        loaded = state.load_agents(agents, g.namespace)
    except AgentIdsTaken as error:
        raise ValidationError(taken_id_errors(error.indexes)) from None
    return json_response('{"agents":[%s]}' % ",".join(agent.document for agent in loaded), 201)


@bp.get("/requests")
@operation(ok=(200, "The journal.", JournalSchema, None), query=JournalQuerySchema, errors=(400,))
def list_requests():
    """The journal of API requests, oldest first, optionally filtered by method and path."""
    query = JOURNAL_QUERY.load_query(request.args)
    return jsonify(requests=state.journal(namespace=g.namespace, **query))


@bp.delete("/requests")
@operation(ok=DONE)
def clear_requests():
    """Empty the journal."""
    state.clear_journal(g.namespace)
    return json_response(SUCCESS)


@bp.post("/faults")
@operation(ok=(201, "The fault.", FaultEnvelopeSchema, None), body=FaultSchema, errors=BODY_ERRORS)
def add_fault():
    """Make the next matching API requests fail."""
    schema = FaultSchema(api_roots=current_app.config["API_ROOTS"])
    fault = state.add_fault(schema.load(read_json_body()), g.namespace)
    return jsonify(fault=fault), 201


@bp.get("/faults")
@operation(ok=(200, "The faults.", FaultListSchema, None))
def list_faults():
    """The faults still waiting, oldest first."""
    return jsonify(faults=state.faults(g.namespace))


@bp.delete("/faults")
@operation(ok=DONE)
def clear_faults():
    """Delete every fault."""
    state.clear_faults(g.namespace)
    return json_response(SUCCESS)


@bp.post("/snapshots")
@operation(
    ok=(201, "Saved.", SnapshotEnvelopeSchema, None), body=SnapshotSchema, errors=BODY_ERRORS
)
def save_snapshot():
    """Save the namespace's state under a name."""
    name = SNAPSHOT.load(read_json_body())["name"]
    count = state.save_snapshot(name, g.namespace)
    return jsonify(snapshot={"name": name, "agents": count}), 201


@bp.post("/snapshots/<name>/restore")
@operation(ok=DONE, errors=(404,), path_parameters={"name": {"schema": {"type": "string"}}})
def restore_snapshot(name):
    """Put a saved state back exactly: agents, ids, timestamps, clock and id seed."""
    if not is_name(name):
        raise state.SnapshotNotFound(name)
    state.restore_snapshot(name, g.namespace)
    return json_response(SUCCESS)


@bp.put("/clock")
@operation(ok=(200, "The frozen time.", ClockSchema, None), body=ClockSchema, errors=BODY_ERRORS)
def freeze_clock():
    """Freeze the clock that stamps created_at and updated_at."""
    now = CLOCK.load(read_json_body())["now"]
    state.freeze_clock(now, g.namespace)
    return jsonify(now=now)


@bp.delete("/clock")
@operation(ok=DONE)
def release_clock():
    """Let the clock run again."""
    state.release_clock(g.namespace)
    return json_response(SUCCESS)


@bp.post("/calls")
@operation(
    ok=(201, "The call, as it ended.", CallEnvelopeSchema, None),
    body=CallRequestSchema,
    errors=(404, *BODY_ERRORS),
)
def simulate_call():
    """Play the platform's side of a call: deliver its webhooks, signed and in order."""
    call = runner.run_call(
        CALL_REQUEST.load(read_json_body()), g.namespace, current_app.extensions["call_timing"]
    )
    return jsonify(call=call), 201


@bp.get("/calls")
@operation(ok=(200, "The calls.", CallListSchema, None))
def list_calls():
    """The calls simulated, oldest first, each with its deliveries."""
    return jsonify(calls=records.calls(g.namespace))


@bp.get("/calls/<call_id>")
@operation(ok=(200, "The call.", CallEnvelopeSchema, None), errors=(404,), path_parameters=CALL_ID)
def get_call(call_id):
    """One simulated call, with its deliveries."""
    return jsonify(call=records.call(call_id, g.namespace))


@bp.get("/deliveries")
@operation(
    ok=(200, "The deliveries.", DeliveryListSchema, None), query=DeliveryQuerySchema, errors=(400,)
)
def list_deliveries():
    """Every webhook delivery of the calls, oldest first, optionally by event or call."""
    query = DELIVERY_QUERY.load(request.args.to_dict())
    return jsonify(deliveries=records.deliveries(namespace=g.namespace, **query))


@bp.delete("/deliveries")
@operation(ok=DONE)
def clear_deliveries():
    """Empty the journal of deliveries."""
    records.clear_deliveries(g.namespace)
    return json_response(SUCCESS)
