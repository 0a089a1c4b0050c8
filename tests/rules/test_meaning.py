"""Property: the closures ``compile_expr`` builds (the native engine, and every engine's
``set`` values) give exactly the direct three-valued meaning of SPEC §3, on random conditions
and deals — missing values and groups, zero divisors, empty lists, exact boundaries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from expression_strategies import SCOPE, condition, deal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.rules.expressions import FieldType, Scope, parse_expression
from dealdesk.rules.meaning import compile_expr, evaluate


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition, st.lists(deal, min_size=1, max_size=6))
def test_closures_agree_with_direct_meaning(text: str, deals: list[dict]) -> None:
    expr = parse_expression(text, SCOPE)
    compiled = compile_expr(expr)
    for data in deals:
        assert compiled(data, None) == evaluate(expr, data), (text, data)
        assert type(compiled(data, None)) is type(evaluate(expr, data)), (text, data)


@pytest.mark.parametrize(
    ("number", "places", "rounded"),
    [
        ("0.12345", 2, Decimal("0.12")),
        ("0.125", 2, Decimal("0.13")),  # half up
        ("1250", -2, Decimal("1.3E+3")),
        ("123456789012345678901234567", 12, Decimal("123456789012345678901234567.000000000000")),
        # places a deal gives that no rounding takes: unknown, as a division by zero is
        ("0.3", 999999999, None),
        ("0.3", 13, None),
        ("0.3", "1.5", None),
    ],
)
def test_round_takes_whole_places_in_range(number: str, places: object, rounded: object) -> None:
    scope = Scope({"x": FieldType("number"), "n": FieldType("number")})
    expr = parse_expression("round(x, n)", scope, value=True)
    data = {"x": Decimal(number), "n": Decimal(str(places))}
    assert evaluate(expr, data) == rounded
    assert compile_expr(expr)(data, None) == rounded
