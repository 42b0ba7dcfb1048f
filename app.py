"""The application factory: `gunicorn 'app:create_app()'`."""

from flask import Flask, request

import catalog
import ratelimit
import testdouble
from auth import api_roots, require_api_key
from commands import COMMANDS
from config import load_settings
from errors import register_error_handlers
from logs import RequestLog
from request_bodies import SizedBodies
from routes import agents, docs, fast_reads, fast_writes, health
from storage import open_engine
from store import Store, reset_current_store

# Liveness, readiness and the documentation never need the request's connection: /readyz
# opens its own, so that it can answer 503 when the database cannot be opened.
DATABASE_FREE_BLUEPRINTS = {health.bp.name, docs.bp.name, docs.REFERENCE}


def create_app(test_config=None):
    """Build the service from the environment's AGENTS_* settings, then `test_config`.

    Nothing is opened or created here: the database is prepared (created or migrated) by the
    server before it serves, or by the first request that needs it. A setting or a catalog
    file the service cannot start with is a config.ConfigError.
    """
    test_config = test_config or {}
    app = Flask(__name__)
    # Werkzeug would answer `/api/v1//agents` with an HTML redirect to `/api/v1/agents` whose
    # Location it builds from the client's Host header: a doubled slash is a path no route has.
    app.url_map.merge_slashes = False
    settings = load_settings(overrides=test_config)
    app.config.update(test_config)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_BODY_BYTES"]
    app.config["API_ROOTS"] = api_roots(settings["URL_PREFIX"])
    # OPTIONS is not part of the API: it gets a 405 in the error shape, with Allow.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    known = catalog.load_catalog(settings["CATALOG"])
    app.extensions["catalog"] = known
    store = Store(open_engine(settings["DATABASE_URL"], durable=not settings["TEST_MODE"]))
    app.extensions["store"] = store
    app.wsgi_app = RequestLog(
        SizedBodies(
            fast_writes.wrap(app, fast_reads.wrap(app, app.wsgi_app)), settings["MAX_BODY_BYTES"]
        )
    )
    app.before_request(_using(store, known))
    app.teardown_request(_done_with_store)
    # Counted before the key is checked, so a 401 carries the rate-limit headers too.
    ratelimit.init_app(app)
    app.before_request(require_api_key)

    for family in agents.FAMILIES:
        app.register_blueprint(agents.blueprint(family), url_prefix=settings["URL_PREFIX"] or None)
    if settings["TEST_MODE"]:
        with catalog.activated(known):
            testdouble.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    docs.register_reference(app)
    register_error_handlers(app)
    for command in COMMANDS:
        app.cli.add_command(command)
    return app


def _using(store, known):
    def use_store():
        request.environ["agents.store_token"] = store.activate()
        request.environ["agents.catalog_token"] = catalog.activate(known)
        if request.blueprint not in DATABASE_FREE_BLUEPRINTS:
            store.prepare()
            store.engine.open()

    return use_store


def _done_with_store(error=None):
    token = request.environ.pop("agents.catalog_token", None)
    if token is not None:
        catalog.reset(token)
    token = request.environ.pop("agents.store_token", None)
    if token is not None:
        reset_current_store(token)
