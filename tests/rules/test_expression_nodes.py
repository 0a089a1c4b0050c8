"""The tree's node classes behave as the frozen dataclasses they replace (written out for
start-up time): the same constructor, repr, equality, hash, match arguments and frozen fields."""

from __future__ import annotations

import copy
import inspect
import pickle
from dataclasses import FrozenInstanceError, dataclass, field
from decimal import Decimal
from typing import Any

import expression_strategies as strategies
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealdesk.rules import expressions as ex

Pos = tuple[int, int]


# The classes as they were: @dataclass(frozen=True), pos neither compared nor shown.
@dataclass(frozen=True)
class Expr:
    pos: Pos = field(compare=False, repr=False)


@dataclass(frozen=True)
class Const(Expr):
    value: Decimal | str | bool | None = None
    type: str = "any"


@dataclass(frozen=True)
class Field(Expr):
    path: str = ""
    type: str = "any"
    enum: tuple[str, ...] | None = None
    item: bool = False


@dataclass(frozen=True)
class Arith(Expr):
    op: str
    left: Any
    right: Any
    type: str = "number"


@dataclass(frozen=True)
class Call(Expr):
    name: str
    args: tuple[Any, ...]
    type: str = "number"


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Any
    right: Any
    type: str = "boolean"


@dataclass(frozen=True)
class InList(Expr):
    operand: Any
    values: tuple[Any, ...]
    negated: bool = False
    type: str = "boolean"


@dataclass(frozen=True)
class Exists(Expr):
    target: Any
    type: str = "boolean"


@dataclass(frozen=True)
class Matches(Expr):
    target: Any
    pattern: str
    type: str = "boolean"


@dataclass(frozen=True)
class Not(Expr):
    operand: Any
    type: str = "boolean"


@dataclass(frozen=True)
class And(Expr):
    operands: tuple[Any, ...]
    type: str = "boolean"


@dataclass(frozen=True)
class Or(Expr):
    operands: tuple[Any, ...]
    type: str = "boolean"


@dataclass(frozen=True)
class Quantifier(Expr):
    kind: str
    items: Any
    body: Any
    type: str = "boolean"


REFERENCE = {
    cls.__name__: cls
    for cls in (Expr, Const, Field, Arith, Call, Compare, InList, Exists, Matches, Not, And, Or)
    + (Quantifier,)
}


def as_reference(node: Any) -> Any:
    """The same tree made of the reference dataclasses."""
    if isinstance(node, tuple):
        return tuple(as_reference(n) for n in node)
    if not isinstance(node, ex.Expr):
        return node
    cls = REFERENCE[type(node).__name__]
    return cls(node.pos, *(as_reference(getattr(node, name)) for name in node._fields))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_class_has_the_dataclass_interface(name: str) -> None:
    ours, theirs = getattr(ex, name), REFERENCE[name]
    assert ours.__match_args__ == theirs.__match_args__
    ours_init = inspect.signature(ours.__init__).parameters
    theirs_init = inspect.signature(theirs.__init__).parameters
    assert [(p.name, p.default, p.kind) for p in ours_init.values()] == [
        (p.name, p.default, p.kind) for p in theirs_init.values()
    ]


@settings(max_examples=300, deadline=None)
@given(strategies.condition, st.integers(1, 3), st.integers(0, 9))
def test_nodes_behave_as_the_dataclasses(text: str, line: int, column: int) -> None:
    node = ex.parse_expression(text, strategies.SCOPE)
    reference = as_reference(node)
    moved = ex.parse_expression(text, strategies.SCOPE)  # equal, another object
    assert repr(node) == repr(reference)
    assert hash(node) == hash(reference)
    assert node == moved and hash(node) == hash(moved)
    assert list(vars(node)) == list(vars(reference))
    shifted = type(node)((line, column), *(getattr(node, n) for n in node._fields))
    assert shifted == node  # pos is not compared
    assert (node == reference) is False  # other classes are never equal
    for name in (*node._fields, "pos", "other"):
        with pytest.raises(FrozenInstanceError, match=f"cannot assign to field '{name}'"):
            setattr(node, name, 1)
        with pytest.raises(FrozenInstanceError, match=f"cannot delete field '{name}'"):
            delattr(node, name)
    assert pickle.loads(pickle.dumps(node)) == node
    assert copy.deepcopy(node) == node and repr(copy.copy(node)) == repr(node)


def test_equality_and_defaults_as_the_dataclasses() -> None:
    pairs = [
        (ex.Const((1, 0)), Const((1, 0))),
        (ex.Field((1, 0)), Field((1, 0))),
        (ex.Const((1, 0), Decimal("1.0"), "number"), Const((1, 0), Decimal("1.0"), "number")),
        (ex.Expr((1, 0)), Expr((1, 0))),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs) and hash(ours) == hash(theirs)
        assert list(vars(ours).items()) == list(vars(theirs).items())
    assert ex.Const((1, 0), Decimal(1)) == ex.Const((2, 5), Decimal("1.00"))  # as Decimal does
    assert ex.Const((1, 0), True) != ex.Field((1, 0), "x")
    assert ex.Expr((1, 0)) == ex.Expr((3, 3))
    with pytest.raises(TypeError):
        ex.Compare((1, 0), "==")  # type: ignore[call-arg]
