"""WSGI middleware that answers the plain reads of agents before Flask, byte for byte as it would.

GET one agent and GET a list page are most of the traffic, and Flask's request, routing, hooks
and response objects cost a GET one several times what its query does (316 µs against 66 µs
here, measured through WSGI). This answers `GET <prefix>/agents/{id}` and `GET <prefix>/agents`
(and the /assistants paths) itself, with the views' own helpers (routes/agents.py), and hands
everything else to Flask: another method, a path it does not know exactly (an uppercase id, a
trailing slash), a key it does not accept, a query or precondition it does not take, an agent
that is not there, a database that fails. Flask then answers those as it always has, errors
included. Where it is installed, and where it sits, is fast_path.py's.

A list page asked again is answered from what the thread kept of it (RecentPages) as long as
the engine's change stamp says nothing it reads has been written since.
"""

import threading
from collections import OrderedDict
from urllib.parse import parse_qsl

from marshmallow import ValidationError
from peewee import DatabaseError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.http import parse_etags

import models
from routes.agents import (
    ENTITY_TAG_LIST,
    FAMILIES,
    agent_body,
    etag_header,
    list_page,
    next_page_link,
)
from routes.fast_path import JSON, FastPath, fast_paths_allowed
from storage import DatabaseUnavailable
from store import reset_current_store

# What each thread keeps of the list pages it answered last (RecentPages): a page of 100 full
# agents is about 210 KB.
PAGES_KEPT = 8
PAGE_BYTES_KEPT = 1 << 20
# What Flask's own view would fail on: the fast path leaves those to it.
LEFT_TO_FLASK = (
    DatabaseError,
    DatabaseUnavailable,
    ValidationError,
    models.AgentNotFound,
    UnicodeError,
)


def wrap(app, wsgi_app):
    """`wsgi_app` with the fast reads in front of it, where the app allows fast paths."""
    return FastReads(app, wsgi_app) if fast_paths_allowed(app) else wsgi_app


class FastReads(FastPath):
    """Answers GET one agent and GET a page of agents; hands every other request on."""

    def __init__(self, app, wsgi_app):
        super().__init__(app, wsgi_app)
        self.recent_pages = RecentPages(self.store.engine)

    def takes(self, environ, family, agent_id):
        return environ["REQUEST_METHOD"] == "GET"

    def answer(self, environ, family, agent_id):
        token = self.store.activate()
        try:
            self.store.prepare()
            self.store.engine.open()
            if agent_id is None:
                key = family, environ.get("QUERY_STRING", "")
                return self.recent_pages.answer(key, lambda: self._page(environ, family))
            return self._agent(environ, family, agent_id)
        except LEFT_TO_FLASK:
            return None
        finally:
            reset_current_store(token)

    def _agent(self, environ, family, agent_id):
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match is not None and not ENTITY_TAG_LIST.fullmatch(if_none_match):
            return None
        agent = models.get_agent(agent_id, as_bytes=True)
        headers = list(etag_header(agent.etag).items())
        if if_none_match is not None and parse_etags(if_none_match).contains_weak(agent.etag):
            return "304 NOT MODIFIED", headers, b""
        body = agent_body(FAMILIES[family][0], agent.document)
        return "200 OK", [*headers, JSON, ("Content-Length", str(len(body)))], body

    def _page(self, environ, family):
        # As Werkzeug reads request.args.
        query = environ.get("QUERY_STRING", "").encode("latin1").decode()
        args = ImmutableMultiDict(
            parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
        )
        body, next_query = list_page(family, args, models.DEFAULT_NAMESPACE)
        headers = [JSON, ("Content-Length", str(len(body)))]
        if next_query is not None:
            url = self.urls.build(f"{family}.list_all", next_query)
            headers.insert(0, ("Link", next_page_link(url)))
        return "200 OK", headers, body


class RecentPages:
    """The list pages each thread answered last, answered again while nothing has changed.

    A page is kept with the engine's change stamp of the thread's connection, taken before the
    page was read, so a write committed while it was being read makes it stale rather than
    wrong. Where the engine cannot tell (PostgreSQL, written by other hosts), nothing is kept.
    """

    def __init__(self, engine):
        self.engine = engine
        self._local = threading.local()

    def answer(self, key, read_page):
        """The (status, headers, body) of the page `key`, kept or from `read_page()`."""
        stamp = self.engine.change_stamp()
        if stamp is None:
            return read_page()
        kept = self._local
        if getattr(kept, "stamp", None) != stamp:
            kept.stamp, kept.pages, kept.size = stamp, OrderedDict(), 0
        page = kept.pages.get(key)
        if page is None:
            page = read_page()
            self._keep(kept, key, page)
        else:
            kept.pages.move_to_end(key)
        status, headers, body = page
        # The request log adds its header to the list it is given.
        return status, list(headers), body

    @staticmethod
    def _keep(kept, key, page):
        size = len(page[2])
        if size > PAGE_BYTES_KEPT:
            return
        kept.pages[key] = page
        kept.size += size
        while len(kept.pages) > PAGES_KEPT or kept.size > PAGE_BYTES_KEPT:
            _, (_, _, body) = kept.pages.popitem(last=False)
            kept.size -= len(body)
