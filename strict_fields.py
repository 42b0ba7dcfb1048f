"""Marshmallow fields that take JSON types as they are, and validators that speak in sentences.

Every message here is the end of a sentence ("must be a string."): the error renderer puts the
field's dotted path in front, so a client reads `llm_config.temperature must be a number.`
Nothing is coerced: `"true"`, `1`, `600.0` and `"600"` are rejected where the contract wants a
boolean or an integer.
"""

import functools
import math
import re
from datetime import datetime

import jsonschema_rs
from email_validator import EmailNotValidError, validate_email
from marshmallow import Schema, ValidationError, fields, validate

UNKNOWN_FIELD = "is not a known field."


class Sentences:
    """The messages every field shares, as sentence endings."""

    default_error_messages = {
        "required": "is required.",
        "null": "must not be null.",
        "validator_failed": "is not valid.",
    }


class StrictSchema(Schema):
    """A schema whose unknown-field and wrong-type messages are sentence endings too."""

    error_messages = {"unknown": UNKNOWN_FIELD, "type": "must be an object."}

    def handle_error(self, error, data, **kwargs):
        """Keep the failing schema on the error, so its messages come out in its field order."""
        error.schema = self


class QuerySchema(StrictSchema):
    """The parameters of a query string: a misspelt one is named as a parameter, not a field."""

    error_messages = {**StrictSchema.error_messages, "unknown": "is not a known query parameter."}

    def load_query(self, args):
        """Load a request's query arguments (a MultiDict), each of which may be given once.

        A parameter given twice has no one meaning: taking the first silently would hide the
        client's mistake, as a misspelt one would.
        """
        repeated = {
            name: [f"must be given once, not {len(values)} times."]
            for name, values in args.lists()
            if len(values) > 1
        }
        if repeated:
            error = ValidationError(repeated)
            error.schema = self
            raise error
        return self.load(args.to_dict())


class Text(Sentences, fields.String):
    default_error_messages = {
        "invalid": "must be a string.",
        "invalid_utf8": "must be valid UTF-8.",
    }


class Bool(Sentences, fields.Field):
    default_error_messages = {"invalid": "must be true or false."}

    def _deserialize(self, value, attr, data, **kwargs):
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


class Integer(Sentences, fields.Field):
    default_error_messages = {"invalid": "must be an integer."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.make_error("invalid")


class Number(Sentences, fields.Field):
    """An integer or a finite float, kept exactly as sent (1 stays 1, 0.7 stays 0.7)."""

    default_error_messages = {"invalid": "must be a number."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("invalid")
        return value


class QueryInteger(Sentences, fields.Integer):
    """A whole number sent as query-string text: ASCII digits and nothing else.

    Python's int() would also take other scripts' digits, underscores and spaces around them.
    """

    default_error_messages = {"invalid": "must be an integer."}
    _DIGITS = re.compile(r"-?[0-9]+")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not self._DIGITS.fullmatch(value):
            raise self.make_error("invalid")
        try:
            return int(value)
        except ValueError:  # longer than Python converts (4,300 digits)
            raise self.make_error("invalid") from None


class QueryBoolean(Sentences, fields.Boolean):
    """`true` or `false` in a query string, and nothing else."""

    default_error_messages = {"invalid": "must be true or false."}

    def __init__(self, **kwargs):
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)


class Object(Sentences, fields.Nested):
    default_error_messages = {"type": "must be an object."}


class Array(Sentences, fields.List):
    default_error_messages = {"invalid": "must be an array."}


class JsonObject(Sentences, fields.Dict):
    """Any JSON object, kept as sent: key order, nesting and values untouched."""

    default_error_messages = {"invalid": "must be an object."}


def length(minimum=None, maximum=None):
    if minimum is None:
        return validate.Length(max=maximum, error="must be at most {max} characters long.")
    return validate.Length(
        min=minimum, max=maximum, error="must be between {min} and {max} characters long."
    )


def item_count(maximum):
    return validate.Length(max=maximum, error="must have at most {max} items.")


def between(minimum, maximum=None):
    if maximum is None:
        return validate.Range(min=minimum, error="must be at least {min}.")
    return validate.Range(min=minimum, max=maximum, error="must be between {min} and {max}.")


def one_of(choices):
    return validate.OneOf(choices, error="must be one of: {choices}.")


def not_blank(value):
    if not value.strip():
        raise ValidationError("must not be blank.")


def no_duplicates(values):
    repeated = sorted({value for value in values if values.count(value) > 1}, key=values.index)
    if repeated:
        raise ValidationError(f"must not repeat a value; {', '.join(repeated)} appears twice.")


def email_address(value):
    # A text longer than any address is checked every time, never remembered.
    check = (
        _email_problem if len(value) <= LONGEST_REMEMBERED_ADDRESS else _email_problem.__wrapped__
    )
    problem = check(value)
    if problem is not None:
        raise ValidationError(f"must be a valid e-mail address ({problem}).")


LONGEST_REMEMBERED_ADDRESS = 320


# Checking an address's syntax cost a full agent's validation about 100 µs, a fifth of it, and
# a business's agents share their notification address: each verdict is remembered.
@functools.lru_cache(maxsize=1024)
def _email_problem(value):
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        return _clause(str(error))
    return None


http_url = validate.URL(
    schemes={"http", "https"}, require_tld=False, error="must be an absolute http or https URL."
)

# RFC 5646 language tags (well-formed, not registry-checked), plus the platform's `multi`.
_LANGUAGE_TAG = re.compile(
    r"^(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"
    r"(?:-[a-z]{4})?(?:-(?:[a-z]{2}|\d{3}))?"
    r"(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*"
    r"(?:-[a-wyz\d](?:-[a-z\d]{2,8})+)*(?:-x(?:-[a-z\d]{1,8})+)?$",
    re.IGNORECASE,
)


def language_tag(value):
    if not _LANGUAGE_TAG.match(value):
        raise ValidationError("must be a BCP 47 language tag such as nl, en, en-US or multi.")


LOWERCASE_UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
_LOWERCASE_UUID = re.compile(LOWERCASE_UUID_PATTERN)


def canonical_uuid(value):
    if not _LOWERCASE_UUID.match(value):
        raise ValidationError(
            "must be a lowercase UUID such as 2f1c0a4e-6f7b-4d8e-9a51-3c2b1d0e9f87."
        )


# The form as a timestamp is written, ASCII digits and capitals: read without strptime, which
# cost an import 80 µs an agent for its two timestamps. Any other text goes through strptime.
_WRITTEN_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{3}Z"
)


def is_utc_timestamp(text):
    """True for text in the form every timestamp is stored and sent in: 2025-12-13T10:00:00.000Z."""
    written = _WRITTEN_TIMESTAMP.fullmatch(text)
    try:
        if written:  # what strptime accepts of this form: a date and time that exist
            datetime(*map(int, written.groups()))
        else:
            datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return len(text) == 24


def utc_timestamp(value):
    if not is_utc_timestamp(value):
        raise ValidationError(
            "must be a UTC timestamp with milliseconds, such as 2025-12-13T10:00:00.000Z."
        )


# The 2020-12 meta-schema, compiled once; jsonschema-rs ships it, so nothing is fetched. It checks
# a schema in microseconds where a pure-Python checker takes tens of milliseconds, which a body of
# 128 tools would turn into seconds of a worker's time.
_META_SCHEMA = jsonschema_rs.Draft202012Validator(
    {"$ref": "https://json-schema.org/draft/2020-12/schema"}
)


def json_schema(value):
    """The value must itself be a JSON Schema valid under the 2020-12 meta-schema."""
    error = next(_META_SCHEMA.iter_errors(value), None)
    if error is not None:
        where = "/".join(str(part) for part in error.instance_path)
        at = f" at {where}" if where else ""
        raise ValidationError(f"must be a valid JSON Schema ({error.message[:200]}{at}).")


def _clause(text):
    """The library's sentences as one clause, to sit inside a sentence of ours."""
    sentences = [part.strip().rstrip(".") for part in text.split(". ")]
    return "; ".join(part[:1].lower() + part[1:] for part in sentences if part)
