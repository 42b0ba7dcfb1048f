"""The generator's sizes and limits, and how it says that a schema cannot be satisfied.

The limits bound the work a hostile schema can cause; exceeding one raises Unsatisfiable saying
which, as a sentence that names the part of the schema by its JSON pointer.
"""

import json
from typing import Any

DEFAULT_ARRAY_ITEMS = 3  # arrays get at most max(minItems, this) items
DEFAULT_STRING_LENGTH = 40  # strings get at most max(minLength, this) characters
RECURSION_DEPTH = 2  # recursive $ref expansions on one path before going minimal
MAX_DEPTH = 40  # deepest nesting of arrays and objects
MAX_STRING_LENGTH = 10_000  # largest minLength honoured
MAX_ITEMS = 1_000  # largest minItems (or minContains) honoured
MAX_PROPERTIES = 1_000  # largest minProperties honoured
MAX_TOTAL_CHARS = 1_000_000  # characters in all strings of one generated value
MAX_STEPS = 20_000  # sub-values and branch choices tried for one generate() call
ATTEMPTS_PER_VALUE = 5  # candidates per type before a sub-value is given up
PATTERN_ATTEMPTS = 100  # candidates tried for a pattern before giving up


class Unsatisfiable(ValueError):
    """Raised when no JSON value satisfies (part of) a schema; names that part's pointer."""

    def __init__(self, pointer: str, reason: str) -> None:
        self.pointer = pointer
        self.reason = reason
        super().__init__(f"{where(pointer)} {reason}.")


class LimitExceeded(Unsatisfiable):
    """A work limit ran out; never worth retrying another branch."""


def where(pointer: str) -> str:
    """How a message names the part of the schema at `pointer`."""
    return f"The schema at {pointer}" if pointer else "The root schema"


def show(value: Any) -> str:
    """A schema value as a message quotes it."""
    return json.dumps(value, ensure_ascii=False)


def either(types: list[str]) -> str:
    """Type names as a message lists them: `string or null`."""
    return " or ".join(types)
