"""The /_test routes of test mode: reset, fixtures, journal, faults, snapshots and the clock.

Each acts on the request's namespace only (X-Agents-Namespace, `default` without one).
"""

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

import models
from routes.jsonio import json_response, read_json_body
from testing_schemas import (
    ClockSchema,
    FaultSchema,
    FixturesSchema,
    JournalQuerySchema,
    ResetSchema,
    SnapshotSchema,
    is_name,
    taken_id_errors,
)

bp = Blueprint("testing", __name__, url_prefix="/_test")

RESET = ResetSchema()
FIXTURES = FixturesSchema()
JOURNAL_QUERY = JournalQuerySchema()
SNAPSHOT = SnapshotSchema()
CLOCK = ClockSchema()
SUCCESS = '{"success":true}'


@bp.post("/reset")
def reset():
    """Forget the namespace's agents, journal, faults and clock; a `seed` makes ids repeatable."""
    body = read_json_body() if request.get_data(cache=True) else {}
    models.reset_namespace(g.namespace, seed=RESET.load(body).get("seed"))
    return json_response(SUCCESS)


@bp.post("/fixtures")
def load_fixtures():
    """Load agents as given, all or none."""
    agents = FIXTURES.load(read_json_body())["agents"]
    try:
        loaded = models.load_agents(agents, g.namespace)
    except models.AgentIdsTaken as error:
        raise ValidationError(taken_id_errors(error.indexes)) from None
    return json_response('{"agents":[%s]}' % ",".join(agent.document for agent in loaded), 201)


@bp.get("/requests")
def list_requests():
    """The journal of API requests, oldest first, optionally filtered by method and path."""
    query = JOURNAL_QUERY.load(request.args.to_dict())
    return jsonify(requests=models.journal(namespace=g.namespace, **query))


@bp.delete("/requests")
def clear_requests():
    """Empty the journal."""
    models.clear_journal(g.namespace)
    return json_response(SUCCESS)


@bp.post("/faults")
def add_fault():
    """Make the next matching API requests fail."""
    schema = FaultSchema(api_root=current_app.config["URL_PREFIX"] + "/agents")
    fault = models.add_fault(schema.load(read_json_body()), g.namespace)
    return jsonify(fault=fault), 201


@bp.get("/faults")
def list_faults():
    """The faults still waiting, oldest first."""
    return jsonify(faults=models.faults(g.namespace))


@bp.delete("/faults")
def clear_faults():
    """Delete every fault."""
    models.clear_faults(g.namespace)
    return json_response(SUCCESS)


@bp.post("/snapshots")
def save_snapshot():
    """Save the namespace's state under a name."""
    name = SNAPSHOT.load(read_json_body())["name"]
    count = models.save_snapshot(name, g.namespace)
    return jsonify(snapshot={"name": name, "agents": count}), 201


@bp.post("/snapshots/<name>/restore")
def restore_snapshot(name):
    """Put a saved state back exactly: agents, ids, timestamps, clock and id seed."""
    if not is_name(name):
        raise models.SnapshotNotFound(name)
    models.restore_snapshot(name, g.namespace)
    return json_response(SUCCESS)


@bp.put("/clock")
def freeze_clock():
    """Freeze the clock that stamps created_at and updated_at."""
    now = CLOCK.load(read_json_body())["now"]
    models.freeze_clock(now, g.namespace)
    return jsonify(now=now)


@bp.delete("/clock")
def release_clock():
    """Let the clock run again."""
    models.release_clock(g.namespace)
    return json_response(SUCCESS)
