"""Bearer API-key authentication for the API routes, on when AGENTS_API_KEYS is set.

In test mode the /_test routes are guarded too: they can wipe and rewrite every agent.
"""

import hmac

from flask import current_app, request

from errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="agents"'}


def require_api_key():
    """Refuse an API request whose Bearer token is not one of the configured keys."""
    keys = current_app.config["API_KEYS"]
    if not keys or not (is_api_path(request.path) or is_test_path(request.path)):
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _is_known_key(token.strip(), keys):
        raise ApiError(
            401,
            "unauthorized",
            "A valid API key is required: send Authorization: Bearer <key>.",
            CHALLENGE,
        )


def is_api_path(path):
    """True for the Agents API's own paths, `<prefix>/agents` and below."""
    root = current_app.config["URL_PREFIX"] + "/agents"
    return path == root or path.startswith(root + "/")


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
