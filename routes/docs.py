"""The OpenAPI document and an interactive reference whose assets the service serves itself."""

from flask import Blueprint, current_app, jsonify
from flask_swagger_ui import get_swaggerui_blueprint

from openapi import build_spec

bp = Blueprint("docs", __name__)
REFERENCE = "reference"


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document, built once from the schemas."""
    spec = current_app.extensions.get("openapi")
    if spec is None:
        spec = current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(spec)


def register_reference(app):
    """Swagger UI at /docs, its JavaScript and CSS served from the installed package."""
    reference = get_swaggerui_blueprint(
        "/docs",
        "/openapi.json",
        config={"app_name": "Agents API", "validatorUrl": None},
        blueprint_name=REFERENCE,
    )
    app.register_blueprint(reference)
    # The page itself answers at /docs as well as /docs/, with no redirect in between.
    app.add_url_rule("/docs", "reference_page", app.view_functions[f"{REFERENCE}.show"])
