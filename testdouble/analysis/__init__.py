"""Deterministic sample values that satisfy a JSON Schema (draft 2020-12).

Test mode uses this to fake the `analysis` a voice platform extracts from a call with an
agent's `structured_data_plan.schema`: `generate(schema, seed)` returns a JSON value that
validates against the schema, and the same schema and seed always give the same value
(byte-identical under `json.dumps`).

How values are chosen:

* Every property declared in `properties` is included, optional ones too (up to
  `maxProperties`), so a fake exercises as much of its consumer as possible. Only if that
  object fails validation (`not`, `dependentRequired`, `oneOf` ...) are random subsets of the
  optional properties tried, and finally none.
* Once a recursive `$ref` has been followed `RECURSION_DEPTH` times on one path, only what is
  required is generated: optional properties are left out, arrays get `minItems` items, and
  `anyOf`/`oneOf` branches without a `$ref` are tried first.
* Arrays get 1 to `DEFAULT_ARRAY_ITEMS` items (more if `minItems` says so), strings are short
  phrases of call-centre words of at most `DEFAULT_STRING_LENGTH` characters (longer only if
  `minLength` says so), and numbers stay in 0..100 when the bounds allow it.
* The seed picks among `type` lists, `enum` values, `anyOf`/`oneOf` branches and the
  `then`/`else` side of `if`; an untyped, unconstrained value is a string.
* `pattern` strings are generated from the regular expression (an ECMA-262 subset) with simple
  fallbacks; candidates are checked with jsonschema_rs's regex engine, the one the final
  validation uses, rather than Python's `re`, whose syntax and semantics differ (`$`, `\\d`) and
  which has no protection against catastrophic backtracking.
* Every value, and every sub-value against its own subschema, is validated with jsonschema_rs
  before it is used, so `not`, `oneOf` exclusivity, `if` and `maxContains` are enforced by
  retrying with fresh choices. When part of the schema cannot be satisfied, `Unsatisfiable`
  names its JSON pointer.

Only references inside the schema document are resolved (`#`, `#/json/pointer` with `~0`, `~1`
and percent escapes, `#anchor`). The limits in limits.py bound the work a hostile schema can
cause; exceeding one raises `Unsatisfiable` saying which.
"""

from testdouble.analysis.generator import generate
from testdouble.analysis.limits import (
    ATTEMPTS_PER_VALUE,
    DEFAULT_ARRAY_ITEMS,
    DEFAULT_STRING_LENGTH,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_PROPERTIES,
    MAX_STEPS,
    MAX_STRING_LENGTH,
    MAX_TOTAL_CHARS,
    PATTERN_ATTEMPTS,
    RECURSION_DEPTH,
    Unsatisfiable,
)

__all__ = [
    "ATTEMPTS_PER_VALUE",
    "DEFAULT_ARRAY_ITEMS",
    "DEFAULT_STRING_LENGTH",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_PROPERTIES",
    "MAX_STEPS",
    "MAX_STRING_LENGTH",
    "MAX_TOTAL_CHARS",
    "PATTERN_ATTEMPTS",
    "RECURSION_DEPTH",
    "Unsatisfiable",
    "generate",
]
