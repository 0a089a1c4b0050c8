"""Property: durable_rules, running a compiled condition, agrees with the condition's direct
three-valued meaning (SPEC §3) on random deals — missing values, zero divisors, empty lists and
exact decimal boundaries included."""

from __future__ import annotations

from expression_strategies import SCOPE, condition, deal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.engines.durable.driver import get_driver
from dealdesk.engines.durable.lowering import ConditionCompiler, definition_digest
from dealdesk.rules.expressions import parse_expression
from dealdesk.rules.meaning import evaluate


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition, st.lists(deal, min_size=1, max_size=6))
def test_durable_agrees_with_direct_meaning(text: str, deals: list[dict]) -> None:
    expr = parse_expression(text, SCOPE)
    compiler = ConditionCompiler()
    definition = {f"r|{i}": body for i, body in enumerate(compiler.compile(expr))}
    name = f"prop@{definition_digest(definition)}"
    driver = get_driver()
    if definition:
        driver.register(name, definition)
    for data in deals:
        fired = bool(definition) and bool(driver.match(name, compiler.plan.build(data)))
        expected = evaluate(expr, data) is True
        assert fired == expected, (text, data, compiler.plan.build(data), definition)
