"""Reading JSON request bodies strictly, and answering with JSON the handlers already hold."""

from flask import Response, request

from errors import ApiError
from strict_json import InvalidJson
from strict_json import parse_json as parse_json_text

# Where read_json_body leaves the body it parsed, so that test mode's journal need not parse it
# again; nothing may change it in place.
PARSED_BODY = "agents.parsed_body"


def read_json_body():
    """The request body as a JSON object, or an ApiError that says what is wrong with it."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json "
            "(or application/merge-patch+json for PATCH).",
        )
    body = parse_json(request.get_data(cache=True))
    request.environ[PARSED_BODY] = body
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def parse_json(raw):
    """Any JSON value the service can hold, or a 400 invalid_json ApiError saying why not."""
    try:
        return parse_json_text(raw)
    except InvalidJson as error:
        raise ApiError(400, "invalid_json", str(error)) from None


def json_response(text, status=200, headers=None):
    """A response whose body is JSON text already serialised."""
    return Response(text, status, headers, mimetype="application/json")
