"""Fields whose valid values are remembered by their JSON text, per catalog.

The same speech, language-model and analysis configs, and the same function tools, come back on
agent after agent, and validating one (providers, models, voices, tool schemas) cost a POST more
than half its CPU (AGENT.load 487 µs, 267 µs with configs remembered). Only valid values are
remembered, so an invalid one is always reported as validation reports it; a text that holds a
secret is never kept in memory beyond its request.
"""

import functools

import orjson

import catalog
from secret_fields import carries_secret, may_name_a_secret

# Values remembered once valid, per field and catalog: 600 agents of new language-model configs
# kept 8.9 MB with 512 a field, 2.6 MB with 128. Texts longer than this are validated every
# time (a body of many tools is rare, and would crowd the common values out).
REMEMBERED_VALUES = 128
LONGEST_REMEMBERED_TEXT = 16 * 1024


class RemembersValid:
    """Mixed into a field of JSON objects: a value validated once is not validated again.

    Each field remembers its own values, so that configs seen once each (a PATCH that changes a
    temperature) do not crowd out the tools that come back on every agent.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._valid = functools.lru_cache(maxsize=REMEMBERED_VALUES)(self._validated)

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if not isinstance(value, dict) or partial or kwargs:
            return super()._deserialize(value, attr, data, partial=partial, **kwargs)
        try:
            text = orjson.dumps(value)
        except TypeError:  # what orjson cannot hold as it is: an integer beyond 64 bits, ...
            return super()._deserialize(value, attr, data)
        if len(text) > LONGEST_REMEMBERED_TEXT or (
            may_name_a_secret(text) and carries_secret(value)
        ):
            return super()._deserialize(value, attr, data)
        remembered = self._valid(catalog.current(), text)
        if remembered is None:
            return super()._deserialize(value, attr, data)
        # A copy each time: the caller may change what it is given.
        return orjson.loads(remembered)

    def _validated(self, known, text):
        """The loaded value of `text` as JSON bytes, validated once under catalog `known`; None
        when it does not come back from JSON as it is."""
        loaded = super()._deserialize(orjson.loads(text), self.name, None)
        try:
            remembered = orjson.dumps(loaded)
        except TypeError:
            return None
        return remembered if orjson.loads(remembered) == loaded else None
