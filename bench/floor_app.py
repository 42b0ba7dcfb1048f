"""The framework floor: Flask under gunicorn, doing nothing else.

It answers the benchmarked routes with constant bodies taken from the real service (a single
agent, the first list page), with the same status codes and headers, and touches no database.
The benchmark runs it with gunicorn's sync workers, and again under the service's own
configuration; what the service reaches as a fraction of the sync floor's speed is the
benchmark's figure of merit.
"""

import json
import os

from flask import Flask, Response

BODIES_VARIABLE = "BENCH_FLOOR_BODIES"
ETAG = '"00000000000000000000000000000000"'


def create_app():
    """Serve the bodies in the JSON file that BENCH_FLOOR_BODIES names."""
    with open(os.environ[BODIES_VARIABLE], encoding="utf-8") as file:
        bodies = json.load(file)
    agent = bodies["agent"].encode()
    page = bodies["list"].encode()
    app = Flask(__name__)

    @app.get("/agents")
    def list_page():
        return Response(page, mimetype="application/json")

    @app.post("/agents")
    def create():
        location = "/agents/00000000-0000-4000-8000-000000000000"
        return Response(
            agent, 201, {"ETag": ETAG, "Location": location}, mimetype="application/json"
        )

    @app.get("/agents/<agent_id>")
    def get_one(agent_id):
        return Response(agent, 200, {"ETag": ETAG}, mimetype="application/json")

    @app.patch("/agents/<agent_id>")
    def update(agent_id):
        return Response(agent, 200, {"ETag": ETAG}, mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        return Response(b'{"status":"ok"}', mimetype="application/json")

    return app
