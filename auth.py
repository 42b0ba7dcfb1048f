"""Bearer API-key authentication for the API routes, on when AGENTS_API_KEYS is set.

In test mode the /_test routes are guarded too: they can wipe and rewrite every agent.
"""

import hmac

from flask import current_app, g, request

from errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="agents"'}


# The API's two path families: the platform's current name and the reference page's.
FAMILIES = ("assistants", "agents")


def require_api_key():
    """Refuse an API request whose Bearer token is not one of the configured keys."""
    keys = current_app.config["API_KEYS"]
    if not keys or not (is_api_path(request.path) or is_test_path(request.path)):
        return
    if presented_key() is None:
        raise ApiError(
            401,
            "unauthorized",
            "A valid API key is required: send Authorization: Bearer <key>.",
            CHALLENGE,
        )


def presented_key():
    """The configured API key the request's Bearer token is, or None (also when none are set)."""
    if "api_key" not in g:
        authorization = request.headers.get("Authorization", "")
        g.api_key = known_key(authorization, current_app.config["API_KEYS"])
    return g.api_key


def known_key(authorization, keys):
    """The key an Authorization header's Bearer token is, when it is one of `keys`; else None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    known = scheme.lower() == "bearer" and _is_known_key(token, keys)
    return token if known else None


def api_roots(prefix):
    """The root path of each API path family under a URL prefix: `/api/v1/assistants`, ..."""
    return tuple(f"{prefix}/{family}" for family in FAMILIES)


def is_api_path(path):
    """True for the API's own paths: `<prefix>/assistants`, `<prefix>/agents` and below."""
    return any(
        path == root or path.startswith(root + "/") for root in current_app.config["API_ROOTS"]
    )


def is_test_path(path):
    """True for the /_test routes, which exist only in test mode."""
    return current_app.config["TEST_MODE"] and (path == "/_test" or path.startswith("/_test/"))


def _is_known_key(token, keys):
    # Compare against every key, so the time taken says nothing about which key came close.
    token_bytes = token.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(token_bytes, key.encode())
    return matched
