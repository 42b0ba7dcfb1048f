"""The search for a value: choices among branches, candidates checked, arrays and objects.

Each value is built for the conjunction of the subschemas that apply to it (nodes.py), checked
against each of them with jsonschema_rs, and on failure built again with fresh choices.
"""

import itertools
import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import jsonschema_rs

from testdouble.analysis.limits import (
    ATTEMPTS_PER_VALUE,
    DEFAULT_ARRAY_ITEMS,
    DEFAULT_STRING_LENGTH,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_PROPERTIES,
    MAX_STEPS,
    LimitExceeded,
    Unsatisfiable,
    show,
)
from testdouble.analysis.nodes import Node, SchemaDocument, Sub, escape_token
from testdouble.analysis.scalars import canonical, fixed_value, integer_value, number_value
from testdouble.analysis.strings import Strings

_ROOT_URI = "urn:analysis-root"
_FRAGMENT_SAFE = "/?!$&'()*+,;=:@"  # characters a URI fragment may hold unescaped

_TYPE_SIMPLICITY = ("null", "boolean", "integer", "number", "string", "array", "object")


def generate(schema: dict | bool, seed: int) -> Any:
    """Return a JSON value valid against schema, always the same one for the same seed."""
    validator = _compile(schema)
    generator = _Generator(schema, validator, random.Random(seed))
    # The root counts as entered once, like a $defs target reached through a root "$ref".
    value = generator.value_for([Sub(schema, "", ("",))], "", depth=0)
    problem = _first_problem(validator, value)
    if problem is not None:  # the per-value checks make this unreachable in practice
        raise Unsatisfiable("", f"produced a value that failed validation ({problem})")
    return value


def _compile(schema: dict | bool) -> jsonschema_rs.Draft202012Validator:
    try:
        return jsonschema_rs.Draft202012Validator(schema, validate_formats=True, offline=True)
    except jsonschema_rs.ValidationError as error:
        detail = _one_line(error.message)
        message = f"The schema is not a valid draft 2020-12 JSON Schema: {detail}."
        raise ValueError(message) from error


class _Generator:
    """Builds one value for one generate() call, consuming a single seeded random stream."""

    def __init__(self, root: Any, validator: Any, rng: random.Random) -> None:
        self.root = root
        self.document = SchemaDocument(root)
        self.rng = rng
        self.strings = Strings(rng, self._matches)
        self.validators = {"": validator}  # by pointer into the root schema
        self.checkers: dict[str, Any] = {}  # by JSON text of a standalone schema
        self.registry: jsonschema_rs.Registry | None = None
        self.steps = 0

    def value_for(
        self, subs: list[Sub], pointer: str, depth: int, avoid: frozenset[str] = frozenset()
    ) -> Any:
        """Return a value satisfying every schema in subs, or raise Unsatisfiable.

        avoid holds canonical() keys of values not to return (earlier items under uniqueItems).
        """
        if depth > MAX_DEPTH:
            raise Unsatisfiable(
                pointer, f"nests values deeper than the generator limit of {MAX_DEPTH} levels"
            )
        return self._solve(subs, pointer, {}, depth, avoid)

    def _solve(
        self,
        subs: list[Sub],
        pointer: str,
        resolved: dict[str, int],
        depth: int,
        avoid: frozenset[str],
    ) -> Any:
        self._step(pointer)
        node = self.document.build(subs, pointer, resolved)
        if not node.open_choices:
            return self._emit(node, subs, depth, avoid)
        choice = node.open_choices[0]
        order = list(range(len(choice.options)))
        self.rng.shuffle(order)
        if node.minimal:
            # Try branches without a $ref first, so recursion can end.
            order.sort(
                key=lambda index: any(
                    self.document.has_ref(option.schema) for option in choice.options[index]
                )
            )
        last_error = None
        for index in order:
            try:
                return self._solve(subs, pointer, {**resolved, choice.key: index}, depth, avoid)
            except LimitExceeded:
                raise
            except Unsatisfiable as error:
                last_error = error
        if choice.kind == "if/then/else":
            reason = "has if/then/else but neither the then nor the else side could be satisfied"
        elif len(order) == 1:
            raise last_error
        else:
            reason = f"has {choice.kind} but none of its {len(order)} branches could be satisfied"
        raise Unsatisfiable(choice.pointer, reason) from last_error

    def _step(self, pointer: str) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise LimitExceeded(
                pointer, f"needs more than the generator limit of {MAX_STEPS} generation steps"
            )

    def _problem(self, subs: list[Sub], value: Any) -> str | None:
        for sub in subs:
            if sub.schema is not True:
                problem = _first_problem(self._validator(sub.pointer), value)
                if problem is not None:
                    return problem
        return None

    def _validator(self, pointer: str) -> Any:
        if pointer not in self.validators:
            if self.registry is None:
                self.registry = jsonschema_rs.Registry(
                    [(_ROOT_URI, self.root)], draft=jsonschema_rs.Draft202012
                )
            reference = {"$ref": f"{_ROOT_URI}#{quote(pointer, safe=_FRAGMENT_SAFE)}"}
            self.validators[pointer] = jsonschema_rs.Draft202012Validator(
                reference, registry=self.registry, validate_formats=True, offline=True
            )
        return self.validators[pointer]

    def _matches(self, schema: dict, value: Any) -> bool:
        key = json.dumps(schema, sort_keys=True)
        if key not in self.checkers:
            self.checkers[key] = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
        return self.checkers[key].is_valid(value)

    def _emit(self, node: Node, subs: list[Sub], depth: int, avoid: frozenset[str]) -> Any:
        if node.consts or node.enums:
            return fixed_value(node, avoid, self.rng, lambda value: self._problem(subs, value))
        first_error = None
        problem = "each candidate repeated an earlier item"
        for type_name in self._type_order(node):
            for attempt in range(ATTEMPTS_PER_VALUE):
                try:
                    value = self._emit_as(type_name, node, depth, attempt, avoid)
                except LimitExceeded:
                    raise
                except Unsatisfiable as error:
                    first_error = first_error or error
                    break
                if avoid and canonical(value) in avoid:
                    continue
                problem = self._problem(subs, value)
                if problem is None:
                    return value
        if first_error is not None:
            raise first_error
        raise Unsatisfiable(
            node.pointer, f"could not be satisfied: every candidate failed ({problem})"
        )

    def _emit_as(
        self, type_name: str, node: Node, depth: int, attempt: int, avoid: frozenset[str]
    ) -> Any:
        if type_name == "null":
            return None
        if type_name == "boolean":
            fresh = [flag for flag in (True, False) if canonical(flag) not in avoid]
            return self.rng.choice(fresh or [True])
        if type_name == "integer":
            return integer_value(node, avoid, self.rng)
        if type_name == "number":
            return number_value(node, avoid, self.rng)
        if type_name == "string":
            return self.strings.value(node)
        if type_name == "array":
            return self._emit_array(node, depth)
        return self._emit_object(node, depth, attempt)

    def _type_order(self, node: Node) -> list[str]:
        types = node.types if node.types is not None else list(node.implied_types) or ["string"]
        if node.minimal:
            return sorted(types, key=_TYPE_SIMPLICITY.index)
        concrete = [type_name for type_name in types if type_name != "null"]
        self.rng.shuffle(concrete)
        return concrete + (["null"] if "null" in types else [])

    def _emit_array(self, node: Node, depth: int) -> list[Any]:
        low, high = node.min_items, node.max_items
        slots = []  # one contains-schema per item that must match it
        for contains, minimum, maximum in node.contains:
            if maximum is not None and minimum > maximum:
                raise Unsatisfiable(
                    node.pointer,
                    f"has minContains {minimum} above maxContains {maximum}, "
                    "so no value satisfies it",
                )
            if minimum > MAX_ITEMS:
                raise Unsatisfiable(
                    node.pointer,
                    f"has minContains {minimum} above the generator limit of {MAX_ITEMS} items",
                )
            slots.extend([contains] * minimum)
        if low > MAX_ITEMS:
            raise Unsatisfiable(
                node.pointer, f"has minItems {low} above the generator limit of {MAX_ITEMS} items"
            )
        if high is not None and low > high:
            raise Unsatisfiable(
                node.pointer, f"has minItems {low} above maxItems {high}, so no value satisfies it"
            )
        needed = max(low, len(slots))
        if high is not None and needed > high:
            raise Unsatisfiable(
                node.pointer,
                f"needs {needed} items for contains but has maxItems {high}, "
                "so no value satisfies it",
            )
        if node.minimal:
            count = needed
        else:
            count = self.rng.randint(max(needed, 1), max(needed, DEFAULT_ARRAY_ITEMS))
        if high is not None:
            count = min(count, high)

        items: list[Any] = []
        seen: set[str] = set()
        for index in range(count):
            subs = self._item_subs(node, index) + slots[index : index + 1]
            pointer = subs[0].pointer if subs else f"{node.pointer}/items"
            try:
                items.append(self._new_item(node, subs, pointer, depth, seen, needed))
            except LimitExceeded:
                raise
            except Unsatisfiable:
                if index < needed:
                    raise
                break  # optional items: a shorter array is fine
        return items

    def _item_subs(self, node: Node, index: int) -> list[Sub]:
        subs = list(node.prefix[index]) if index < len(node.prefix) else []
        return subs + [sub for first_index, sub in node.item_rules if index >= first_index]

    def _new_item(
        self, node: Node, subs: list[Sub], pointer: str, depth: int, seen: set[str], needed: int
    ) -> Any:
        if not node.unique:
            return self.value_for(subs, pointer, depth + 1)
        try:
            item = self.value_for(subs, pointer, depth + 1, avoid=frozenset(seen))
        except LimitExceeded:
            raise
        except Unsatisfiable as error:
            if not seen:
                raise
            raise Unsatisfiable(
                node.pointer,
                f"has uniqueItems but only {len(seen)} distinct items could be generated "
                f"where {needed} are needed",
            ) from error
        seen.add(canonical(item))
        return item

    def _emit_object(self, node: Node, depth: int, attempt: int) -> dict[str, Any]:
        low, high = node.min_properties, node.max_properties
        if low > MAX_PROPERTIES:
            raise Unsatisfiable(
                node.pointer,
                f"has minProperties {low} above the generator limit of {MAX_PROPERTIES} properties",
            )
        if high is not None and low > high:
            raise Unsatisfiable(
                node.pointer,
                f"has minProperties {low} above maxProperties {high}, so no value satisfies it",
            )
        if high is not None and len(node.required) > high:
            raise Unsatisfiable(
                node.pointer,
                f"requires {len(node.required)} properties but has maxProperties {high}, "
                "so no value satisfies it",
            )
        values: dict[str, Any] = {}
        for name in node.required:
            subs = self._property_subs(node, name)
            forbidding = next((sub for sub in subs if sub.schema is False), None)
            if forbidding is not None:
                raise Unsatisfiable(
                    node.pointer,
                    f"requires property {show(name)}, but the schema at {forbidding.pointer} "
                    "is false, so no value satisfies it",
                )
            values[name] = self.value_for(subs, self._property_pointer(node, name, subs), depth + 1)
        for name in node.properties:
            full = high is not None and len(values) >= high
            if full or (node.minimal and len(values) >= low):
                break
            if name not in values and self._wants_optional(attempt):
                self._try_property(node, values, name, depth)
        if len(values) < low:
            for name in self._extra_names(node, low - len(values), depth):
                if len(values) >= low:
                    break
                if name not in values:
                    self._try_property(node, values, name, depth)
        if len(values) < low:
            raise Unsatisfiable(
                node.pointer,
                f"has minProperties {low} but only {len(values)} properties could be generated",
            )
        declared_first = {name: values[name] for name in node.properties if name in values}
        return declared_first | values

    def _wants_optional(self, attempt: int) -> bool:
        """All optional properties first; if that fails validation, random subsets, then none."""
        if attempt == 0:
            return True
        return attempt < ATTEMPTS_PER_VALUE - 1 and self.rng.random() < 0.5

    def _property_subs(self, node: Node, name: str) -> list[Sub]:
        subs = list(node.properties.get(name, ()))
        for pattern, sub in node.pattern_properties:
            if self._matches({"pattern": pattern}, name):
                subs.append(sub)
        for declared, patterns, sub in node.additional:
            if name not in declared and not any(
                self._matches({"pattern": pattern}, name) for pattern in patterns
            ):
                subs.append(sub)
        return subs

    def _property_pointer(self, node: Node, name: str, subs: list[Sub]) -> str:
        return subs[0].pointer if subs else f"{node.pointer}/properties/{escape_token(name)}"

    def _try_property(self, node: Node, values: dict[str, Any], name: str, depth: int) -> None:
        """Add an optional property if its schemas allow a value; leave it out otherwise."""
        subs = self._property_subs(node, name)
        if any(sub.schema is False for sub in subs):
            return
        if node.property_names and self._problem(node.property_names, name) is not None:
            return
        try:
            values[name] = self.value_for(subs, self._property_pointer(node, name, subs), depth + 1)
        except LimitExceeded:
            raise
        except Unsatisfiable:
            pass

    def _extra_names(self, node: Node, missing: int, depth: int) -> Iterator[str]:
        """Candidate names for properties beyond the declared ones, to reach minProperties."""
        names: set[str] = set()
        for _ in range(missing + 10 if node.property_names else 0):
            avoid = frozenset(canonical(name) for name in names)
            try:
                name = self.value_for(
                    node.property_names, node.property_names[0].pointer, depth + 1, avoid
                )
            except LimitExceeded:
                raise
            except Unsatisfiable:
                break
            if isinstance(name, str):
                names.add(name)
                yield name
        for pattern, _sub in node.pattern_properties:
            candidates = self.strings.pattern_candidates(pattern, 1, DEFAULT_STRING_LENGTH)
            for name in itertools.islice(candidates, 10):
                if name and self._matches({"pattern": pattern}, name):
                    yield name
        for number in range(1, missing + 21):
            yield f"extra_field_{number}"


def _first_problem(validator: Any, value: Any) -> str | None:
    for error in validator.iter_errors(value):
        where = "".join("/" + escape_token(str(part)) for part in error.instance_path)
        message = _one_line(error.message)
        return f"{message} at {where}" if where else message
    return None


def _one_line(message: str, limit: int = 200) -> str:
    text = " ".join(message.split()).rstrip(".")
    return text if len(text) <= limit else text[:limit] + "..."
