"""The analysis generator: deterministic values that satisfy a JSON Schema, or a clear reason."""

import json
import os
import re
import subprocess
import sys

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testdouble import analysis
from testdouble.analysis import Unsatisfiable, generate
from testdouble.analysis.strings import WORDS
from tests.live_server import ROOT

SEEDS = range(6)

# Realistic call-analysis schemas, one per feature the generator supports.
CORPUS = {
    "sentiment_enum": {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        },
        "required": ["sentiment"],
        "additionalProperties": False,
    },
    "callback_requested": {
        "type": "object",
        "properties": {
            "callback_requested": {"type": "boolean"},
            "callback_time": {"type": "string", "format": "date-time"},
        },
        "required": ["callback_requested"],
    },
    "order_with_items": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^ORD-[0-9]{6}$"},
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 20},
                        "unit_price": {
                            "type": "number",
                            "minimum": 0,
                            "exclusiveMaximum": 1000,
                            "multipleOf": 0.01,
                        },
                    },
                    "required": ["sku", "quantity"],
                    "additionalProperties": False,
                },
            },
            "total": {"type": "number", "minimum": 0},
        },
        "required": ["order_id", "items"],
    },
    "referenced_address": {
        "$defs": {
            "address": {
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"},
                    "postcode": {"type": "string", "pattern": r"^\d{4} ?[A-Z]{2}$"},
                    "country": {"type": "string", "enum": ["NL", "BE", "DE"]},
                },
                "required": ["street", "city", "country"],
            },
        },
        "type": "object",
        "properties": {
            "billing": {"$ref": "#/$defs/address"},
            "shipping": {"$ref": "#/$defs/address"},
        },
        "required": ["billing"],
    },
    "definitions_with_pointer_escapes": {
        "definitions": {
            "a/b": {"type": "integer", "minimum": 1, "maximum": 9},
            "c~d": {"type": "string", "enum": ["morning", "afternoon", "evening"]},
        },
        "type": "object",
        "properties": {
            "slot": {"$ref": "#/definitions/a~1b"},
            "part_of_day": {"$ref": "#/definitions/c~0d"},
        },
        "required": ["slot", "part_of_day"],
    },
    "percent_encoded_ref_and_anchor": {
        "$defs": {
            "caller info": {
                "$anchor": "caller",
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 2}},
                "required": ["name"],
            },
        },
        "type": "object",
        "properties": {
            "caller": {"$ref": "#/$defs/caller%20info"},
            "transferred_to": {"$ref": "#caller"},
        },
        "required": ["caller", "transferred_to"],
    },
    "nested_arrays": {
        "type": "object",
        "properties": {
            "transcript_segments": {
                "type": "array",
                "minItems": 2,
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "string", "maxLength": 20},
                },
            },
        },
        "required": ["transcript_segments"],
    },
    "const_fields": {
        "type": "object",
        "properties": {
            "schema_version": {"const": "2024-06"},
            "source": {"const": "voice-agent"},
        },
        "required": ["schema_version", "source"],
        "additionalProperties": False,
    },
    "numeric_bounds": {
        "type": "object",
        "properties": {
            "satisfaction": {"type": "integer", "minimum": 1, "maximum": 5},
            "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "duration_minutes": {
                "type": "number",
                "multipleOf": 0.5,
                "minimum": 0.5,
                "maximum": 120,
            },
            "discount_percent": {
                "type": "integer",
                "multipleOf": 5,
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 50,
            },
            "balance": {"type": "number", "maximum": -1000},
            "account_number": {"type": "integer", "minimum": 1_000_000, "maximum": 9_999_999},
        },
        "required": ["satisfaction", "confidence", "duration_minutes", "discount_percent"],
    },
    "patterns": {
        "type": "object",
        "properties": {
            "ticket": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
            "phone": {"type": "string", "pattern": r"^\+[1-9]\d{7,14}$"},
            "zip": {"type": "string", "pattern": r"^\d{5}(-\d{4})?$"},
            "slug": {"type": "string", "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$", "maxLength": 30},
            "reference": {"type": "string", "pattern": "REF[0-9]+", "minLength": 12},
            "choice": {"type": "string", "pattern": "^(yes|no|maybe)$"},
        },
        "required": ["ticket", "phone", "zip", "slug", "reference", "choice"],
    },
    "formats": {
        "type": "object",
        "properties": {
            name: {"type": "string", "format": name}
            for name in (
                "date-time",
                "date",
                "time",
                "email",
                "uri",
                "uuid",
                "hostname",
                "ipv4",
                "ipv6",
                "duration",
                "uri-reference",
                "json-pointer",
            )
        },
        "required": ["date-time", "date", "time", "email", "uri", "uuid"],
    },
    "one_of_contact": {
        "type": "object",
        "properties": {
            "contact": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"email": {"type": "string", "format": "email"}},
                        "required": ["email"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"phone": {"type": "string", "pattern": r"^\+\d{10,12}$"}},
                        "required": ["phone"],
                        "additionalProperties": False,
                    },
                ],
            },
        },
        "required": ["contact"],
    },
    "one_of_overlapping_multiples": {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "oneOf": [{"multipleOf": 3}, {"multipleOf": 5}],
    },
    "all_of_merge": {
        "allOf": [
            {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            {"properties": {"age": {"type": "integer", "minimum": 18}}, "required": ["age"]},
            {"properties": {"age": {"maximum": 65, "multipleOf": 2}}},
        ],
    },
    "unique_topics": {
        "type": "object",
        "properties": {
            "topics": {
                "type": "array",
                "items": {"enum": ["billing", "delivery", "refund", "technical", "sales"]},
                "uniqueItems": True,
                "minItems": 3,
                "maxItems": 5,
            },
            "scores": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 4},
                "uniqueItems": True,
                "minItems": 4,
            },
        },
        "required": ["topics", "scores"],
    },
    "strict_required": {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["cancel", "upgrade", "question"]},
            "notes": {"type": "string", "minLength": 5, "maxLength": 60},
        },
        "required": ["intent", "notes"],
        "additionalProperties": False,
    },
    "recursive_tree": {
        "type": "object",
        "properties": {
            "topic": {"type": "string"},
            "subtopics": {"type": "array", "items": {"$ref": "#"}},
        },
        "required": ["topic"],
    },
    "recursive_required_chain": {
        "$defs": {
            "step": {
                "type": "object",
                "properties": {
                    "action": {"type": "string"},
                    "next": {"anyOf": [{"$ref": "#/$defs/step"}, {"type": "null"}]},
                },
                "required": ["action", "next"],
            },
        },
        "$ref": "#/$defs/step",
    },
    "nullable_fields": {
        "type": "object",
        "properties": {
            "customer_name": {"type": ["string", "null"], "maxLength": 40},
            "order_total": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
        },
        "required": ["customer_name", "order_total"],
    },
    "if_then_else": {
        "type": "object",
        "properties": {
            "country": {"enum": ["US", "NL"]},
            "zip": {"type": "string", "pattern": r"^\d{5}$"},
            "postcode": {"type": "string", "pattern": r"^\d{4}[A-Z]{2}$"},
        },
        "required": ["country"],
        "if": {"properties": {"country": {"const": "US"}}},
        "then": {"required": ["zip"], "not": {"required": ["postcode"]}},
        "else": {"required": ["postcode"], "not": {"required": ["zip"]}},
    },
    "not_keywords": {
        "type": "object",
        "properties": {
            "outcome": {
                "enum": ["sale", "no_sale", "callback", "voicemail"],
                "not": {"const": "voicemail"},
            },
            "reference": {"type": ["string", "integer"], "not": {"type": "string"}},
        },
        "required": ["outcome", "reference"],
    },
    "contains_customer_turn": {
        "type": "array",
        "minItems": 2,
        "items": {
            "type": "object",
            "properties": {
                "speaker": {"enum": ["agent", "customer"]},
                "text": {"type": "string"},
            },
            "required": ["speaker", "text"],
        },
        "contains": {"properties": {"speaker": {"const": "customer"}}},
        "minContains": 1,
        "maxContains": 2,
    },
    "prefix_items_tuple": {
        "type": "array",
        "prefixItems": [
            {"type": "string", "format": "date"},
            {"type": "integer", "minimum": 0},
            {"type": "boolean"},
        ],
        "items": False,
        "minItems": 2,
    },
    "min_properties_with_additional_schema": {
        "type": "object",
        "properties": {"primary_reason": {"type": "string"}},
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 10},
        "minProperties": 3,
        "maxProperties": 4,
    },
    "pattern_properties": {
        "type": "object",
        "patternProperties": {"^x-[a-z]+$": {"type": "string"}},
        "additionalProperties": False,
        "minProperties": 2,
    },
    "boolean_subschemas": {
        "type": "object",
        "properties": {"anything": True, "never": False, "metadata": {}},
        "required": ["anything"],
    },
    "ref_with_siblings": {
        "$defs": {"amount": {"type": "number", "minimum": 0}},
        "type": "object",
        "properties": {
            "refund": {"$ref": "#/$defs/amount", "maximum": 500, "multipleOf": 0.01},
        },
        "required": ["refund"],
    },
    "dependent_required": {
        "type": "object",
        "properties": {
            "callback": {"type": "boolean"},
            "callback_number": {"type": "string", "pattern": r"^\+\d{11}$"},
        },
        "dependentRequired": {"callback_number": ["callback"]},
    },
    "exact_and_long_lengths": {
        "type": "object",
        "properties": {
            "pin": {"type": "string", "minLength": 8, "maxLength": 8},
            "summary": {"type": "string", "minLength": 120},
            "empty": {"type": "string", "maxLength": 0},
        },
        "required": ["pin", "summary", "empty"],
    },
    "untyped_inference": {
        "properties": {
            "rating": {"minimum": 3, "maximum": 4},
            "labels": {"items": {"maxLength": 5}},
            "code": {"pattern": "^[a-z]{2}$"},
        },
        "required": ["rating", "labels", "code"],
    },
    "all_of_multiples": {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
        "allOf": [{"multipleOf": 4}, {"multipleOf": 6}],
    },
    "enum_of_objects": {
        "enum": [{"code": 1, "label": "resolved"}, {"code": 2, "label": "escalated"}, None],
    },
    "full_call_analysis": {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": 200},
            "sentiment": {"enum": ["positive", "neutral", "negative"]},
            "customer": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "phone": {"type": ["string", "null"], "pattern": r"^\+\d{10,13}$"},
                },
                "required": ["name"],
            },
            "action_items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string", "minLength": 3},
                        "due": {"type": "string", "format": "date"},
                        "priority": {"enum": ["low", "medium", "high"]},
                    },
                    "required": ["description", "priority"],
                },
            },
            "callback_requested": {"type": "boolean"},
            "call_duration_seconds": {"type": "integer", "minimum": 0, "maximum": 7200},
            "escalation": {
                "type": "object",
                "properties": {
                    "needed": {"type": "boolean"},
                    "reason": {"type": "string"},
                },
                "required": ["needed"],
                "if": {"properties": {"needed": {"const": True}}},
                "then": {"required": ["reason"]},
            },
        },
        "required": ["summary", "sentiment", "callback_requested"],
        "additionalProperties": False,
    },
}

# Schemas that admit exactly one value, so seeds cannot vary it.
SINGLE_VALUED = {"const_fields"}


def validates(schema, value) -> bool:
    strict = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return strict.is_valid(value) and jsonschema_rs.validator_for(schema).is_valid(value)


def dumps(value) -> str:
    return json.dumps(value)


# --- the corpus -----------------------------------------------------------------------------


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_values_validate(name):
    schema = CORPUS[name]
    for seed in SEEDS:
        value = generate(schema, seed)
        assert validates(schema, value), (seed, value)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_is_deterministic(name):
    schema = CORPUS[name]
    for seed in SEEDS:
        assert dumps(generate(schema, seed)) == dumps(generate(schema, seed))


@pytest.mark.parametrize("name", sorted(set(CORPUS) - SINGLE_VALUED))
def test_corpus_varies_with_seed(name):
    outputs = {dumps(generate(CORPUS[name], seed)) for seed in range(10)}
    assert len(outputs) > 1


def test_single_valued_schema_gives_its_value():
    assert generate(CORPUS["const_fields"], 3) == {
        "schema_version": "2024-06",
        "source": "voice-agent",
    }


def test_deterministic_across_interpreters():
    """String hashing is randomised per process; the output must not depend on it."""
    script = (
        "import json, sys\n"
        "from testdouble.analysis import generate\n"
        "from tests.test_analysis import CORPUS\n"
        "print(json.dumps([generate(s, seed) for s in CORPUS.values() for seed in (0, 1)]))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2", "random"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1


# --- behaviour on particular keywords ------------------------------------------------------


def test_optional_properties_are_all_included():
    schema = CORPUS["full_call_analysis"]
    value = generate(schema, 0)
    assert list(value) == list(schema["properties"])


def test_property_order_follows_declaration():
    value = generate(CORPUS["callback_requested"], 1)
    assert list(value) == ["callback_requested", "callback_time"]


def test_patterns_produce_plausible_codes():
    value = generate(CORPUS["patterns"], 0)
    assert re.fullmatch(r"[A-Z]{3}-\d{4}", value["ticket"])
    assert value["choice"] in ("yes", "no", "maybe")
    assert "REF" in value["reference"] and len(value["reference"]) >= 12


def test_strings_are_short_word_phrases():
    schema = {"type": "string"}
    for seed in SEEDS:
        text = generate(schema, seed)
        assert 0 < len(text) <= analysis.DEFAULT_STRING_LENGTH
        assert all(word in WORDS for word in text.split(" "))


def test_arrays_are_small_unless_min_items_demands():
    for seed in SEEDS:
        assert 1 <= len(generate({"type": "array"}, seed)) <= analysis.DEFAULT_ARRAY_ITEMS
        assert len(generate({"type": "array", "minItems": 7}, seed)) == 7


def test_booleans_vary_with_seed():
    assert {generate({"type": "boolean"}, seed) for seed in range(20)} == {True, False}


def test_numbers_prefer_plausible_range():
    for seed in SEEDS:
        assert 0 <= generate({"type": "integer"}, seed) <= 100
        assert 500 <= generate({"type": "integer", "minimum": 500}, seed) <= 600


def test_recursive_tree_terminates_with_bounded_depth():
    def depth(node) -> int:
        return 1 + max((depth(child) for child in node.get("subtopics", [])), default=0)

    for seed in range(20):
        tree = generate(CORPUS["recursive_tree"], seed)
        assert depth(tree) <= analysis.RECURSION_DEPTH + 1


def test_required_recursion_ends_with_the_non_recursive_branch():
    def length(step) -> int:
        return 0 if step is None else 1 + length(step["next"])

    for seed in range(20):
        assert 1 <= length(generate(CORPUS["recursive_required_chain"], seed)) <= 4


def test_one_of_values_match_exactly_one_branch():
    for seed in range(30):
        value = generate(CORPUS["one_of_overlapping_multiples"], seed)
        assert (value % 3 == 0) != (value % 5 == 0)


def test_if_then_else_picks_both_sides_across_seeds():
    countries = {generate(CORPUS["if_then_else"], seed)["country"] for seed in range(20)}
    assert countries == {"US", "NL"}


def test_returned_value_does_not_alias_the_schema():
    schema = {"enum": [{"code": 1}]}
    value = generate(schema, 0)
    value["code"] = 99
    assert schema == {"enum": [{"code": 1}]}


def test_true_schema_and_empty_schema():
    assert validates(True, generate(True, 0))
    assert isinstance(generate({}, 0), str)


def test_optional_property_with_false_schema_is_omitted():
    assert "never" not in generate(CORPUS["boolean_subschemas"], 0)


# --- unsatisfiable schemas -------------------------------------------------------------------

SENTENCE = re.compile(r"The (root schema|schema at /\S*) [^\n]+[^.]\.")

UNSATISFIABLE = [
    (
        {
            "type": "object",
            "properties": {"age": {"type": "integer", "minimum": 10, "maximum": 5}},
            "required": ["age"],
        },
        "The schema at /properties/age has minimum 10 above maximum 5, so no value satisfies it.",
    ),
    (
        {"type": "number", "exclusiveMinimum": 5, "maximum": 5},
        "The root schema has exclusiveMinimum 5 and maximum 5, which leave no number between "
        "them, so no value satisfies it.",
    ),
    (
        {"type": "integer", "minimum": 1.2, "maximum": 1.8},
        "The root schema has no integer between minimum 1.2 and maximum 1.8, "
        "so no value satisfies it.",
    ),
    (
        {"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 6},
        "The root schema has no integer multiple of 7 between minimum 1 and maximum 6, "
        "so no value satisfies it.",
    ),
    (
        {
            "properties": {"code": {"type": "string", "minLength": 5, "maxLength": 2}},
            "required": ["code"],
        },
        "The schema at /properties/code has minLength 5 above maxLength 2, "
        "so no value satisfies it.",
    ),
    ({"enum": []}, "The root schema has an empty enum, so no value satisfies it."),
    (
        {"properties": {"status": {"type": "string", "enum": [1, 2]}}, "required": ["status"]},
        "The schema at /properties/status has enum values that are not of type string, "
        "so no value satisfies it.",
    ),
    (
        {"type": "integer", "const": "five"},
        'The root schema has const "five" that is not of type integer, so no value satisfies it.',
    ),
    (
        {"allOf": [{"const": 1}, {"const": 2}]},
        "The root schema has conflicting const values 1 and 2, so no value satisfies it.",
    ),
    (False, "The root schema is false, so no value satisfies it."),
    (
        {
            "properties": {"nested": {"properties": {"x": False}, "required": ["x"]}},
            "required": ["nested"],
        },
        'The schema at /properties/nested requires property "x", but the schema at '
        "/properties/nested/properties/x is false, so no value satisfies it.",
    ),
    (
        {
            "type": "object",
            "properties": {"a": {}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        'The root schema requires property "b", but the schema at /additionalProperties is '
        "false, so no value satisfies it.",
    ),
    (
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        "The root schema has conflicting types (string versus integer), so no value satisfies it.",
    ),
    (
        {
            "properties": {
                "id": {"allOf": [{"type": ["string", "null"]}, {"type": ["integer", "boolean"]}]}
            },
            "required": ["id"],
        },
        "The schema at /properties/id has conflicting types (string or null versus integer or "
        "boolean), so no value satisfies it.",
    ),
    (
        {"type": "array", "minItems": 5, "maxItems": 2},
        "The root schema has minItems 5 above maxItems 2, so no value satisfies it.",
    ),
    (
        {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "minItems": 3},
        "The root schema has uniqueItems but only 2 distinct items could be generated where 3 "
        "are needed.",
    ),
    (
        {
            "type": "object",
            "properties": {"a": {}},
            "additionalProperties": False,
            "minProperties": 2,
        },
        "The root schema has minProperties 2 but only 1 properties could be generated.",
    ),
    (
        {"type": "string", "pattern": "^(?=a)b$"},
        'The root schema has pattern "^(?=a)b$" that could not be satisfied by any generated '
        "candidate.",
    ),
    (
        {"type": "string", "pattern": "^[0-9]{3}$", "minLength": 5},
        'The root schema has pattern "^[0-9]{3}$" that could not be satisfied within its '
        "length limits by any generated candidate.",
    ),
    (
        {"type": "string", "format": "uuid", "maxLength": 10},
        'The root schema has format "uuid" that could not be satisfied within its length limits.',
    ),
    (
        {"oneOf": [{"type": "integer"}, {"type": "integer"}]},
        "The root schema has oneOf but none of its 2 branches could be satisfied.",
    ),
]

# Every value would need a "child" that needs a "child" ...: no finite value exists.
ENDLESS_RECURSION = {
    "type": "object",
    "properties": {"child": {"$ref": "#"}},
    "required": ["child"],
}

HOSTILE = [
    (
        {"type": "array", "minItems": 10**9},
        "The root schema has minItems 1000000000 above the generator limit of 1000 items.",
    ),
    (
        {
            "properties": {"transcript": {"type": "string", "minLength": 10**9}},
            "required": ["transcript"],
        },
        "The schema at /properties/transcript has minLength 1000000000 above the generator "
        "limit of 10000 characters.",
    ),
    (
        {"type": "object", "minProperties": 10**9},
        "The root schema has minProperties 1000000000 above the generator limit of 1000 "
        "properties.",
    ),
    (
        {"type": "array", "contains": {"type": "integer"}, "minContains": 10**9},
        "The root schema has minContains 1000000000 above the generator limit of 1000 items.",
    ),
    (
        {"type": "array", "minItems": 1000, "items": {"type": "string", "minLength": 10_000}},
        "needs more than the generator limit of 1000000 characters in total.",
    ),
    (
        {
            "type": "array",
            "minItems": 1000,
            "items": {"type": "array", "minItems": 1000, "items": {"type": "integer"}},
        },
        "needs more than the generator limit of 20000 generation steps.",
    ),
]


def assert_one_sentence(message: str) -> None:
    assert SENTENCE.fullmatch(message), message


@pytest.mark.parametrize(("schema", "message"), UNSATISFIABLE)
def test_unsatisfiable_schemas(schema, message):
    with pytest.raises(Unsatisfiable) as caught:
        generate(schema, 0)
    assert str(caught.value) == message
    assert_one_sentence(str(caught.value))


def test_unsatisfiable_names_pointer_attribute():
    with pytest.raises(Unsatisfiable) as caught:
        generate(UNSATISFIABLE[0][0], 0)
    assert caught.value.pointer == "/properties/age"
    assert isinstance(caught.value, ValueError)


def test_infinite_required_recursion_hits_depth_limit():
    with pytest.raises(Unsatisfiable) as caught:
        generate(ENDLESS_RECURSION, 0)
    message = str(caught.value)
    assert_one_sentence(message)
    assert f"generator limit of {analysis.MAX_DEPTH} levels" in message


@pytest.mark.parametrize(("schema", "message_end"), HOSTILE)
def test_hostile_sizes_hit_limits(schema, message_end):
    with pytest.raises(Unsatisfiable) as caught:
        generate(schema, 0)
    assert str(caught.value).endswith(message_end)
    assert_one_sentence(str(caught.value))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "text"},
        {"minLength": -1},
        {"$ref": "#/$defs/missing"},
        {"$ref": "https://example.com/schema.json"},
        {"pattern": "(unclosed"},
    ],
)
def test_invalid_schemas_raise_plain_value_error(schema):
    with pytest.raises(ValueError) as caught:
        generate(schema, 0)
    assert not isinstance(caught.value, Unsatisfiable)
    assert str(caught.value).endswith(".")


# --- property: simple schemas never crash --------------------------------------------------

NUMBERS = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
POSITIVE = st.one_of(
    st.integers(1, 50),
    st.sampled_from([0.01, 0.1, 0.25, 0.5, 2.5, 1e-9]),
    st.floats(min_value=1e-6, max_value=1e6, exclude_min=True),
)
LENGTHS = st.integers(0, 60)
NUMERIC = st.fixed_dictionaries(
    {"type": st.sampled_from(["integer", "number"])},
    optional={
        "minimum": NUMBERS,
        "maximum": NUMBERS,
        "exclusiveMinimum": NUMBERS,
        "exclusiveMaximum": NUMBERS,
        "multipleOf": POSITIVE,
    },
)
STRING = st.fixed_dictionaries(
    {"type": st.just("string")},
    optional={
        "minLength": LENGTHS,
        "maxLength": LENGTHS,
        "pattern": st.sampled_from(
            [r"^[A-Z]{3}-\d{4}$", "^[a-z]+$", r"\d", "^(a|bc)*$", "x+y?", "^.{3,5}$", "[^a-z]"]
        ),
        "format": st.sampled_from(["date", "email", "uuid", "uri", "time", "unknown-format"]),
    },
)
SCALAR = st.one_of(
    NUMERIC,
    STRING,
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(
        lambda values: {"enum": values},
        st.lists(st.integers(0, 5) | st.text(max_size=3), max_size=4),
    ),
    st.builds(
        lambda types: {"type": types},
        st.lists(
            st.sampled_from(["null", "boolean", "integer", "number", "string"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
    ),
)
ARRAY = st.fixed_dictionaries(
    {"type": st.just("array"), "items": SCALAR},
    optional={
        "minItems": st.integers(0, 5),
        "maxItems": st.integers(0, 5),
        "uniqueItems": st.booleans(),
    },
)
OBJECT = st.builds(
    lambda properties, required_mask, extra: {
        "type": "object",
        "properties": properties,
        "required": [name for name, keep in zip(properties, required_mask, strict=False) if keep],
        **extra,
    },
    st.dictionaries(
        st.sampled_from(["summary", "score", "tags", "flag"]), SCALAR | ARRAY, max_size=4
    ),
    st.lists(st.booleans(), min_size=4, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "additionalProperties": st.booleans(),
            "minProperties": st.integers(0, 6),
            "maxProperties": st.integers(0, 6),
        },
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=st.one_of(SCALAR, ARRAY, OBJECT), seed=st.integers(0, 2**32))
def test_simple_schemas_validate_or_raise_unsatisfiable(schema, seed):
    try:
        value = generate(schema, seed)
    except Unsatisfiable as error:
        assert_one_sentence(str(error))
        return
    assert validates(schema, value)
    assert dumps(generate(schema, seed)) == dumps(value)
