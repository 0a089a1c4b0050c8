"""The condition language: parsing, checking and direct three-valued meaning (SPEC §3)."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from bounded import run_python

from dealdesk.engines.durable.lowering import ConditionCompiler
from dealdesk.rules.expressions import (
    MAX_DEPTH,
    Compare,
    ExpressionError,
    FieldType,
    Quantifier,
    Scope,
    output_reads,
    parse_expression,
)
from dealdesk.rules.meaning import evaluate

SCOPE = Scope(
    {
        "margin": FieldType("number"),
        "risk_offer": FieldType("boolean"),
        "customer": FieldType("object"),
        "customer.region": FieldType("string", ("us-west", "us-east", "emea")),
        "customer.name": FieldType("string"),
        "partner": FieldType("object"),
        "partner.tier": FieldType("string", ("select", "gold")),
        "totals.product": FieldType("number"),
        "totals.contract": FieldType("number"),
        "lines": FieldType("array"),
        "lines[].category": FieldType("string", ("hardware", "support")),
        "lines[].margin": FieldType("number"),
        "lines[].sku": FieldType("string"),
        "outputs.margin_floor": FieldType("number"),
    }
)


def cond(text: str) -> object:
    return parse_expression(text, SCOPE)


def error(text: str, **kwargs: object) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, SCOPE, **kwargs)  # type: ignore[arg-type]
    return info.value


DEAL = {
    "margin": Decimal("0.36"),
    "risk_offer": True,
    "customer": {"region": "us-west", "name": "Acme"},
    "totals": {"product": Decimal("600000"), "contract": Decimal("0")},
    "lines": [{"category": "hardware", "margin": Decimal("0.25"), "sku": "EDGE-1"}],
    "outputs": {"margin_floor": Decimal("0.35")},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("risk_offer and totals.product >= 500000", True),
        ("margin < outputs.margin_floor", False),
        ("margin < outputs.margin_floor + 0.05", True),
        ("0.3 < margin < 0.4", True),
        ('customer.region in ["us-west", "emea"]', True),
        ('customer.region not in ["us-west", "emea"]', False),
        ('partner.tier != "select"', None),  # no partner: unknown, not true
        ('not partner.tier != "select"', None),
        ('exists(partner) and partner.tier != "select"', False),
        ("not exists(partner)", True),
        ("totals.product / totals.contract > 1", None),  # division by zero is unknown
        ('any(line.category == "hardware" and line.margin < 0.30 for line in lines)', True),
        ('all(line.category == "support" for line in lines)', False),
        ('matches(customer.name, "^Ac")', True),
        ('partner.tier == "gold" or risk_offer', True),
        ('partner.tier == "gold" and risk_offer', None),
        ('partner.tier == "gold" and not risk_offer', False),
    ],
)
def test_three_valued_meaning(text: str, expected: bool | None) -> None:
    assert evaluate(cond(text), DEAL) is expected  # type: ignore[arg-type]


def test_quantifiers_over_missing_or_empty_lists_are_false() -> None:
    for lines in ([], None):
        deal = {**DEAL, "lines": lines}
        assert evaluate(cond('all(line.category == "hardware" for line in lines)'), deal) is False  # type: ignore[arg-type]
        assert evaluate(cond('any(line.category == "hardware" for line in lines)'), deal) is False  # type: ignore[arg-type]
        assert (
            evaluate(cond('not any(line.category == "hardware" for line in lines)'), deal) is True
        )  # type: ignore[arg-type]


def test_exact_decimal_arithmetic_in_values() -> None:
    value = parse_expression("max(0, 1 - totals.product / (totals.product * 2))", SCOPE, value=True)
    assert evaluate(value, DEAL) == Decimal("0.5")
    assert evaluate(parse_expression("round(margin * 3, 2)", SCOPE, value=True), DEAL) == Decimal(
        "1.08"
    )
    assert evaluate(
        parse_expression("sum(line.margin for line in lines)", SCOPE, value=True), DEAL
    ) == Decimal("0.25")


def test_bare_boolean_path_is_a_comparison_with_true() -> None:
    tree = cond("risk_offer")
    assert isinstance(tree, Compare) and tree.op == "=="


def test_output_reads() -> None:
    assert output_reads(cond("margin < outputs.margin_floor - 0.05")) == {"margin_floor"}  # type: ignore[arg-type]
    assert output_reads(cond("margin < 0.3")) == set()  # type: ignore[arg-type]


def test_quantifier_tree() -> None:
    tree = cond('any(line.category == "support" for line in lines)')
    assert isinstance(tree, Quantifier) and tree.kind == "any" and tree.items is not None
    assert tree.items.path == "lines"


@pytest.mark.parametrize(
    ("text", "fragment", "pos"),
    [
        ("margin <", "invalid syntax", (1, 8)),
        ("__import__('os')", "not allowed", (1, 0)),
        ("margin.__class__", "not allowed", (1, 0)),
        ("lambda: 1", "lambda", (1, 0)),
        ("[x for x in lines]", "list comprehension", (1, 0)),
        ("lines[0].margin > 1", "subscripts", (1, 0)),
        ("'abc'.upper() == 'ABC'", "only exists()", (1, 0)),
        ("margin > 'abc'", "compares numbers", (1, 9)),
        ("customer.region == 5", "cannot compare", (1, 19)),
        ("max(margin, 1) > 0", "cannot be used in a condition", (1, 0)),
        ("totals.product", "expected a condition", (1, 0)),
        ("risk_offer and\n  margn > 1", "unknown path 'margn'", (2, 2)),
        ('matches(customer.name, "(")', "invalid regular expression", (1, 23)),
        ("any(line.margin > totals.product for line in lines)", "outside the loop", (1, 18)),
        ("margin if risk_offer else 0", "conditional expression", (1, 0)),
        (
            'lines.category == "support"',
            "'lines' is a list; test its elements with any() or all(), "
            "like any(line.category == ... for line in lines)",
            (1, 0),
        ),
        ("partner.tier == None", "exists(path)", (1, 16)),
        # columns count characters, as editors do, not the UTF-8 bytes ast counts
        ('customer.name == "日本" and partner.tier == "gld"', "not a value", (1, 42)),
        ('customer.name == "日本" and\n  "日本" == customer.name and margn > 1', "margn", (2, 28)),
        ('customer.name == "日本" and margin > "x"', "compares numbers", (1, 35)),
    ],
)
def test_compile_errors_are_located(text: str, fragment: str, pos: tuple[int, int]) -> None:
    err = error(text)
    assert fragment in err.message
    assert err.pos == pos


def test_a_loop_over_numbers_is_not_told_to_compare_their_fields() -> None:
    scope = Scope(
        {
            "billing.requested_split": FieldType("array"),
            "billing.requested_split[]": FieldType("number"),
            "lines": FieldType("array"),
            "lines[]": FieldType("object"),
        }
    )
    with pytest.raises(ExpressionError) as info:
        parse_expression("any(part > 35 for part in billing.requested_split)", scope)
    assert info.value.message.startswith(
        "the elements of 'billing.requested_split' are numbers; any()/all() compare fields"
    )
    assert info.value.pos == (1, 4)
    with pytest.raises(ExpressionError) as info:
        parse_expression("any(line > 3 for line in lines)", scope)
    assert info.value.message == "compare a field of 'line', like line.category"


def test_matches_runs_in_linear_time_in_evaluate_and_in_the_durable_fact() -> None:
    # (a+)+$ backtracks 2**40 times on Python's re; in a child, so a regression fails, not hangs
    out = run_python(
        """
        from dealdesk.engines.durable.lowering import ConditionCompiler
        from dealdesk.rules.expressions import FieldType, Scope, parse_expression
        from dealdesk.rules.meaning import evaluate

        scope = Scope({"customer.name": FieldType("string")})
        expr = parse_expression('matches(customer.name, "(a+)+$")', scope)
        deal = {"customer": {"name": "a" * 40 + "!"}}
        compiler = ConditionCompiler()
        compiler.compile(expr)
        print(evaluate(expr, deal), compiler.plan.build(deal)["_x0"])
        """,
        timeout=30,
    )
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("pattern", "detail"),
    [
        (r"(a)\1", r"invalid escape sequence: \1"),
        ("(?=a)b", "invalid perl operator: (?="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        ("a{1001}", "invalid repetition size"),
    ],
)
def test_a_pattern_re2_cannot_run_is_a_located_error_naming_it(pattern: str, detail: str) -> None:
    err = error(f'matches(customer.name, r"{pattern}")')
    assert err.message.startswith(f"invalid regular expression {pattern!r}: {detail}")
    assert "no backreferences or lookaround" in err.message
    assert err.pos == (1, 23)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("cm", "Acme", True),  # unanchored, like re.search
        ("^cm", "Acme", False),
        ("(?i)^acme$", "ACME", True),
        ("^EDGE-\\d+$", "EDGE-12", True),
        ("x", "\ud800x", True),  # a lone surrogate (valid in JSON) does not raise
        ("x", None, None),
    ],
)
def test_matches_searches_the_text(pattern: str, name: str | None, expected: bool | None) -> None:
    deal = {"customer": {"name": name}}
    assert evaluate(cond(f'matches(customer.name, "{pattern}")'), deal) is expected


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("not " * 1000 + "risk_offer", (1, 4 * MAX_DEPTH)),  # was "internal error: RecursionError"
        ("margin > " + "-" * 1000 + "1", (1, 9 + MAX_DEPTH - 1)),
        ("margin > " + " + ".join(["margin"] * 500), (1, 9)),
        ("(" * 1000 + "risk_offer" + ")" * 1000, (1, 199)),  # Python's parser stops at 200
        # ast.parse: RecursionError up to 3.12 (located at the start); 3.13 parses it, and the
        # depth check locates the node
        ("margin > " + "+".join(["1"] * 5000), (1, 0) if sys.version_info < (3, 13) else (1, 9)),
        ("not " * 100_000 + "risk_offer", (1, 0)),  # ast.parse: MemoryError
    ],
)
def test_deep_nesting_is_a_located_error(text: str, pos: tuple[int, int]) -> None:
    err = error(text)
    assert err.message == f"expression nested too deeply (limit {MAX_DEPTH})"
    assert err.pos == pos


def test_nesting_at_the_limit_compiles_lowers_and_evaluates() -> None:
    text = "not " * (MAX_DEPTH - 1) + "risk_offer"
    assert "too deeply" in error("not " + text).message
    tree = cond(text)
    assert evaluate(tree, DEAL) is False  # risk_offer, negated 99 times
    ConditionCompiler().compile(tree)
    value = parse_expression(" + ".join(["margin"] * MAX_DEPTH), SCOPE, value=True)
    assert evaluate(value, DEAL) == Decimal("0.36") * MAX_DEPTH


def test_did_you_mean_for_paths_and_enum_values() -> None:
    assert error("customer.regoin == 'emea'").suggestion == "customer.region"
    err = error('customer.region == "us-wst"')
    assert "one of: us-west, us-east, emea" in err.message
    assert err.suggestion == "us-west"
    assert error("any(line.categroy == 'support' for line in lines)").suggestion == "line.category"


@pytest.mark.parametrize(
    ("literal", "exact"),
    [("999999999999999.98", "999999999999999.98"), ("0.1", "0.1"), ("1_000.5", "1000.5")],
)
def test_number_literals_keep_every_digit_written(literal: str, exact: str) -> None:
    # read through a float, 999999999999999.98 was 1E+15: the boundary moved by 0.02
    tree = cond(f"totals.contract > {literal}")
    assert tree.right.value == Decimal(exact)  # type: ignore[attr-defined]
    deal = {"totals": {"contract": Decimal("999999999999999.99")}}
    assert evaluate(cond("totals.contract > 999999999999999.98"), deal) is True
