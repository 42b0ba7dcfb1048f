"""WSGI middleware that answers the plain creates and updates of agents before Flask, as it would.

It takes `POST <prefix>/agents` and `PATCH <prefix>/agents/{id}` (and the /assistants paths)
only when the views would store them without a word: a JSON body of a stated length within the
limit, that the schema accepts, with no Idempotency-Key and at most an If-Match that holds.
Everything else (another media type, a body the schema refuses, an agent that is not there, an
If-Match that fails) goes to Flask with the body as it was read, and Flask answers it as it
always has. Nothing was written then. A failure once the write has been tried is answered here,
as Flask's handler answers it (errors.failure_response): handed on, the write could be made
twice. Where it is installed, and where it sits, is fast_path.py's (inside SizedBodies too, so
a chunked body arrives with its length).
"""

import io
import uuid

from marshmallow import ValidationError
from werkzeug.http import parse_etags

import catalog
import models
from errors import failure_response
from routes.agents import ENTITY_TAG_LIST, FAMILIES, agent_body, etag_header
from routes.fast_path import JSON, FastPath, fast_paths_allowed
from schemas import AGENT, load_patched
from secret_fields import carries_secret
from store import reset_current_store
from strict_json import InvalidJson, parse_json

MEDIA_TYPES = ("application/json", "application/merge-patch+json")
# What Flask's views answer with a 4xx of their own, before anything is written.
LEFT_TO_FLASK = (InvalidJson, ValidationError, models.AgentNotFound, models.AgentChanged)
SOME_ID = str(uuid.UUID(int=0))


def wrap(app, wsgi_app):
    """`wsgi_app` with the fast writes in front of it, where the app allows fast paths."""
    return FastWrites(app, wsgi_app) if fast_paths_allowed(app) else wsgi_app


class FastWrites(FastPath):
    """Answers a plain create or update of an agent; hands every other request on."""

    def __init__(self, app, wsgi_app):
        super().__init__(app, wsgi_app)
        self.app = app
        self.catalog = app.extensions["catalog"]
        self.max_bytes = app.config["MAX_BODY_BYTES"]
        self._agent_urls = {}

    def takes(self, environ, family, agent_id):
        method = environ["REQUEST_METHOD"]
        media_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        return (
            method == ("POST" if agent_id is None else "PATCH")
            and media_type in MEDIA_TYPES
            and length.isdigit()
            and int(length) <= self.max_bytes
            and "HTTP_IDEMPOTENCY_KEY" not in environ
        )

    def answer(self, environ, family, agent_id):
        raw = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        # Whoever answers, Flask or this, reads the body from here.
        environ["wsgi.input"] = io.BytesIO(raw)
        tokens = self.store.activate(), catalog.activate(self.catalog)
        try:
            self.store.prepare()
            self.store.engine.open()
            body = parse_json(raw)
            if not isinstance(body, dict):
                return None
            if agent_id is None:
                return self._create(family, body)
            return self._update(environ, family, agent_id, body)
        except LEFT_TO_FLASK:
            environ["wsgi.input"].seek(0)
            return None
        except Exception as error:  # the write was tried: answered here, as Flask would
            return self._failure(environ, error)
        finally:
            catalog.reset(tokens[1])
            reset_current_store(tokens[0])

    def _create(self, family, body):
        agent, _ = models.create_agent(AGENT.load(body))
        location = self._agent_url(family) + agent.id
        return self._agent_answer("201 CREATED", family, agent, [("Location", location)])

    def _update(self, environ, family, agent_id, patch):
        if_match = environ.get("HTTP_IF_MATCH")
        if if_match is not None and not ENTITY_TAG_LIST.fullmatch(if_match):
            return None
        agent = models.update_agent(
            agent_id,
            lambda current: load_patched(current, patch),
            etag_matches=None if if_match is None else parse_etags(if_match).contains,
            # Sending the stored secret must be answered as sending any other would be.
            always_write=carries_secret(patch),
        )
        return self._agent_answer("200 OK", family, agent)

    def _agent_url(self, family):
        """An agent's URL as url_for builds it, but for the id, built once per family (the
        routes are not there yet when the app wraps this): a lowercase UUID needs no quoting."""
        url = self._agent_urls.get(family)
        if url is None:
            url = self.urls.build(f"{family}.get_one", {"agent_id": SOME_ID})[: -len(SOME_ID)]
            self._agent_urls[family] = url
        return url

    @staticmethod
    def _agent_answer(status, family, agent, more_headers=()):
        body = agent_body(FAMILIES[family][0], agent.document).encode()
        headers = [*etag_header(agent.etag).items(), JSON, ("Content-Length", str(len(body)))]
        return status, [*headers, *more_headers], body

    def _failure(self, environ, error):
        with self.app.request_context(environ):
            response = failure_response(error)
        return response.status, response.headers.to_wsgi_list(), response.get_data()
