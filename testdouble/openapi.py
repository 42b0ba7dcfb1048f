"""Test mode's part of the OpenAPI document: the namespace header on every scoped operation."""

from openapi import ERROR_DESCRIPTIONS, header
from testdouble.schemas import NAME, NAMESPACE_HEADER

NAMESPACE = header(
    NAMESPACE_HEADER,
    "Scopes the request to a namespace (default: default).",
    {"type": "string", "pattern": NAME.pattern},
)


def document_namespaces(paths):
    """Every API and /_test operation takes the namespace header, and answers 400 without it."""
    for entry in paths.values():
        if not entry["protected"]:
            continue
        entry["parameters"] = [*entry["parameters"], NAMESPACE]
        for operation in entry["operations"].values():
            if "400" not in operation["responses"]:
                bad = {
                    "description": ERROR_DESCRIPTIONS[400],
                    "content": operation["responses"]["500"]["content"],
                }
                operation["responses"] = dict(
                    sorted({**operation["responses"], "400": bad}.items())
                )
