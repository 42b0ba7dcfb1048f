"""What a schema asks of one value: its subschemas merged into a Node, $refs followed.

A value may be under several subschemas at once (allOf, $ref, properties and patternProperties
both naming it); the SchemaDocument merges every keyword of all of them into one Node, leaving
anyOf/oneOf/if as choices for the generator to make.
"""

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple
from urllib.parse import unquote

from testdouble.analysis.limits import RECURSION_DEPTH, Unsatisfiable, either, show, where


class Sub(NamedTuple):
    """A subschema, where it sits in the root document, and the $ref targets on its path."""

    schema: Any
    pointer: str
    trail: tuple[str, ...]


class Choice(NamedTuple):
    """An anyOf/oneOf/if choice still to be made; each option lists subschemas to add."""

    key: str
    pointer: str
    kind: str
    options: list[list[Sub]]


@dataclass
class Bound:
    value: Fraction
    exclusive: bool
    text: str  # e.g. "exclusiveMinimum 5", for messages


@dataclass
class Node:
    """The conjunction of every subschema that applies to one value."""

    pointer: str
    seen: set[str] = field(default_factory=set)
    recursion: int = 0
    types: list[str] | None = None
    implied_types: dict[str, None] = field(default_factory=dict)
    consts: list[Any] = field(default_factory=list)
    enums: list[list[Any]] = field(default_factory=list)
    lower: Bound | None = None
    upper: Bound | None = None
    multiples: list[Fraction] = field(default_factory=list)
    min_length: int = 0
    max_length: int | None = None
    patterns: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    min_items: int = 0
    max_items: int | None = None
    prefix: list[list[Sub]] = field(default_factory=list)
    item_rules: list[tuple[int, Sub]] = field(default_factory=list)  # (first index, schema)
    contains: list[tuple[Sub, int, int | None]] = field(default_factory=list)
    unique: bool = False
    required: dict[str, None] = field(default_factory=dict)
    properties: dict[str, list[Sub]] = field(default_factory=dict)
    pattern_properties: list[tuple[str, Sub]] = field(default_factory=list)
    # additionalProperties only covers names its own schema object does not declare
    additional: list[tuple[frozenset[str], tuple[str, ...], Sub]] = field(default_factory=list)
    property_names: list[Sub] = field(default_factory=list)
    min_properties: int = 0
    max_properties: int | None = None
    open_choices: list[Choice] = field(default_factory=list)

    @property
    def minimal(self) -> bool:
        return self.recursion > RECURSION_DEPTH


class SchemaDocument:
    """The root schema: merges subschemas into nodes and resolves the $refs within it."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.mentions_ref: dict[int, bool] = {}

    def build(self, subs: list[Sub], pointer: str, resolved: dict[str, int]) -> Node:
        """The node of a value under every schema in subs, with the choices in resolved made."""
        node = Node(pointer)
        for sub in subs:
            self._absorb(node, sub, resolved)
        return node

    def _absorb(self, node: Node, sub: Sub, resolved: dict[str, int]) -> None:
        schema, pointer, trail = sub
        # A conjunction with itself changes nothing; skipping repeats also ends $ref cycles.
        if pointer in node.seen:
            return
        node.seen.add(pointer)
        if schema is True:
            return
        if schema is False:
            raise Unsatisfiable(pointer, "is false, so no value satisfies it")
        node.recursion = max(node.recursion, max(Counter(trail).values(), default=0))
        if "$ref" in schema:
            target, target_pointer = self._resolve(schema["$ref"], pointer)
            self._absorb(node, Sub(target, target_pointer, (*trail, target_pointer)), resolved)
        for keyword in schema:
            implied = _IMPLIED_TYPE.get(keyword)
            if implied is not None:
                node.implied_types.setdefault(implied)
        if "type" in schema:
            _absorb_type(node, schema["type"])
        if "enum" in schema:
            node.enums.append(list(schema["enum"]))
        if "const" in schema:
            node.consts.append(schema["const"])
        _absorb_numeric(node, schema)
        _absorb_string(node, schema)
        _absorb_array(node, sub)
        _absorb_object(node, sub)
        self._absorb_composition(node, sub, resolved)

    def _absorb_composition(self, node: Node, sub: Sub, resolved: dict[str, int]) -> None:
        schema, pointer = sub.schema, sub.pointer
        for index in range(len(schema.get("allOf", ()))):
            self._absorb(node, _child(sub, "allOf", index), resolved)
        for kind in ("anyOf", "oneOf"):
            if kind in schema:
                options = [[_child(sub, kind, index)] for index in range(len(schema[kind]))]
                choice = Choice(f"{pointer}/{kind}", pointer, kind, options)
                self._absorb_choice(node, choice, resolved)
        if "if" in schema and ("then" in schema or "else" in schema):
            then_side = [_child(sub, "if")] + ([_child(sub, "then")] if "then" in schema else [])
            else_side = [_child(sub, "else")] if "else" in schema else []
            choice = Choice(f"{pointer}/if", pointer, "if/then/else", [then_side, else_side])
            self._absorb_choice(node, choice, resolved)
        # "not", "dependentRequired" and the rest are enforced by validating each candidate.

    def _absorb_choice(self, node: Node, choice: Choice, resolved: dict[str, int]) -> None:
        if choice.key in resolved:
            for option_sub in choice.options[resolved[choice.key]]:
                self._absorb(node, option_sub, resolved)
        elif all(open_choice.key != choice.key for open_choice in node.open_choices):
            node.open_choices.append(choice)

    def _resolve(self, ref: str, at: str) -> tuple[Any, str]:
        if not ref.startswith("#"):
            raise ValueError(
                f"{where(at)} has $ref {ref!r}, but only references within the schema "
                "(starting with '#') are supported."
            )
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            found = _walk_anchor(self.root, fragment, "")
            if found is None:
                raise ValueError(f"{where(at)} refers to unknown anchor {fragment!r}.")
            return found
        target = self.root
        try:
            for token in fragment.split("/")[1:]:
                token = token.replace("~1", "/").replace("~0", "~")
                target = target[int(token)] if isinstance(target, list) else target[token]
        except (KeyError, IndexError, ValueError, TypeError):
            # jsonschema_rs resolved it (compilation succeeded), so it is relative to an
            # embedded "$id" resource, which this generator does not follow.
            raise ValueError(
                f"{where(at)} has $ref {ref!r}, which does not point into the root document; "
                "embedded $id resources are not supported."
            ) from None
        return target, fragment

    def has_ref(self, schema: Any) -> bool:
        """Whether the schema, or anything inside it, has a $ref."""
        key = id(schema)
        if key not in self.mentions_ref:
            if isinstance(schema, dict):
                self.mentions_ref[key] = "$ref" in schema or any(
                    self.has_ref(value) for value in schema.values()
                )
            elif isinstance(schema, list):
                self.mentions_ref[key] = any(self.has_ref(value) for value in schema)
            else:
                self.mentions_ref[key] = False
        return self.mentions_ref[key]


_IMPLIED_TYPE = {
    **dict.fromkeys(
        (
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "minProperties",
            "maxProperties",
            "propertyNames",
            "dependentRequired",
        ),
        "object",
    ),
    **dict.fromkeys(
        ("items", "prefixItems", "contains", "minItems", "maxItems", "uniqueItems"), "array"
    ),
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format"), "string"),
    **dict.fromkeys(
        ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"), "number"
    ),
}


def _child(sub: Sub, *tokens: str | int) -> Sub:
    """The subschema at sub's schema[tokens[0]][tokens[1]]..., with its pointer."""
    target = sub.schema
    for token in tokens:
        target = target[token]
    path = "".join("/" + escape_token(str(token)) for token in tokens)
    return Sub(target, sub.pointer + path, sub.trail)


def _absorb_type(node: Node, declared: str | list[str]) -> None:
    declared = [declared] if isinstance(declared, str) else list(declared)
    if node.types is None:
        node.types = declared
        return
    before = node.types
    node.types = _intersect_types(before, declared)
    if not node.types:
        raise Unsatisfiable(
            node.pointer,
            f"has conflicting types ({either(before)} versus {either(declared)}), "
            "so no value satisfies it",
        )


def _absorb_numeric(node: Node, schema: dict) -> None:
    for keyword, exclusive in (("minimum", False), ("exclusiveMinimum", True)):
        if keyword in schema:
            bound = Bound(decimal(schema[keyword]), exclusive, f"{keyword} {show(schema[keyword])}")
            if node.lower is None or _tighter(bound, node.lower, above=True):
                node.lower = bound
    for keyword, exclusive in (("maximum", False), ("exclusiveMaximum", True)):
        if keyword in schema:
            bound = Bound(decimal(schema[keyword]), exclusive, f"{keyword} {show(schema[keyword])}")
            if node.upper is None or _tighter(bound, node.upper, above=False):
                node.upper = bound
    if "multipleOf" in schema:
        node.multiples.append(decimal(schema["multipleOf"]))


def _absorb_string(node: Node, schema: dict) -> None:
    node.min_length = max(node.min_length, schema.get("minLength", 0))
    node.max_length = _smaller(node.max_length, schema.get("maxLength"))
    if "pattern" in schema:
        node.patterns.append(schema["pattern"])
    if "format" in schema:
        node.formats.append(schema["format"])


def _absorb_array(node: Node, sub: Sub) -> None:
    schema = sub.schema
    prefix_length = len(schema.get("prefixItems", ()))
    for index in range(prefix_length):
        while len(node.prefix) <= index:
            node.prefix.append([])
        node.prefix[index].append(_child(sub, "prefixItems", index))
    if "items" in schema:
        node.item_rules.append((prefix_length, _child(sub, "items")))
    if "contains" in schema:
        minimum = schema.get("minContains", 1)
        node.contains.append((_child(sub, "contains"), minimum, schema.get("maxContains")))
    node.min_items = max(node.min_items, schema.get("minItems", 0))
    node.max_items = _smaller(node.max_items, schema.get("maxItems"))
    node.unique = node.unique or schema.get("uniqueItems", False)


def _absorb_object(node: Node, sub: Sub) -> None:
    schema = sub.schema
    node.required.update(dict.fromkeys(schema.get("required", ())))
    for name in schema.get("properties", {}):
        node.properties.setdefault(name, []).append(_child(sub, "properties", name))
    for pattern in schema.get("patternProperties", {}):
        node.pattern_properties.append((pattern, _child(sub, "patternProperties", pattern)))
    if "additionalProperties" in schema:
        declared = frozenset(schema.get("properties", {}))
        patterns = tuple(schema.get("patternProperties", {}))
        node.additional.append((declared, patterns, _child(sub, "additionalProperties")))
    if "propertyNames" in schema:
        node.property_names.append(_child(sub, "propertyNames"))
    node.min_properties = max(node.min_properties, schema.get("minProperties", 0))
    node.max_properties = _smaller(node.max_properties, schema.get("maxProperties"))


def _walk_anchor(schema: Any, anchor: str, pointer: str) -> tuple[Any, str] | None:
    if isinstance(schema, dict):
        if schema.get("$anchor") == anchor:
            return schema, pointer
        children = schema.items()
    elif isinstance(schema, list):
        children = enumerate(schema)
    else:
        return None
    for key, value in children:
        found = _walk_anchor(value, anchor, f"{pointer}/{escape_token(str(key))}")
        if found is not None:
            return found
    return None


def escape_token(token: str) -> str:
    """A property name or index as a JSON pointer token."""
    return token.replace("~", "~0").replace("/", "~1")


def _smaller(current: int | None, new: int | None) -> int | None:
    if current is None:
        return new
    return current if new is None else min(current, new)


def _tighter(candidate: Bound, current: Bound, above: bool) -> bool:
    if candidate.value == current.value:
        return candidate.exclusive and not current.exclusive
    return candidate.value > current.value if above else candidate.value < current.value


def _intersect_types(current: list[str], declared: list[str]) -> list[str]:
    result: dict[str, None] = {}
    for type_name in current:
        if type_name in declared:
            result[type_name] = None
        elif type_name in ("integer", "number") and ("integer" in declared or "number" in declared):
            result["integer"] = None  # integer is the only part of number both sides allow
    return list(result)


def decimal(number: int | float) -> Fraction:
    """The number as the decimal it is written as, which is how jsonschema_rs compares it.

    A bound of 0.1 means 1/10 and 5.279913679366234e+16 means 52799136793662340, not the
    binary values of those doubles; for doubles among themselves the order is the same.
    """
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)
