"""Property: the closures ``compile_expr`` builds (the native engine, and every engine's
``set`` values) give exactly the direct three-valued meaning of SPEC §3, on random conditions
and deals — missing values and groups, zero divisors, empty lists, exact boundaries."""

from __future__ import annotations

from expression_strategies import SCOPE, condition, deal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.rules.expressions import parse_expression
from dealdesk.rules.meaning import compile_expr, evaluate


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition, st.lists(deal, min_size=1, max_size=6))
def test_closures_agree_with_direct_meaning(text: str, deals: list[dict]) -> None:
    expr = parse_expression(text, SCOPE)
    compiled = compile_expr(expr)
    for data in deals:
        assert compiled(data, None) == evaluate(expr, data), (text, data)
        assert type(compiled(data, None)) is type(evaluate(expr, data)), (text, data)
