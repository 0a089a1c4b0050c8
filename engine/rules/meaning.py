"""What a checked condition tree means (SPEC §3): three-valued conditions, exact decimals.

:func:`evaluate` walks the tree (explain, the conformance REFERENCE, the property tests);
:func:`compile_expr` builds the same meaning once into Python closures, without walking the
tree for every deal. Closures are built from the checked tree only — literals are captured as
values, paths as tuples of keys — so nothing a ruleset says is ever turned into code. The native
engine matches conditions with them; every engine computes ``set`` and ``with`` values with them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, DivisionByZero, InvalidOperation, localcontext
from typing import Any

from dealdesk.rules.expressions import (
    MAX_ROUND_PLACES,
    And,
    Arith,
    Call,
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
    search,
)

# ---------------------------------------------------------------------------------------------
# Direct meaning: three-valued conditions, exact decimal values


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in nested mappings, or None when any part is missing."""
    value: Any = data
    for part in path.split("."):
        # dict first: an abstract Mapping check is slow, and this runs for every path of a deal
        if not (isinstance(value, dict) or isinstance(value, Mapping)):
            return None
        value = value.get(part)
    return value


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def arithmetic(op: str, left: Any, right: Any) -> Decimal | None:
    a, b = to_decimal(left), to_decimal(right)
    if a is None or b is None:
        return None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return a / b if b != 0 else None
    except (InvalidOperation, DivisionByZero):
        return None


def evaluate(expr: Expr, data: Mapping[str, Any], item: Mapping[str, Any] | None = None) -> Any:
    """The meaning of ``expr`` on ``data`` (a deal with its derived facts and ``outputs``).

    Conditions give True, False or None (unknown, SQL-style: a comparison with a missing value
    is unknown, ``not`` unknown is unknown); values give exact Decimals, or None when an operand
    is missing or a divisor is zero.
    """
    match expr:
        case Const(value=value):
            return value
        case Field(path=path, item=True):
            return lookup(item or {}, path)
        case Field(path=path):
            return lookup(data, path)
        case Arith(op=op, left=left, right=right):
            return arithmetic(op, evaluate(left, data, item), evaluate(right, data, item))
        case Compare(op=op, left=left, right=right):
            return _compare(op, evaluate(left, data, item), evaluate(right, data, item))
        case InList(operand=operand, values=values, negated=negated):
            value = evaluate(operand, data, item)
            if value is None:
                return None
            found = any(_compare("==", value, v.value) for v in values)
            return not found if negated else found
        case Exists(target=target):
            return evaluate(target, data, item) is not None
        case Matches(target=target, pattern=pattern):
            value = evaluate(target, data, item)
            return search(pattern, value) if isinstance(value, str) else None
        case Not(operand=operand):
            value = evaluate(operand, data, item)
            return None if value is None else not value
        case And(operands=operands):
            results = [evaluate(o, data, item) for o in operands]
            return False if False in results else (None if None in results else True)
        case Or(operands=operands):
            results = [evaluate(o, data, item) for o in operands]
            return True if True in results else (None if None in results else False)
        case Quantifier(kind=kind, items=items, body=body):
            elements = evaluate(items, data)
            elements = elements if isinstance(elements, list) else []
            if kind == "sum":
                total = Decimal(0)
                for element in elements:
                    value = to_decimal(evaluate(body, data, element))
                    if value is None:
                        return None
                    total += value
                return total
            # any/all over an element whose condition is unknown count it as not true
            results = [evaluate(body, data, e) is True for e in elements]
            return any(results) if kind == "any" else bool(results) and all(results)
        case Call(name=name, args=args):
            return _call(name, [evaluate(a, data, item) for a in args])
    raise TypeError(f"cannot evaluate {type(expr).__name__}")


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    a, b = to_decimal(left), to_decimal(right)
    if a is not None and b is not None:
        left, right = a, b
    elif isinstance(left, bool) != isinstance(right, bool) or type(left) is not type(right):
        return None  # mismatched types never reach here after checking; unknown if they do
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _call(name: str, args: list[Any]) -> Decimal | None:
    if name in ("min", "max", "sum") and len(args) == 1 and isinstance(args[0], list):
        args = list(args[0])
        if name == "sum":
            parts = [to_decimal(a) for a in args]
            present = [n for n in parts if n is not None]
            return None if len(present) < len(parts) else sum(present, Decimal(0))
    converted = [to_decimal(a) for a in args]
    numbers = [n for n in converted if n is not None]
    if len(numbers) < len(converted) or not numbers:
        return None
    if name == "min":
        return min(numbers)
    if name == "max":
        return max(numbers)
    if name == "abs":
        return abs(numbers[0])
    if name == "round":
        return _round(numbers[0], numbers[1] if len(numbers) > 1 else Decimal(0))
    raise TypeError(f"unknown function {name}")


def _round(number: Decimal, places: Decimal) -> Decimal | None:
    """``number`` rounded half up to ``places`` decimals; unknown (as a division by zero is)
    when the places are not a whole number in range, which only a value read from the deal can
    make so (validation refuses a literal one)."""
    if not places.is_finite() or places != places.to_integral_value():
        return None
    if abs(places) > MAX_ROUND_PLACES or not number.is_finite():
        return None
    with localcontext() as context:
        # room for every digit of the result (beyond 200 digits: unknown, not a huge number)
        context.prec = min(200, max(28, number.adjusted() + MAX_ROUND_PLACES + 2))
        try:
            return number.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return None


# ---------------------------------------------------------------------------------------------
# The same meaning, compiled once into closures

#: ``fn(data, item)``: the value of an expression on a deal (and the current list element).
Compiled = Callable[[Mapping[str, Any], Any], Any]

#: The comparison operators on plain values (numbers as Decimals, text, booleans).
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compile_expr(expr: Expr) -> Compiled:
    """``expr`` as a closure ``fn(data, item)`` with :func:`evaluate`'s exact meaning."""
    match expr:
        case Const(value=value):
            return lambda data, item: value
        case Field(path=path, item=True):
            get = _getter(path)
            return lambda data, item: get(item, None)
        case Field(path=path):
            return _getter(path)
        case Arith(op=op, left=left, right=right):
            return _arithmetic(op, compile_expr(left), compile_expr(right))
        case Compare(op=op, left=left, right=right):
            return _comparison(op, left, right)
        case InList(operand=operand, values=values, negated=negated):
            return _membership(compile_expr(operand), tuple(v.value for v in values), negated)
        case Exists(target=target):
            tf = compile_expr(target)
            return lambda data, item: tf(data, item) is not None
        case Matches(target=target, pattern=pattern):
            tf = compile_expr(target)

            def matches(data: Mapping[str, Any], item: Any) -> bool | None:
                value = tf(data, item)
                return search(pattern, value) if isinstance(value, str) else None

            return matches
        case Not(operand=operand):
            of = compile_expr(operand)

            def negation(data: Mapping[str, Any], item: Any) -> bool | None:
                value = of(data, item)
                return None if value is None else not value

            return negation
        case And(operands=operands):
            return _junction(tuple(compile_expr(o) for o in operands), False)
        case Or(operands=operands):
            return _junction(tuple(compile_expr(o) for o in operands), True)
        case Quantifier(kind=kind, items=items, body=body):
            return _quantifier(kind, compile_expr(items), compile_expr(body))
        case Call(name=name, args=args):
            fns = tuple(compile_expr(a) for a in args)
            return lambda data, item: _call(name, [f(data, item) for f in fns])
    raise TypeError(f"cannot compile {type(expr).__name__}")


def _getter(path: str) -> Compiled:
    """``get(data, item)``: the value at ``path`` in ``data``, None when any part is missing."""
    parts = tuple(path.split("."))

    def walk(value: Any) -> Any:
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    # the common shapes index straight into the dicts; a missing key or a value that is not a
    # mapping on the way falls back to the careful walk
    if len(parts) == 1:
        (key,) = parts

        def get1(data: Any, item: Any) -> Any:
            try:
                return data[key]
            except (KeyError, TypeError, IndexError):
                return walk(data)

        return get1
    if len(parts) == 2:
        first, second = parts

        def get2(data: Any, item: Any) -> Any:
            try:
                return data[first][second]
            except (KeyError, TypeError, IndexError):
                return walk(data)

        return get2
    return lambda data, item: walk(data)


_ARITH_OPS: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _arithmetic(op: str, lf: Compiled, rf: Compiled) -> Compiled:
    apply = _ARITH_OPS[op]
    division = op == "/"

    def arith(data: Mapping[str, Any], item: Any) -> Decimal | None:
        a, b = lf(data, item), rf(data, item)
        # two Decimals (derived facts, literals) straight away; anything else as arithmetic()
        if type(a) is not Decimal or type(b) is not Decimal or (division and not b):
            return arithmetic(op, a, b)
        try:
            return apply(a, b)
        except (InvalidOperation, DivisionByZero):
            return None

    return arith


def _comparison(op: str, left: Expr, right: Expr) -> Compiled:
    lf, rf = compile_expr(left), compile_expr(right)
    test = COMPARISONS[op]
    if isinstance(right, Const) and right.value is not None and not isinstance(right.value, bool):
        constant = right.value
        number = to_decimal(constant)
        if number is not None:
            # a number: a Decimal value compares exactly as _compare would convert it
            def compare_number(value: Any) -> bool | None:
                if type(value) is Decimal:
                    return bool(test(value, number))
                return None if value is None else _compare(op, value, constant)

            return _fused(left, lf, compare_number)

        # text that is not a number: only a text value can compare with it
        def compare_text(value: Any) -> bool | None:
            if type(value) is str:
                return bool(test(value, constant))
            return None if value is None else _compare(op, value, constant)

        return _fused(left, lf, compare_text)
    return lambda data, item: _compare(op, lf(data, item), rf(data, item))


def _fused(left: Expr, lf: Compiled, compare: Callable[[Any], bool | None]) -> Compiled:
    """``compare(value of left)``; a path of two parts (``customer.region``, the most common
    shape) is read in the same call."""
    if isinstance(left, Field) and not left.item and left.path.count(".") == 1:
        first, second = left.path.split(".")

        def on_path(data: Any, item: Any) -> bool | None:
            try:
                value = data[first][second]
            except (KeyError, TypeError, IndexError):
                value = lf(data, item)
            return compare(value)

        return on_path
    return lambda data, item: compare(lf(data, item))


def _membership(operand: Compiled, values: tuple[Any, ...], negated: bool) -> Compiled:
    texts = frozenset(v for v in values if isinstance(v, str) and to_decimal(v) is None)
    only_text = len(texts) == len(values)

    def member(data: Mapping[str, Any], item: Any) -> bool | None:
        value = operand(data, item)
        if value is None:
            return None
        if only_text and type(value) is str:
            found = value in texts  # a set lookup, however long the list
        else:
            found = any(_compare("==", value, v) for v in values)
        return not found if negated else found

    return member


def _junction(operands: tuple[Compiled, ...], decisive: bool) -> Compiled:
    # SQL's and/or: `decisive` (False for and, True for or) wins; else unknown beats the rest
    if len(operands) == 2:
        first, second = operands

        def pair(data: Mapping[str, Any], item: Any) -> bool | None:
            a = first(data, item)
            if a is not None and a == decisive:
                return decisive
            b = second(data, item)
            if b is not None and b == decisive:
                return decisive
            return None if a is None or b is None else not decisive

        return pair

    def junction(data: Mapping[str, Any], item: Any) -> bool | None:
        unknown = False
        for operand in operands:
            value = operand(data, item)
            if value is None:
                unknown = True
            elif value == decisive:
                return decisive
        return None if unknown else not decisive

    return junction


def _quantifier(kind: str, items: Compiled, body: Compiled) -> Compiled:
    def elements(data: Mapping[str, Any]) -> list[Any]:
        found = items(data, None)
        return found if isinstance(found, list) else []

    if kind == "sum":

        def total(data: Mapping[str, Any], item: Any) -> Decimal | None:
            result = Decimal(0)
            for element in elements(data):
                value = to_decimal(body(data, element))
                if value is None:
                    return None
                result += value
            return result

        return total
    if kind == "any":
        # an element whose condition is unknown counts as not true
        return lambda data, item: any(body(data, e) is True for e in elements(data))
    return lambda data, item: (
        bool(found := elements(data)) and all(body(data, e) is True for e in found)
    )
