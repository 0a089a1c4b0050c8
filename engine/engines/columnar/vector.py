"""Conditions over a chunk of deals as numpy columns, three-valued (SPEC §3).

A condition's value on a chunk is a pair of masks, ``(true, false)``; a row in neither is
unknown. Columns are compared in the vector only where every value is of one kind the per-deal
meaning (:func:`dealdesk.rules.meaning._compare`) treats plainly; anything else is evaluated
row by row with the compiled closures of :mod:`dealdesk.rules.meaning`. The package docstring
says why this is exact.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np

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
    Quantifier,
)
from dealdesk.rules.meaning import compile_expr, to_decimal

#: A condition's value on a chunk: (true, false) boolean masks; a row in neither is unknown.
Truth = tuple[np.ndarray, np.ndarray]

_NONE = type(None)
# the kinds of column compared in the vector, by the one type of their values (None aside)
_KINDS: dict[type, str] = {Decimal: "number", str: "text", bool: "boolean"}
# a value of the column's kind put where a value is missing, so that the vector compares it
# (the row is unknown all the same: its known mask is False)
_FILLER: dict[str, Any] = {"number": Decimal(0), "text": "", "boolean": False}
#: The comparison operators as numpy's elementwise functions.
NUMPY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
# `constant OP column` is `column FLIPPED[OP] constant`
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
# the conditions whose value is always True, False or None (as in the native engine)
_EXACT = (Compare, InList, Exists, Matches, Not, And, Or)


def row_mask(rows: Any, n: int) -> np.ndarray:
    """``rows`` as a boolean mask of ``n`` (a mask already, or row indices)."""
    rows = np.asarray(rows)
    if rows.dtype == bool:
        return rows
    mask = np.zeros(n, dtype=bool)
    mask[rows.astype(np.intp, copy=False)] = True  # an empty list reads as floats
    return mask


def _exact(expr: Expr) -> bool:
    return isinstance(expr, _EXACT) or (isinstance(expr, Quantifier) and expr.kind != "sum")


class Column:
    """One value per deal of a chunk (a path's or an expression's), as an object array with a
    known mask and the kind every known value shares (``number``, ``text``, ``boolean``;
    ``none`` when every value is missing, ``mixed`` otherwise)."""

    __slots__ = ("_values", "filled", "kind", "known")

    def __init__(self, values: list[Any]):
        self._values: list[Any] | None = values
        n = len(values)
        types = set(map(type, values))
        missing = _NONE in types
        types.discard(_NONE)
        self.kind = "none" if not types else _KINDS.get(types.pop(), "mixed")
        if types:  # more than one type
            self.kind = "mixed"
        self.known = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=n)
        self.filled: np.ndarray | None = None
        if self.kind in _FILLER:  # scalars only: the array holds the values themselves
            if missing:
                filler = _FILLER[self.kind]
                values = [filler if v is None else v for v in values]
            self.filled = np.fromiter(values, dtype=object, count=n)

    @property
    def values(self) -> list[Any]:
        """Each row's value (None where missing); a column of another representation builds
        them on first use."""
        assert self._values is not None
        return self._values

    # What the vector asks of a column; a column of another representation (the reader's
    # exact numbers) overrides these three. Rows where the column is unknown may hold anything.

    def compare(self, op: str, value: Any) -> np.ndarray:
        """Where ``column OP value`` holds, for a ``value`` of the column's kind."""
        return np.asarray(NUMPY_OPS[op](self.filled, value), dtype=bool)

    def compare_column(self, op: str, other: Column) -> np.ndarray | None:
        """Where ``self OP other`` holds, both of one kind; None when only rows can say."""
        if self.filled is None or other.filled is None:
            return None
        return np.asarray(NUMPY_OPS[op](self.filled, other.filled), dtype=bool)

    def is_true(self) -> np.ndarray:
        """Where a boolean column holds True."""
        return np.asarray(self.filled == True, dtype=bool)  # noqa: E712  # elementwise


def _truth_column(truth: Truth) -> Column:
    """A condition's masks as a column of True, False and None (a table input such as
    ``any(...)`` compared with a cell)."""
    true, false = truth
    known = true | false
    values: list[Any] = true.tolist()
    for index in np.flatnonzero(~known).tolist():
        values[index] = None
    column = Column.__new__(Column)
    column._values, column.known = values, known
    column.kind = "boolean" if known.any() else "none"
    column.filled = true.astype(object)  # Python booleans; False where unknown
    return column


class Constant:
    """A literal compared with a column: its value and the kind of column it compares with
    plainly (None: any comparison is the per-row meaning's)."""

    __slots__ = ("kind", "value")

    def __init__(self, value: Any):
        self.value = value
        if isinstance(value, bool):
            self.kind: str | None = "boolean"
        elif isinstance(value, Decimal):
            self.kind = "number"
        elif isinstance(value, str) and to_decimal(value) is None:
            # text that reads as a number compares with text as a number (meaning._compare)
            self.kind = "text"
        else:
            self.kind = None


def _step(value: Any, key: str) -> Any:
    # lookup()'s walk for one key: a mapping's value, else missing
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(key)
    return None


def _read(items: Sequence[Any], path: str) -> list[Any]:
    """The value at ``path`` in each of ``items`` (as meaning.lookup: None when a part is
    missing or something other than a mapping is on the way), one key at a time."""
    first, *rest = path.split(".")
    values = [v.get(first) if type(v) is dict else _step(v, first) for v in items]
    for key in rest:
        values = [
            v.get(key) if type(v) is dict else None if v is None else _step(v, key) for v in values
        ]
    return values


class Chunk:
    """The deals of one chunk and the columns read from them so far (each path read once)."""

    def __init__(self, deals: Sequence[Any]):
        self.deals = deals
        self.n = len(deals)
        self.paths: dict[str, Column] = {}
        self.groups: dict[str, list[Any]] = {}  # a path's first key's values (customer)
        self.lists: dict[str, Elements] = {}
        self.none = np.zeros(self.n, dtype=bool)

    def path(self, path: str) -> Column:
        column = self.paths.get(path)
        if column is None:
            first, _, rest = path.partition(".")
            group = self.groups.get(first)
            if group is None:  # customer.region and customer.segment read customer once
                group = self.groups[first] = _read(self.deals, first)
            column = self.paths[path] = Column(_read(group, rest) if rest else group)
        return column

    def elements(self, path: str) -> Elements:
        """The elements of the list at ``path`` (``lines``) of every deal, once a chunk."""
        found = self.lists.get(path)
        if found is None:
            found = self.lists[path] = Elements(self, self.path(path).values)
        return found

    def field(self, target: Field) -> Column:
        if target.item:  # an element's path outside any/all: never there (as compile_expr)
            return Column([None] * self.n)
        return self.path(target.path)

    def per_row(self, expr: Expr) -> list[Any]:
        """``expr``'s value on each deal, by the per-deal meaning."""
        compiled = compile_expr(expr)
        return [compiled(d, None) for d in self.deals]


class Elements(Chunk):
    """The elements of one list of every deal of a chunk (``lines``), for the body of an
    ``any``/``all``: an element's paths are read in the element, the deal's in its deal."""

    def __init__(self, deals: Chunk, lists: list[Any]):
        self.owner_chunk = deals
        elements: list[Any] = []
        owners: list[int] = []
        for index, items in enumerate(lists):
            if type(items) is list and items:
                elements.extend(items)
                owners.extend(repeat(index, len(items)))
        super().__init__(elements)
        self.owners = np.array(owners, dtype=np.intp)
        self.counts = np.bincount(self.owners, minlength=deals.n)
        self.broadcast: dict[str, Column] = {}  # a deal's path, once per element

    def field(self, target: Field) -> Column:
        if target.item:
            return self.path(target.path)
        column = self.broadcast.get(target.path)
        if column is None:
            values = self.owner_chunk.path(target.path).values
            column = Column([values[o] for o in self.owners.tolist()])
            self.broadcast[target.path] = column
        return column

    def per_row(self, expr: Expr) -> list[Any]:
        compiled = compile_expr(expr)
        deals = self.owner_chunk.deals
        return [
            compiled(deals[o], e) for o, e in zip(self.owners.tolist(), self.deals, strict=True)
        ]

    # The owner caches its elements: a reference back would be a cycle, and a chunk's columns
    # would wait for the garbage collector instead of going with the chunk.
    @property
    def owner_chunk(self) -> Chunk:
        owner = self._owner()
        assert owner is not None, "elements are read while their chunk is evaluated"
        return owner

    @owner_chunk.setter
    def owner_chunk(self, chunk: Chunk) -> None:
        self._owner = weakref.ref(chunk)


class ConditionVector:
    """Evaluates checked condition trees over a :class:`Chunk` as :data:`Truth` masks."""

    def __init__(self, chunk: Chunk, keys: Mapping[int, int] | None = None):
        self.chunk = chunk
        # the masks of each condition, once a chunk; ``keys`` gives equal trees of different
        # rules one key (risk_offer, offer.type == "standard"), without hashing a tree per use
        self.keys = keys if keys is not None else {}
        self.memo: dict[int, Truth] = {}

    # -- conditions

    def fires(self, condition: Expr) -> np.ndarray:
        """Where a rule with ``condition`` fires: its value is True."""
        if _exact(condition):
            return self.truth(condition)[0]
        column = self.value(condition)  # a path or a value that is no condition: True or not
        if column.kind == "none":
            return self.chunk.none
        if column.kind == "boolean":
            return column.known & column.is_true()
        return self.rows(column.values)[0]

    def truth(self, expr: Expr) -> Truth:
        """The (true, false) masks of a condition that is always True, False or None (once per
        chunk for conditions that several rules share: ``risk_offer``, ``offer.type == ...``)."""
        key = self.keys.get(id(expr), id(expr))
        found = self.memo.get(key)
        if found is None:
            found = self.vector(expr)
            if found is None:
                found = self.rows(self.chunk.per_row(expr))
            self.memo[key] = found
        return found

    def rows(self, values: list[Any]) -> Truth:
        n = self.chunk.n
        true = np.fromiter((v is True for v in values), dtype=bool, count=n)
        false = np.fromiter((v is False for v in values), dtype=bool, count=n)
        return true, false

    def vector(self, expr: Expr) -> Truth | None:
        """The masks computed as columns, or None when this chunk's values need the per-row
        meaning for ``expr``."""
        match expr:
            case Not(operand=operand):
                inner = self.operand(operand)
                return None if inner is None else (inner[1], inner[0])
            case And(operands=operands):
                parts = [self.operand(o) for o in operands]
                if any(p is None for p in parts):
                    return None
                true, false = parts[0]  # type: ignore[misc]
                for t, f in parts[1:]:  # type: ignore[misc]
                    true, false = true & t, false | f
                return true, false
            case Or(operands=operands):
                parts = [self.operand(o) for o in operands]
                if any(p is None for p in parts):
                    return None
                true, false = parts[0]  # type: ignore[misc]
                for t, f in parts[1:]:  # type: ignore[misc]
                    true, false = true | t, false & f
                return true, false
            case Compare(op=op, left=left, right=right):
                return self.comparison(op, left, right)
            case InList(operand=operand, values=values, negated=negated):
                return self.membership(operand, tuple(v.value for v in values), negated)
            case Exists(target=target):
                known = self.chunk.field(target).known
                return known, ~known
            case Quantifier(kind=kind, items=items, body=body) if kind != "sum":
                return self.quantifier(kind, items, body)
        return None  # matches(), anything else: the per-row meaning

    def quantifier(self, kind: str, items: Field, body: Expr) -> Truth | None:
        """any/all over a list of each deal: the body on every element of the chunk at once,
        counted per deal (an element whose body is unknown is not true; all() over no
        elements is false, SPEC §3). Never unknown."""
        if items.item or isinstance(self.chunk, Elements):
            return None  # a list inside an element, or any/all in any/all: per row
        elements = self.chunk.elements(items.path)
        hits = np.zeros(self.chunk.n, dtype=np.intp)  # the elements whose body is True
        if elements.n:
            fires = ConditionVector(elements, self.keys).fires(body)
            hits = np.bincount(elements.owners[fires], minlength=self.chunk.n)
        if kind == "any":
            result = hits > 0
        else:
            result = (elements.counts > 0) & (hits == elements.counts)
        return result, ~result

    def operand(self, expr: Expr) -> Truth | None:
        """An operand of not/and/or: a condition, or a value that is one only when every value
        is a boolean (or missing) — any other value means what the per-row meaning says."""
        if _exact(expr):
            return self.truth(expr)
        column = self.value(expr)
        if column.kind == "none":
            return self.chunk.none, self.chunk.none
        if column.kind == "boolean":
            hit = column.is_true()
            return column.known & hit, column.known & ~hit
        return None

    # -- values

    def value(self, expr: Expr) -> Column:
        if isinstance(expr, Field):
            return self.chunk.field(expr)
        if isinstance(expr, Const):  # a constant alone (not compared): rare, as a column
            return Column([expr.value] * self.chunk.n)
        if _exact(expr):  # a condition as a value: True, False or None
            return _truth_column(self.truth(expr))
        return Column(self.chunk.per_row(expr))

    def comparison(self, op: str, left: Expr, right: Expr) -> Truth | None:
        if isinstance(right, Const) and not isinstance(left, Const):
            column, constant = self.value(left), Constant(right.value)
        elif isinstance(left, Const) and not isinstance(right, Const):
            column, constant, op = self.value(right), Constant(left.value), _FLIPPED[op]
        else:
            a, b = self.value(left), self.value(right)
            if a.kind == "none" or b.kind == "none":
                return self.chunk.none, self.chunk.none  # a missing side: unknown
            # two texts that both read as numbers compare as numbers: per row
            if a.kind != b.kind or a.kind not in ("number", "boolean"):
                return None
            both = a.compare_column(op, b)
            if both is None:
                return None
            known = a.known & b.known
            return known & both, known & ~both
        if column.kind == "none" or constant.value is None:
            return self.chunk.none, self.chunk.none
        if constant.kind != column.kind:
            return None
        hit = column.compare(op, constant.value)
        return column.known & hit, column.known & ~hit

    def membership(self, operand: Expr, values: tuple[Any, ...], negated: bool) -> Truth | None:
        column = self.value(operand)
        if column.kind == "none":
            return self.chunk.none, self.chunk.none
        constants = [Constant(v) for v in values]
        if column.kind not in _FILLER or any(c.kind != column.kind for c in constants):
            return None
        found = np.zeros(self.chunk.n, dtype=bool)
        for constant in constants:
            found |= column.compare("==", constant.value)
        if negated:
            found = ~found
        return column.known & found, column.known & ~found


def per_row_reasons(condition: Expr, *, element: bool = False) -> list[str]:
    """What of ``condition`` the vectors leave to the per-row meaning, whatever the chunk's
    values (a column of mixed kinds, text against a numeric text, is per row too, found only
    on a chunk): ``matches()``, arithmetic, ``any``/``all`` inside ``any``/``all``...; [] when
    it is matched as columns (``validate --verbose``)."""
    reasons: list[str] = []
    match condition:
        case Not(operand=operand):
            reasons += per_row_reasons(operand, element=element)
        case And(operands=operands) | Or(operands=operands):
            for operand in operands:
                reasons += per_row_reasons(operand, element=element)
        case Compare(left=left, right=right):
            if not all(isinstance(side, Field | Const) for side in (left, right)):
                reasons.append("arithmetic")
        case InList(operand=operand):
            if not isinstance(operand, Field):
                reasons.append("arithmetic")
        case Matches():
            reasons.append("matches()")
        case Quantifier(kind=kind, items=items, body=body):
            if kind == "sum":
                reasons.append("sum()")
            elif element or items.item:
                reasons.append(f"{kind}() inside any()/all()")
            else:
                reasons += per_row_reasons(body, element=True)
        case Field() | Const() | Exists():
            pass
        case _:
            reasons.append("arithmetic")
    return list(dict.fromkeys(reasons))
