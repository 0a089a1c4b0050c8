"""The durable engine's fast paths, each pinned to the slow way it replaced: the fact built from
compiled projections and closures, the fact written by orjson, the fired rules put in order by
precomputed places, and every first stratum that reads no output matched in one round trip."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from expression_strategies import SCOPE, condition, deal
from helpers import deal as base_deal
from helpers import evaluator, write_rulesets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk import app
from dealdesk.engines.durable.driver import _encode, encode_fact
from dealdesk.engines.durable.engine import DurableEngine
from dealdesk.engines.durable.limits import MAX_STRING_BYTES
from dealdesk.engines.durable.lowering import (
    ANCHOR,
    LONG_TEXT,
    TRUE,
    ConditionCompiler,
    FactPlan,
    _put,
    _tree,
    engine_value,
    fact_name,
    holds,
    plain_number,
)
from dealdesk.evaluate import evaluation_order
from dealdesk.rules.expressions import Field, FieldType, Scope, parse_expression
from dealdesk.rules.meaning import evaluate, lookup

# -- the fact: FactPlan.build against the way it was built before (tree walk, evaluate) --------


def _reference_project(data: Mapping[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        value = data.get(key)
        if value is None:
            continue
        if sub is None:
            out[key] = engine_value(value)
        elif isinstance(value, Mapping):
            out[key] = _reference_project(value, sub)
    return out


def _reference_synthetic(target: dict[str, Any], synthetic: Any, data: Any, item: Any) -> None:
    expr = synthetic.expr
    if synthetic.kind == "count":
        elements = lookup(data, expr.path) if isinstance(expr, Field) else None
        value = float(len(elements)) if isinstance(elements, list) else None
    else:
        value = evaluate(expr, data, item if isinstance(item, Mapping) else None)
    if value is not None:
        target[synthetic.name] = engine_value(value)


def reference_build(plan: FactPlan, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fact as FactPlan.build made it before it was compiled (dealdesk 0.1.0's way)."""
    fact = _reference_project(data, _tree(plan.paths))
    for reserved in ("id", "sid"):
        if reserved in fact:
            fact[f"_{reserved}"] = fact.pop(reserved)
    fact[ANCHOR] = 1
    for items, names in sorted(plan.item_paths.items()):
        mine = [s for s in plan.synthetics if s.items == items]
        elements = lookup(data, items)
        if not isinstance(elements, list):
            continue
        projected = []
        for element in elements:
            row = _reference_project(element, _tree(names)) if isinstance(element, Mapping) else {}
            for synthetic in mine:
                if synthetic.kind != "formula":
                    _reference_synthetic(row, synthetic, data, element)
            for synthetic in mine:
                if synthetic.kind == "formula":
                    row[synthetic.name] = holds(synthetic.formula or TRUE, row)
            projected.append(row)
        _put(fact, fact_name(items), projected)
    for synthetic in plan.synthetics:
        if synthetic.items is None:
            _reference_synthetic(fact, synthetic, data, None)
    return fact


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(condition, min_size=1, max_size=4), st.lists(deal, min_size=1, max_size=4))
def test_the_fact_is_built_as_before(texts: list[str], deals: list[dict[str, Any]]) -> None:
    compiler = ConditionCompiler()  # one per stratum: the conditions share one plan
    for text in texts:
        compiler.compile(parse_expression(text, SCOPE))
    for data in deals:
        built, expected = compiler.plan.build(data), reference_build(compiler.plan, data)
        assert built == expected
        assert _encode(built) == _encode(expected)  # the same keys in the same order
        fact, plain = compiler.plan.build_checked(data)
        assert fact == built and plain == all(plain_number(n) for n in numbers(fact))
        assert encode_fact(fact, plain) == _encode(fact)


def numbers(value: Any) -> list[float]:
    """Every float in a fact."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if type(value) is float else []


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1e400"),
        Decimal("-1e400"),
        Decimal("NaN"),
        float("inf"),
        10**400,
        7,
        True,
        "x" * 70_000,
        "x" * (MAX_STRING_BYTES // 12),  # the longest text durable compares whatever it holds
        "x" * (MAX_STRING_BYTES // 12 + 1),
        LONG_TEXT + "x",
        "Zürich",
        "abc\ud83d",
        {"nested": 1},
        [1, 2],
    ],
    ids=repr,
)
def test_odd_values_are_projected_as_engine_value_gives_them(value: Any) -> None:
    scope = Scope({**SCOPE.fields, "id": FieldType("string")})
    compiler = ConditionCompiler()
    compiler.compile(parse_expression("exists(a) and exists(id)", scope))
    data = {"a": value, "id": value}
    built, expected = compiler.plan.build(data), reference_build(compiler.plan, data)
    assert set(built) == set(expected) == {"_id", "a", ANCHOR}
    assert compiler.plan.build_checked(data)[1] == all(plain_number(n) for n in numbers(built))
    for key in built:  # NaN is never equal to itself: compare what durable would read
        assert repr(built[key]) == repr(expected[key]), key
    assert list(built) == ["a", "_id", ANCHOR]


# -- the fact's text: orjson where it writes what json writes -----------------------------------


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.floats(min_value=-1e-3, max_value=1e-3),  # where orjson writes 0.00001, json 1e-05
        st.floats(min_value=1e15, max_value=1e17),  # where both turn to an exponent
        st.text(),
        st.sampled_from(["\x7f", "é", "\u2028", "null", "1e+16", ":0.00001", "\ud800"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_encode_fact_writes_what_encode_writes(fact: dict[str, Any]) -> None:
    try:
        expected = _encode(fact)
    except (TypeError, ValueError) as error:
        with pytest.raises(type(error)):
            encode_fact(fact)
        return
    assert encode_fact(fact) == expected


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.floats(-1e-3, 1e-3))
        | st.floats(1e15, 1e17),
        max_size=8,
    )
)
def test_plain_numbers_are_written_by_orjson_as_json_writes_them(values: list[float]) -> None:
    fact = {f"x{i}": v for i, v in enumerate(values)}
    plain = all(plain_number(v) for v in values)
    assert encode_fact(fact, plain) == _encode(fact)
    if plain:
        assert encode_fact(fact, plain) == orjson.dumps(fact).decode()


@pytest.mark.parametrize(
    "number",
    [1e-05, 5.4e-05, 9.99e-05, 0.0001, 1e-07, 5e-324, 1e15, 9999999999999998.0, 1e16, 1e22]
    + [-0.0, 0.0, 1.0, 0.1, 262488.0, 0.30000000000000004, 1.7976931348623157e308],
)
def test_numbers_are_written_as_durable_reads_them(number: float) -> None:
    fact = {"x": number, "l": [{"y": -number}]}
    assert encode_fact(fact) == _encode(fact)
    assert encode_fact(fact, plain_number(number)) == _encode(fact)


def test_what_is_not_json_fails_as_before() -> None:
    for fact in ({"x": math.nan}, {"x": math.inf}, {"x": object()}, {1: 2j}):
        with pytest.raises((TypeError, ValueError)):
            _encode(fact)
        with pytest.raises((TypeError, ValueError)):
            encode_fact(fact)


# -- the fired rules: once each, in evaluation order ------------------------------------------


@pytest.fixture(scope="module")
def house() -> DurableEngine:
    engine = app.build(autoload=False, engine="durable").pipeline.engine
    assert isinstance(engine, DurableEngine)
    return engine


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fired_rules_come_once_in_evaluation_order(
    house: DurableEngine, data: st.DataObject
) -> None:
    assert house.first is not None
    strata = [house.first, *(s for strata in house.strata.values() for s in strata)]
    stratum = data.draw(st.sampled_from(strata))
    names = list(stratum.rules)
    fired = data.draw(st.lists(st.sampled_from(names), max_size=3 * len(names)))
    # what DurableEngine._match did before: dedupe by rule key, sort by evaluation order
    matched = {stratum.rules[n].key: stratum.rules[n] for n in fired}
    expected = sorted(matched.values(), key=evaluation_order)
    found = stratum.fired(fired)
    assert sorted(r.key for r in found) == sorted(matched)
    # each policy's rules in its order (rules of two policies may tie: the shared first stratum
    # hands each policy its own)
    for policy in {r.ruleset.policy for r in expected}:
        assert [r for r in found if r.ruleset.policy == policy] == [
            r for r in expected if r.ruleset.policy == policy
        ]


# -- first strata matched together: the conditions, not the actions, decide ------------------


def test_first_strata_whose_conditions_read_no_output_are_matched_together(
    house: DurableEngine,
) -> None:
    # every house policy's first stratum has an action or a `set` reading outputs, yet its
    # conditions read none: all of them go in the one shared round trip
    assert any(reads[0] for reads in house.runner.reads_outputs.values())
    assert house.together == list(house.policy_set.policies)
    assert house.first is not None
    assert len(house.first.rules) == sum(len(s[0].rules) for s in house.strata.values())


def test_a_first_stratum_reading_an_output_is_matched_on_its_own(tmp_path: Path) -> None:
    write_rulesets(
        tmp_path / "rs",
        r="""
        ruleset: r
        policy: test
        version: "1"
        outputs: {level: {combine: max, default: 1}}
        rules:
          - id: DEFAULT-READ
            when: outputs.level >= 1
            then: {flag: "read the default"}
        """,
    )
    pipeline = evaluator(tmp_path / "rs", "durable")
    engine = pipeline.engine
    assert isinstance(engine, DurableEngine)
    assert engine.together == [] and engine.first is None
    record = pipeline.evaluate(base_deal())
    assert record["errors"] == []
    assert [f["message"] for f in record["flags"]] == ["read the default"]
