"""Values of the scalar kinds: a node's const or enum value, integers and other numbers.

Numbers are worked out as exact fractions of the decimals the schema writes, which is how
jsonschema_rs compares them, so bounds and multipleOf hold for the value that is sent.
"""

import copy
import json
import math
import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from testdouble.analysis.limits import Unsatisfiable, either, show
from testdouble.analysis.nodes import Node, decimal

_PLAUSIBLE_MAX = 100  # numbers prefer the range 0.._PLAUSIBLE_MAX
_EDGE_SPAN = 100  # multiples to choose from when the range lies outside 0.._PLAUSIBLE_MAX
_AVOID_SCAN = 1_000  # ranges this small are scanned for values uniqueItems has not used
_NUMBER_STEPS = tuple(Fraction(1, 10**digits) for digits in (2, 4, 8, 12, 16))


def fixed_value(
    node: Node,
    avoid: frozenset[str],
    rng: random.Random,
    problem: Callable[[Any], str | None],
) -> Any:
    """One of the node's const or enum values that `problem` finds nothing wrong with."""
    allowed: list[Any] | None = None
    for enum in node.enums:
        if not enum:
            raise Unsatisfiable(node.pointer, "has an empty enum, so no value satisfies it")
        if allowed is None:
            allowed = list({canonical(value): value for value in enum}.values())
        else:
            keys = {canonical(value) for value in enum}
            allowed = [value for value in allowed if canonical(value) in keys]
            if not allowed:
                raise Unsatisfiable(
                    node.pointer, "has enums with no value in common, so no value satisfies it"
                )
    consts = list({canonical(const): const for const in node.consts}.values())
    if len(consts) > 1:
        raise Unsatisfiable(
            node.pointer,
            f"has conflicting const values {show(consts[0])} and {show(consts[1])}, "
            "so no value satisfies it",
        )
    if consts:
        if allowed is not None and canonical(consts[0]) not in map(canonical, allowed):
            raise Unsatisfiable(
                node.pointer,
                f"has const {show(consts[0])} that is not among its enum values, "
                "so no value satisfies it",
            )
        allowed = consts
    if node.types is not None:
        typed = [value for value in allowed if is_of_type(value, node.types)]
        if not typed:
            what = f"const {show(allowed[0])}" if node.consts else "enum values"
            verb = "is" if node.consts else "are"
            raise Unsatisfiable(
                node.pointer,
                f"has {what} that {verb} not of type {either(node.types)}, "
                "so no value satisfies it",
            )
        allowed = typed
    fresh = [value for value in allowed if canonical(value) not in avoid]
    if not fresh:
        raise Unsatisfiable(node.pointer, "has no value left that differs from earlier items")
    rng.shuffle(fresh)
    failure = None
    for value in fresh:
        failure = problem(value)
        if failure is None:
            return copy.deepcopy(value)  # never hand out the schema's own objects
    if node.consts:
        reason = f"has const {show(fresh[0])} that fails the rest of the schema ({failure})"
    else:
        reason = f"has no enum value that satisfies the rest of the schema ({failure})"
    raise Unsatisfiable(node.pointer, reason)


def integer_value(node: Node, avoid: frozenset[str], rng: random.Random) -> int:
    """An integer within the node's bounds and a multiple of each of its multipleOf."""
    _check_range(node)
    step = Fraction(math.lcm(*(multiple.numerator for multiple in node.multiples)))
    value = _pick_multiple(node, step, avoid, rng)
    if value is None:
        what = f"integer multiple of {_show_fraction(step)}" if node.multiples else "integer"
        raise Unsatisfiable(
            node.pointer, f"has no {what} {_between(node)}, so no value satisfies it"
        )
    return int(value)


def number_value(node: Node, avoid: frozenset[str], rng: random.Random) -> int | float:
    """A number within the node's bounds, with as few decimals as they allow."""
    _check_range(node)
    if node.multiples:
        step = _lcm_fractions(node.multiples)
        value = _pick_multiple(node, step, avoid, rng)
        number = None if value is None else _json_number(value)
        if number is None:
            raise Unsatisfiable(
                node.pointer,
                f"has no multiple of {_show_fraction(step)} {_between(node)}, "
                "so no value satisfies it",
            )
        return number
    for step in _NUMBER_STEPS:
        value = _pick_multiple(node, step, avoid, rng)
        number = None if value is None else _json_number(value)
        if number is not None and _within(node, number):
            return number
    # Near the limits of double precision decimal steps round onto a bound.
    for number in _edge_numbers(node):
        if _within(node, number):
            return number
    raise Unsatisfiable(
        node.pointer, f"has no floating-point number {_between(node)}, so no value satisfies it"
    )


def _pick_multiple(
    node: Node, step: Fraction, avoid: frozenset[str], rng: random.Random
) -> Fraction | None:
    """Return a random multiple of step within the node's bounds, preferring 0..100."""
    low = high = None
    if node.lower is not None:
        ratio = node.lower.value / step
        low = math.floor(ratio) + 1 if node.lower.exclusive else math.ceil(ratio)
    if node.upper is not None:
        ratio = node.upper.value / step
        high = math.ceil(ratio) - 1 if node.upper.exclusive else math.floor(ratio)
    if low is not None and high is not None and low > high:
        return None
    plausible_high = math.floor(_PLAUSIBLE_MAX / step)
    start = 0 if low is None else max(low, 0)
    end = plausible_high if high is None else min(high, plausible_high)
    if start > end and low is not None and low > plausible_high:
        start = low
        end = low + _EDGE_SPAN if high is None else min(high, low + _EDGE_SPAN)
    elif start > end:  # the whole range is below zero
        start = high - _EDGE_SPAN if low is None else max(low, high - _EDGE_SPAN)
        end = high
    if avoid and end - start < _AVOID_SCAN:
        fresh = [
            factor
            for factor in range(start, end + 1)
            if canonical(_json_number(step * factor)) not in avoid
        ]
        if fresh:
            return step * rng.choice(fresh)
    return step * rng.randint(start, end)


def is_of_type(value: Any, types: list[str]) -> bool:
    """Whether a JSON value is of one of the JSON Schema types named."""
    if isinstance(value, bool):
        return "boolean" in types
    if isinstance(value, int):
        return "integer" in types or "number" in types
    if isinstance(value, float):
        return "number" in types or ("integer" in types and value.is_integer())
    kinds = {str: "string", list: "array", dict: "object", type(None): "null"}
    return kinds.get(type(value)) in types


def canonical(value: Any) -> str:
    """A key equal for JSON-equal values (1 == 1.0, but true != 1), as uniqueItems compares."""

    def normalise(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, list):
            return [normalise(element) for element in item]
        if isinstance(item, dict):
            return {key: normalise(element) for key, element in item.items()}
        return item

    return json.dumps(normalise(value), sort_keys=True)


def _check_range(node: Node) -> None:
    lower, upper = node.lower, node.upper
    if lower is None or upper is None:
        return
    if lower.value > upper.value:
        raise Unsatisfiable(
            node.pointer, f"has {lower.text} above {upper.text}, so no value satisfies it"
        )
    if lower.value == upper.value and (lower.exclusive or upper.exclusive):
        raise Unsatisfiable(
            node.pointer,
            f"has {lower.text} and {upper.text}, which leave no number between them, "
            "so no value satisfies it",
        )


def _lcm_fractions(fractions: list[Fraction]) -> Fraction:
    numerator = math.lcm(*(fraction.numerator for fraction in fractions))
    denominator = math.gcd(*(fraction.denominator for fraction in fractions))
    return Fraction(numerator, denominator)


def _json_number(value: Fraction) -> int | float | None:
    if value.denominator == 1:
        return int(value)
    try:
        return float(value)
    except OverflowError:
        return None


def _within(node: Node, number: int | float) -> bool:
    exact = decimal(number)
    lower, upper = node.lower, node.upper
    if lower is not None and (exact < lower.value or (lower.exclusive and exact == lower.value)):
        return False
    return upper is None or not (exact > upper.value or (upper.exclusive and exact == upper.value))


def _edge_numbers(node: Node) -> list[float]:
    """Doubles right next to the bounds, and halfway between them."""
    numbers = []
    if node.lower is not None:
        numbers.append(math.nextafter(float(node.lower.value), math.inf))
    if node.upper is not None:
        numbers.append(math.nextafter(float(node.upper.value), -math.inf))
    if node.lower is not None and node.upper is not None:
        numbers.append(float((node.lower.value + node.upper.value) / 2))
    return [number for number in numbers if math.isfinite(number)]


def _between(node: Node) -> str:
    if node.lower is not None and node.upper is not None:
        return f"between {node.lower.text} and {node.upper.text}"
    if node.lower is not None:
        return f"above {node.lower.text}"
    return f"below {node.upper.text}" if node.upper is not None else "at all"


def _show_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else repr(float(value))
