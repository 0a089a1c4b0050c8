"""The native engine's generated ``match`` functions: the direct three-valued meaning exactly, on
trees the parser would refuse too (untyped values of any kind), and no ruleset text in the
source it compiles."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from expression_strategies import SCOPE, condition, deal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.engines.native import _INLINE_DEPTH, compile_stratum
from dealdesk.rules.expressions import (
    And,
    Compare,
    Const,
    Exists,
    Expr,
    Field,
    InList,
    Matches,
    Not,
    Or,
    parse_expression,
)
from dealdesk.rules.meaning import evaluate

POS = (1, 0)

# values of every kind a path may hold at run time, typed or not (a plugin fact of type any)
VALUES = [None, True, False, 0, 1, 2, Decimal("0"), Decimal("1"), Decimal("0.5"), "", "p", "1"]
value = st.sampled_from(VALUES)
path = st.sampled_from(["a", "b", "g.n", "g.t", "g.h.i", "missing.x"])
field = path.map(lambda p: Field(POS, path=p))
constant = value.map(lambda v: Const(POS, value=v))
leaf = st.one_of(field, constant)
atom = st.one_of(
    leaf,
    st.builds(
        lambda op, left, right: Compare(POS, op=op, left=left, right=right),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        leaf,
        leaf,
    ),
    st.builds(
        lambda operand, values, negated: InList(
            POS, operand=operand, values=tuple(Const(POS, value=v) for v in values), negated=negated
        ),
        field,
        st.lists(st.sampled_from([v for v in VALUES if v is not None]), min_size=1, max_size=4),
        st.booleans(),
    ),
    field.map(lambda f: Exists(POS, target=f)),
    field.map(lambda f: Matches(POS, target=f, pattern="^p")),
)
tree = st.recursive(
    atom,
    lambda inner: st.one_of(
        inner.map(lambda x: Not(POS, operand=x)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(POS, operands=tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(POS, operands=tuple(xs))),
    ),
    max_leaves=8,
)
group = st.one_of(
    st.none(),
    st.just("text"),
    st.just([1, 2]),
    st.fixed_dictionaries({}, optional={"n": value, "t": value, "h": st.just({"i": 1})}),
)
data = st.fixed_dictionaries({}, optional={"a": value, "b": value, "g": group})


def rules_of(conditions: list[Expr]) -> list[Any]:
    return [SimpleNamespace(condition=c, index=i) for i, c in enumerate(conditions)]


def matched(conditions: list[Expr], view: dict[str, Any]) -> list[int]:
    match = compile_stratum(rules_of(conditions), "test")  # type: ignore[arg-type]
    return [r.index for r in match(view)]


def expected(conditions: list[Expr], view: dict[str, Any]) -> list[int]:
    return [i for i, c in enumerate(conditions) if evaluate(c, view) is True]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tree, min_size=1, max_size=4), st.lists(data, min_size=1, max_size=5))
def test_generated_match_is_the_direct_meaning_on_any_values(
    conditions: list[Expr], views: list[dict[str, Any]]
) -> None:
    for view in views:
        assert matched(conditions, view) == expected(conditions, view), (conditions, view)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(condition, min_size=1, max_size=5), st.lists(deal, min_size=1, max_size=5))
def test_generated_match_is_the_direct_meaning_on_checked_conditions(
    texts: list[str], deals: list[dict[str, Any]]
) -> None:
    conditions = [parse_expression(t, SCOPE) for t in texts]
    for view in deals:
        assert matched(conditions, view) == expected(conditions, view), (texts, view)


def test_deep_conditions_are_matched_through_their_closures() -> None:
    expr: Expr = Compare(POS, op="==", left=Field(POS, path="a"), right=Const(POS, value=1))
    for _ in range(4 * _INLINE_DEPTH):
        expr = Not(POS, operand=expr)  # an even count: the same as the comparison
    match = compile_stratum(rules_of([expr]), "test")  # type: ignore[arg-type]
    assert "C[" in match.source  # type: ignore[attr-defined]
    assert matched([expr], {"a": Decimal(1)}) == [0]
    assert matched([expr], {"a": Decimal(2)}) == []
    assert matched([expr], {}) == []


HOSTILE = [
    '"); __import__("os").system("echo pwned") #',
    "'''; raise SystemExit; '''",
    "\\\n    import os",
    "K[0]) or (1",
    "{{ 7*7 }}",
]


def test_the_source_holds_no_ruleset_text() -> None:
    conditions: list[Expr] = []
    for text in HOSTILE:
        conditions.append(
            Compare(POS, op="==", left=Field(POS, path="s"), right=Const(POS, value=text))
        )
        conditions.append(
            InList(POS, operand=Field(POS, path="s"), values=(Const(POS, value=text),))
        )
        conditions.append(Matches(POS, target=Field(POS, path="s"), pattern=re.escape(text)))
        conditions.append(Exists(POS, target=Field(POS, path=text.replace(".", "_"))))
    match = compile_stratum(rules_of(conditions), "test")  # type: ignore[arg-type]
    source: str = match.source  # type: ignore[attr-defined]
    # no quote, no backslash: the source cannot hold a string literal at all
    assert not set(source) & set("\"'\\#{}")
    assert re.fullmatch(r"[A-Za-z0-9_ ()\[\],.:=<>!\n]*", source)
    for index, text in enumerate(HOSTILE):
        assert matched(conditions, {"s": text}) == [4 * index, 4 * index + 1, 4 * index + 2]
