"""Marshmallow's nested validation messages as sentences led by dotted field paths.

`{"llm_config": {"temperature": ["must be between 0 and 2."]}}` becomes
`llm_config.temperature must be between 0 and 2.`, in the order of the schema's fields.
"""

from marshmallow import fields

from schemas import AGENT


def validation_message(messages, schema=None):
    """Every validation message as one text of sentences, as in an error body's `error`."""
    return " ".join(all_sentences(error_sentences(messages, schema)))


def all_sentences(field_messages):
    """The sentences of `error_sentences`' result, in its order."""
    return [sentence for sentences in field_messages.values() for sentence in sentences]


def error_sentences(messages, schema=None):
    """Flatten Marshmallow's nested messages into {dotted.path: [sentences]}, in field order."""
    schema = schema or AGENT
    flat = []
    _flatten(messages, (), flat)
    flat.sort(key=lambda item: _order_key(schema, item[0]))
    result = {}
    for segments, message in flat:
        path = ".".join(str(segment) if segment != "" else '""' for segment in segments)
        sentence = f"{path} {message}" if path else message
        result.setdefault(path, []).append(sentence if sentence.endswith(".") else sentence + ".")
    return result


def _flatten(messages, prefix, out):
    if isinstance(messages, dict):
        for key, value in messages.items():
            segments = prefix if key == "_schema" else (*prefix, *_split_key(key))
            _flatten(value, segments, out)
    elif isinstance(messages, list):
        for message in messages:
            _flatten(message, prefix, out)
    else:
        out.append((prefix, messages))


def _split_key(key):
    if isinstance(key, int):
        return (key,)
    return tuple(
        int(part) if part.isascii() and part.isdigit() else part for part in str(key).split(".")
    )


def _order_key(schema, segments):
    key = []
    for segment in segments:
        if isinstance(segment, int):
            key.append((segment, ""))
            continue
        names = list(schema.fields) if schema is not None else []
        position = names.index(segment) if segment in names else len(names)
        key.append((position, segment))
        schema = _nested_schema(schema.fields.get(segment) if schema is not None else None)
    return key


def _nested_schema(field):
    if isinstance(field, fields.List):
        field = field.inner
    if isinstance(field, fields.Nested):
        return field.schema
    return None
