"""The application factory: `gunicorn 'app:create_app()'`."""

from flask import Flask, request

import models
import testing_hooks
from auth import require_api_key
from commands import COMMANDS
from config import ConfigError, load_settings, normalise_prefix, parse_api_keys, sqlite_path
from errors import register_error_handlers
from logs import RequestLog, configure_logging
from routes import agents, docs, health, testing


def create_app(test_config=None):
    """Build the service from the environment's AGENTS_* settings, then `test_config`."""
    app = Flask(__name__)
    app.config.update(load_settings())
    app.config.update(test_config or {})
    app.config["URL_PREFIX"] = normalise_prefix(app.config["URL_PREFIX"])
    if isinstance(app.config["API_KEYS"], str):
        app.config["API_KEYS"] = parse_api_keys(app.config["API_KEYS"])
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    # OPTIONS is not part of the API: it gets a 405 in the error shape, with Allow.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    if app.config["FIXTURES"] and not app.config["TEST_MODE"]:
        raise ConfigError("AGENTS_FIXTURES needs AGENTS_TEST_MODE=1: fixtures are for test doubles.")
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    configure_logging(app.config["LOG_LEVEL"])
    models.bind_database(sqlite_path(app.config["DATABASE_URL"]), app.config["TEST_MODE"])
    if app.config.get("PREPARE_DATABASE", True):
        models.prepare_database()
    app.wsgi_app = RequestLog(app.wsgi_app)
    app.before_request(_open_database)
    app.before_request(require_api_key)

    app.register_blueprint(agents.bp, url_prefix=app.config["URL_PREFIX"] or None)
    if app.config["TEST_MODE"]:
        app.register_blueprint(testing.bp)
        testing_hooks.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    docs.register_reference(app)
    register_error_handlers(app)
    for command in COMMANDS:
        app.cli.add_command(command)
    return app


DATABASE_FREE_BLUEPRINTS = {health.bp.name, docs.bp.name, docs.REFERENCE}


def _open_database():
    # Liveness, readiness and the documentation never need the request's connection: /readyz
    # opens its own, so that it can answer 503 when the database cannot be opened.
    if request.blueprint not in DATABASE_FREE_BLUEPRINTS:
        models.open_connection()
