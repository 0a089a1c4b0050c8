"""Lowering condition trees to durable_rules JSON, checked without running durable_rules."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

from dealdesk.engines.durable.lowering import (
    LONG_TEXT,
    MAX_ALTERNATIVES,
    MAX_LISTED_VALUES,
    ConditionCompiler,
    TooComplex,
    alternatives,
    engine_value,
)
from dealdesk.rules.expressions import FieldType, Scope, parse_expression

SCOPE = Scope(
    {
        "id": FieldType("string"),
        "a": FieldType("number"),
        "b": FieldType("number"),
        "s": FieldType("string", ("p", "q")),
        "name": FieldType("string"),
        "lines": FieldType("array"),
        "lines[].k": FieldType("string", ("p", "q")),
        "lines[].v": FieldType("number"),
    }
)
ANCHOR = {"_a": 1}


def compile_text(text: str) -> tuple[list[dict], ConditionCompiler]:
    compiler = ConditionCompiler()
    return compiler.compile(parse_expression(text, SCOPE)), compiler


def bodies(text: str) -> list[list[dict]]:
    """The atoms of each alternative, without the anchor."""
    result = []
    for rule in compile_text(text)[0]:
        (pattern,) = rule["all"]
        atoms = pattern["m"]["$and"]
        assert atoms[0] == ANCHOR
        result.append(atoms[1:])
    return result


def test_comparisons_are_guarded_and_numbers_are_floats() -> None:
    assert bodies("a < 1") == [[{"$ex": {"a": 1}}, {"$lt": {"a": 1.0}}]]
    assert bodies("a == b") == [[{"$ex": {"a": 1}}, {"$ex": {"b": 1}}, {"a": {"$m": "b"}}]]
    assert bodies("1 > a") == [[{"$ex": {"a": 1}}, {"$lt": {"a": 1.0}}]]


def test_not_is_pushed_to_the_leaves_keeping_unknown_unknown() -> None:
    assert bodies("not a < 1") == [[{"$ex": {"a": 1}}, {"$gte": {"a": 1.0}}]]
    assert bodies('not (a < 1 or s == "p")') == [
        [{"$ex": {"a": 1}}, {"$gte": {"a": 1.0}}, {"$ex": {"s": 1}}, {"$neq": {"s": "p"}}]
    ]
    assert bodies("not exists(a)") == [[{"$nex": {"a": 1}}]]


def test_or_becomes_one_durable_rule_per_alternative() -> None:
    assert bodies('a < 1 or s in ["p", "q"]') == [
        [{"$ex": {"a": 1}}, {"$lt": {"a": 1.0}}],
        [{"$ex": {"s": 1}}, {"s": "p"}],
        [{"$ex": {"s": 1}}, {"s": "q"}],
    ]


def test_contradictions_and_duplicates_are_dropped() -> None:
    assert bodies("exists(a) and not exists(a)") == []
    assert bodies("a < 1 and a < 1") == [[{"$ex": {"a": 1}}, {"$lt": {"a": 1.0}}]]


def test_any_over_a_disjunction_is_split_and_all_over_one_is_computed() -> None:
    assert bodies('any(line.k == "p" or line.v > 2 for line in lines)') == [
        [{"$iany": {"lines": {"$and": [{"$ex": {"$i.k": 1}}, {"$i.k": "p"}]}}}],
        [{"$iany": {"lines": {"$and": [{"$ex": {"$i.v": 1}}, {"$gt": {"$i.v": 2.0}}]}}}],
    ]
    rules, compiler = compile_text('all(line.k == "p" or line.v > 2 for line in lines)')
    assert len(rules) == 1
    fact = compiler.plan.build({"lines": [{"k": "p"}, {"k": "q", "v": Decimal(3)}, {"k": "q"}]})
    flags = [
        row[next(k for k in row if k.startswith("_x") and isinstance(row[k], bool))]
        for row in fact["lines"]
    ]
    assert flags == [True, True, False]


def test_not_any_is_missing_or_empty_or_all_fail() -> None:
    rules, compiler = compile_text('not any(line.k == "p" for line in lines)')
    atoms = [r["all"][0]["m"]["$and"][1] for r in rules]
    assert atoms[0] == {"$nex": {"lines": 1}}
    count = next(iter(atoms[1]))
    assert atoms[1] == {count: 0.0}
    assert compiler.plan.build({"lines": [{"k": "q"}]})[count] == 1.0


def test_arithmetic_is_computed_exactly_into_synthetic_fields() -> None:
    rules, compiler = compile_text("a < b - 0.05")
    # no $add/$sub/$mul/$div reaches durable: no float drift, no integer division by zero
    assert not any(op in str(rules) for op in ("$add", "$sub", "$mul", "$div"))
    (atoms,) = [r["all"][0]["m"]["$and"][1:] for r in rules]
    synthetic = atoms[-1]["$lt"]["a"]["$m"]
    assert synthetic.startswith("_x")
    fact = compiler.plan.build({"a": Decimal("0.35"), "b": Decimal("0.40")})
    assert fact[synthetic] == 0.35  # exact: 0.40 - 0.05, not 0.35000000000000003
    assert synthetic not in compiler.plan.build({"a": 1, "b": None})  # unknown stays absent
    _, compiler = compile_text("a / b > 1")
    assert [k for k in compiler.plan.build({"a": 1, "b": 0}) if k.startswith("_x")] == []


def test_matches_is_computed_into_the_fact() -> None:
    rules, compiler = compile_text(r'matches(name, "^A\d+$")')
    assert compiler.plan.build({"name": "A12"})["_x0"] is True
    assert compiler.plan.build({"name": "A12b"})["_x0"] is False
    assert "_x0" not in compiler.plan.build({})


def test_the_fact_holds_only_what_conditions_read_and_moves_id() -> None:
    _, compiler = compile_text('id == "D-1" and a > 0')
    fact = compiler.plan.build({"id": "D-1", "a": 2, "b": 3, "name": "x", "extra": {"y": 1}})
    assert fact == {"_a": 1, "_id": "D-1", "a": 2.0}


def synthetic_rule(rules: list[dict]) -> str:
    """The synthetic boolean that the only rule of ``rules`` tests to be true."""
    (rule,) = rules
    atoms = rule["all"][0]["m"]["$and"]
    assert atoms[0] == ANCHOR and len(atoms) == 3
    name = next(iter(atoms[1]["$ex"]))
    assert atoms[2] == {name: True} and name.startswith("_x")
    return name


def test_a_condition_with_too_many_alternatives_is_computed_in_python() -> None:
    text = " and ".join(f"(a < {i} or b < {i})" for i in range(8))  # 2^8 alternatives
    formula = ConditionCompiler().lower(parse_expression(text, SCOPE))
    with pytest.raises(TooComplex, match=str(MAX_ALTERNATIVES)):
        alternatives(formula)
    rules, compiler = compile_text(text)
    name = synthetic_rule(rules)
    # what the abandoned lowering read is not in the fact: only the one synthetic value
    assert compiler.plan.build({"a": -1, "b": 9}) == {"_a": 1, name: True}
    assert compiler.plan.build({"a": 9, "b": 9})[name] is False
    assert name not in compiler.plan.build({"b": 9})  # unknown (a missing) stays unknown


def test_a_rule_reading_more_than_a_fact_holds_is_computed_in_python() -> None:
    scope = Scope({f"p{i}": FieldType("number") for i in range(300)})
    text = " and ".join(f"p{i} > 0" for i in range(300))
    compiler = ConditionCompiler()
    name = synthetic_rule(compiler.compile(parse_expression(text, scope)))
    assert compiler.plan.build({f"p{i}": 1 for i in range(300)}) == {"_a": 1, name: True}


@pytest.mark.parametrize("negated", [False, True])
def test_a_long_in_list_is_one_synthetic_membership_field(negated: bool) -> None:
    values = ", ".join(f'"v{i}"' for i in range(1000))
    rules, compiler = compile_text(f"name {'not in' if negated else 'in'} [{values}]")
    name = synthetic_rule(rules)
    assert compiler.plan.build({"name": "v999"})[name] is not negated
    assert compiler.plan.build({"name": "w"})[name] is negated
    assert name not in compiler.plan.build({})  # a missing operand is unknown
    # not (x in list) is true only where the membership is known to be false
    rules, _ = compile_text(f"not (name {'not in' if negated else 'in'} [{values}])")
    (rule,) = rules
    assert rule["all"][0]["m"]["$and"][2] == {name: False}


def test_a_short_in_list_stays_one_durable_rule_per_value() -> None:
    values = ", ".join(str(i) for i in range(MAX_LISTED_VALUES))
    assert len(compile_text(f"a in [{values}]")[0]) == MAX_LISTED_VALUES
    assert len(compile_text(f"a in [{values}, 99]")[0]) == 1


def test_a_long_in_list_inside_any_is_computed_per_element() -> None:
    values = ", ".join(str(i) for i in range(100))
    rules, compiler = compile_text(f"any(line.v in [{values}] for line in lines)")
    ((atom,),) = [r["all"][0]["m"]["$and"][1:] for r in rules]
    body = atom["$iany"]["lines"]["$and"]
    name = next(iter(body[0]["$ex"])).removeprefix("$i.")
    lines = [{"v": Decimal(5)}, {"v": Decimal(500)}, {}]
    assert [row.get(name) for row in compiler.plan.build({"lines": lines})["lines"]] == [
        True,
        False,
        None,
    ]


@pytest.mark.parametrize(
    "text",
    ["x" * 70_000, "\U0001f600" * 6_000, "abc\ud83d", LONG_TEXT + "0" * 64],
    ids=["long", "long-escaped", "lone-surrogate", "looks-like-a-stand-in"],
)
def test_text_durable_cannot_compare_exactly_goes_in_as_a_digest(text: str) -> None:
    value = engine_value(text)
    assert value != text and value.startswith(LONG_TEXT) and len(value) < 100
    assert engine_value(text) == value
    assert engine_value(text[:-1] + "!") != value
    assert engine_value("\U0001f600" * 5_000) == "\U0001f600" * 5_000  # short enough: as it is


def test_numbers_beyond_a_float_keep_their_order() -> None:
    assert engine_value(Decimal("1e400")) == engine_value(10**400) == sys.float_info.max
    assert engine_value(Decimal("-1e400")) == -sys.float_info.max
    assert engine_value(Decimal("1e-400")) == 0.0
    rules, _ = compile_text("a < 1e400")
    assert rules[0]["all"][0]["m"]["$and"][2] == {"$lt": {"a": sys.float_info.max}}
