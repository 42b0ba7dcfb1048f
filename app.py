"""The application factory: `gunicorn 'app:create_app()'`."""

import click
from flask import Flask, request

import models
from auth import require_api_key
from config import load_settings, normalise_prefix, parse_api_keys, sqlite_path
from errors import register_error_handlers
from routes import agents, docs, health


def create_app(test_config=None):
    """Build the service from the environment's AGENTS_* settings, then `test_config`."""
    app = Flask(__name__)
    app.config.update(load_settings())
    app.config.update(test_config or {})
    app.config["URL_PREFIX"] = normalise_prefix(app.config["URL_PREFIX"])
    if isinstance(app.config["API_KEYS"], str):
        app.config["API_KEYS"] = parse_api_keys(app.config["API_KEYS"])
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    models.init_database(sqlite_path(app.config["DATABASE_URL"]))
    app.before_request(_open_database)
    app.before_request(require_api_key)

    app.register_blueprint(agents.bp, url_prefix=app.config["URL_PREFIX"] or None)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    docs.register_reference(app)
    register_error_handlers(app)
    app.cli.add_command(init_db_command)
    return app


def _open_database():
    # Liveness, readiness and the documentation never need the database.
    if request.blueprint == agents.bp.name:
        models.open_connection()


@click.command("init-db")
def init_db_command():
    """Create the database file and its tables (done at start-up too)."""
    click.echo("The database is ready.")
