"""Lowering condition trees to durable_rules JSON, checked without running durable_rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from bounded import run_python

from dealdesk.engines.durable.lowering import (
    MAX_ALTERNATIVES,
    CellError,
    ConditionCompiler,
    TooComplex,
    cell_interval,
    covers,
    parse_cell,
)
from dealdesk.rules.expressions import (
    MAX_DEPTH,
    Field,
    FieldType,
    Scope,
    evaluate,
    parse_expression,
)

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


def test_too_many_alternatives_is_an_error() -> None:
    clauses = " and ".join(f"(a < {i} or b < {i})" for i in range(8))  # 2^8 alternatives
    with pytest.raises(TooComplex, match=str(MAX_ALTERNATIVES)):
        compile_text(clauses)


SUBJECT = Field((1, 0), "a", "number")


@pytest.mark.parametrize(
    ("cell", "true_for", "false_for"),
    [
        ("< 0.2", ["0.1"], ["0.2", "0.3"]),
        ("[0.2..0.4)", ["0.2", "0.39"], ["0.4", "0.1"]),
        ("(0.2..0.4]", ["0.4"], ["0.2"]),
        ("not(< 0.2)", ["0.2"], ["0.1"]),
        ("1, 2", ["1", "2"], ["3"]),
        (0.25, ["0.25"], ["0.26"]),
        ("= 3", ["3"], ["4"]),
        ("!= 3", ["4"], ["3"]),
    ],
)
def test_unary_tests(cell: object, true_for: list[str], false_for: list[str]) -> None:
    test = parse_cell(cell, SUBJECT)
    assert test is not None
    for value in true_for:
        assert evaluate(test, {"a": Decimal(value)}) is True
    for value in false_for:
        assert evaluate(test, {"a": Decimal(value)}) is False
    assert evaluate(test, {}) is None  # a missing input fails every test but "-"


def test_any_cell_and_bad_cells() -> None:
    assert parse_cell("-", SUBJECT) is None
    with pytest.raises(CellError):
        parse_cell("not(-)", SUBJECT)
    with pytest.raises(CellError):
        parse_cell("< 1 +", SUBJECT)


def test_deeply_nested_cells_are_refused() -> None:
    parse_cell("not(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1), SUBJECT)
    with pytest.raises(CellError, match=f"nested too deeply \\(limit {MAX_DEPTH}\\)"):
        parse_cell("not(" * 1000 + "1" + ")" * 1000, SUBJECT)  # was a RecursionError


def test_a_huge_range_like_cell_is_read_in_linear_time() -> None:
    # the regular expression that read ranges took 16 s on 20,000 dots: in a child, bounded
    out = run_python(
        """
        from dealdesk.engines.durable.lowering import CellError, cell_interval, parse_cell
        from dealdesk.rules.expressions import Field

        cell = "[" + "." * 100_000
        try:
            parse_cell(cell, Field((1, 0), "a", "number"))
        except CellError:
            print("refused", cell_interval(cell))
        """,
        timeout=20,
    )
    assert out.split() == ["refused", "None"]


def test_cell_coverage_for_unreachable_rows() -> None:
    assert covers(cell_interval("-"), cell_interval("< 3"))
    assert covers(cell_interval("<= 0.2"), cell_interval("[0.1..0.2]"))
    assert not covers(cell_interval("< 0.2"), cell_interval("[0.1..0.2]"))
    assert covers(cell_interval("gold, silver"), cell_interval("gold"))
    assert not covers(cell_interval("gold"), cell_interval("gold, silver"))
    assert not covers(cell_interval("not(gold)"), cell_interval("silver"))  # unsure: no claim
