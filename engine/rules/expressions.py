"""The condition language: Python syntax parsed with ``ast`` into a typed tree, never ``eval``ed.

Stage one of the compiler (SPEC §3). :func:`parse_expression` turns text into an :class:`Expr`
tree, checking every path against a :class:`Scope` (the deal schema, derived facts, plugin facts
and the policy's outputs) and every comparison's types. The tree is independent of any engine:
:mod:`dealdesk.rules.meaning` gives its meaning (three-valued, exact decimals) and compiles it
into closures; :mod:`dealdesk.engines.durable.lowering` lowers it to durable JSON.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dealdesk.errors import closest

# ---------------------------------------------------------------------------------------------
# The tree

Pos = tuple[int, int]  # 1-based line within the expression text, 0-based column


@dataclass(frozen=True)
class Expr:
    """Base of every node; ``type`` is one of number, string, boolean, date, object, array,
    null or any (unknown until run time)."""

    pos: Pos = field(compare=False, repr=False)


@dataclass(frozen=True)
class Const(Expr):
    value: Decimal | str | bool | None = None
    type: str = "any"


@dataclass(frozen=True)
class Field(Expr):
    """A dotted path into the deal (``customer.region``) or, when ``item`` is set, into the
    current element of a quantifier's list (``category`` for ``line.category``)."""

    path: str = ""
    type: str = "any"
    enum: tuple[str, ...] | None = None
    item: bool = False


@dataclass(frozen=True)
class Arith(Expr):
    op: str
    left: Expr
    right: Expr
    type: str = "number"


@dataclass(frozen=True)
class Call(Expr):
    """min, max, abs, round, sum: allowed in ``set`` values only."""

    name: str
    args: tuple[Expr, ...]
    type: str = "number"


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr
    type: str = "boolean"


@dataclass(frozen=True)
class InList(Expr):
    operand: Expr
    values: tuple[Const, ...]
    negated: bool = False
    type: str = "boolean"


@dataclass(frozen=True)
class Exists(Expr):
    target: Field
    type: str = "boolean"


@dataclass(frozen=True)
class Matches(Expr):
    target: Field
    pattern: str
    type: str = "boolean"


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr
    type: str = "boolean"


@dataclass(frozen=True)
class And(Expr):
    operands: tuple[Expr, ...]
    type: str = "boolean"


@dataclass(frozen=True)
class Or(Expr):
    operands: tuple[Expr, ...]
    type: str = "boolean"


@dataclass(frozen=True)
class Quantifier(Expr):
    """``any(...)``/``all(...)`` over a list; in a ``set`` value also ``sum(...)``."""

    kind: str
    items: Field
    body: Expr
    type: str = "boolean"


# ---------------------------------------------------------------------------------------------
# Scope: what paths exist and their types


@dataclass(frozen=True)
class FieldType:
    type: str
    enum: tuple[str, ...] | None = None


@dataclass
class Scope:
    """Every path a ruleset may name: ``customer.region``, ``lines[].category``,
    ``outputs.margin_floor``."""

    fields: Mapping[str, FieldType]

    def lookup(self, path: str) -> FieldType | None:
        return self.fields.get(path)

    def suggest(self, path: str) -> str | None:
        import difflib  # only when there is a problem to explain

        matches = difflib.get_close_matches(path, list(self.fields), n=1, cutoff=0.75)
        if not matches and "." in path:
            # `customer.regoin` → compare the last part among siblings, which scores better
            parent, _, leaf = path.rpartition(".")
            siblings = [p.rpartition(".")[2] for p in self.fields if p.rpartition(".")[0] == parent]
            close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)
            matches = [f"{parent}.{close[0]}"] if close else []
        return matches[0].replace("[]", "") if matches else None


class ExpressionError(Exception):
    """A problem in one expression, at a (line, column) position inside its text."""

    def __init__(self, message: str, pos: Pos = (1, 0), suggestion: str | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.suggestion = suggestion


# ---------------------------------------------------------------------------------------------
# Parsing

VALUE_FUNCTIONS = {"min", "max", "abs", "round", "sum"}
#: ``round(x, n)`` takes ``n`` within this (a cent is 2, a millionth 6; -3 rounds to thousands).
MAX_ROUND_PLACES = 12
_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "none": None}
_COMPARE_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_ARITH_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_BIT_SLIPS = {ast.BitAnd: "and", ast.BitOr: "or"}
_NUMERIC = {"number", "any"}

#: Deepest nesting of sub-expressions (``not not ...``, ``1 + 1 + ...``, parentheses that hold an
#: operator). Parsing, lowering and evaluating recurse a few frames per level; this keeps every
#: stage far below Python's recursion limit, and no condition a person writes comes near it.
MAX_DEPTH = 100


def parse_expression(text: str, scope: Scope, *, value: bool = False) -> Expr:
    """Parse ``text`` into a checked tree.

    :param text: the expression, Python syntax (SPEC §3).
    :param scope: the paths it may read.
    :param value: parse a ``set`` value (functions allowed, any type) rather than a condition.
    :raises ExpressionError: on any syntax, name or type problem, with its position.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    try:
        # The parentheses let a condition span lines (a YAML block scalar) like Python would.
        with warnings.catch_warnings():
            # "\d" in a matches() pattern is an invalid Python escape; it stays "\d", as meant
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            source = f"(\n{text}\n)"
            tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):
        # CPython's parser gives up on thousands of levels before _check_depth could say where
        raise ExpressionError(_TOO_DEEP, (1, 0)) from None
    except SyntaxError as exc:
        lines = text.split("\n")
        line, col = max((exc.lineno or 2) - 1, 1), max((exc.offset or 1) - 1, 0)
        if line > len(lines):  # the text ended too early: point just after it
            line, col = len(lines), len(lines[-1])
        if exc.msg == "too many nested parentheses":  # Python's own limit, 200
            raise ExpressionError(_TOO_DEEP, (line, col)) from None
        slip = find_slip(text)
        if slip is not None:
            raise ExpressionError(*slip) from None
        detail = "" if exc.msg == "invalid syntax" else f": {exc.msg}"
        raise ExpressionError(f"invalid syntax{detail}", (line, col)) from None
    _check_depth(tree.body, source)
    parser = _Parser(scope, value, source)
    expr = parser.expr(tree.body)
    return expr if value else parser.condition(expr)


_TOO_DEEP = f"expression nested too deeply (limit {MAX_DEPTH})"

#: Operators of other languages that people type in a condition, and the Python one meant.
_SLIPS = {
    "===": "==",
    "!==": "!=",
    "=>": ">=",
    "=<": "<=",
    "&&": "and",
    "||": "or",
    "<>": "!=",
    "=": "==",
    "!": "not",
}
# Longest first; a lone `=` or `!` is one that is not part of ==, !=, <=, >=.
_SLIP = re.compile(r"===|!==|=>|=<|&&|\|\||<>|(?<![=!<>])=(?!=)|!(?!=)")
# A string literal, so that a slip is never looked for inside one ("a => b" is text).
_STRING_LITERAL = re.compile(r"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'")


def find_slip(text: str) -> tuple[str, Pos, str] | None:
    """The first operator of another language in ``text`` (``=>``, ``&&``, ``||``, a single
    ``=``, ``!`` ...), outside string literals, as (message, position, the Python operator
    meant); None when there is none. Asked only of a text Python cannot parse."""
    blanked = _STRING_LITERAL.sub(lambda m: " " * len(m.group()), text)
    found = _SLIP.search(blanked)
    if found is None:
        return None
    slip, start = found.group(), found.start()
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1)
    what = "assigns; it does not compare" if slip == "=" else "is not an operator here"
    return f"invalid syntax: {slip!r} {what}", (line, col), _SLIPS[slip]


def _node_pos(node: ast.AST, source: str) -> Pos:
    """Where ``node`` starts in ``source``: (line within the text, 0-based column in characters)."""
    line, col = getattr(node, "lineno", 2), getattr(node, "col_offset", 0)
    if source.isascii():
        return (line - 1, col)
    lines = source.split("\n")
    if 0 < line <= len(lines):
        col = _characters(lines[line - 1], col)
    return (line - 1, col)


def _characters(line: str, offset: int) -> int:
    """``ast`` counts columns in UTF-8 bytes; editors, and every location dealdesk reports,
    count characters (a line holding "日本" is 4 bytes longer than it is characters)."""
    if line.isascii():
        return offset
    return len(line.encode("utf-8")[:offset].decode("utf-8", "ignore"))


def _check_depth(root: ast.expr, source: str) -> None:
    """Refuse a tree nested deeper than :data:`MAX_DEPTH`, at the first node too deep, before
    anything walks it recursively."""
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):  # operators and contexts are nodes too, but not nesting
            if depth > MAX_DEPTH:
                raise ExpressionError(_TOO_DEEP, _node_pos(node, source))
            depth += 1
        # reversed, so the first node reported too deep is the first one in reading order
        stack.extend((child, depth) for child in reversed(list(ast.iter_child_nodes(node))))


class _Parser:
    def __init__(self, scope: Scope, value: bool, source: str = ""):
        self.scope = scope
        self.value = value
        self.source = source
        self.loop: tuple[str, str] | None = None  # (variable, list path) inside any()/all()

    # -- helpers

    def pos(self, node: ast.AST) -> Pos:
        return _node_pos(node, self.source)

    def operator_pos(self, node: ast.BinOp, symbol: str) -> Pos:
        """Where ``symbol``, the operator of ``node``, is written (after its left operand)."""
        lines = self.source.split("\n")
        line, col = node.left.end_lineno or node.lineno, node.left.end_col_offset or 0
        col = _characters(lines[line - 1], col) if line <= len(lines) else col
        while line <= len(lines):
            found = lines[line - 1].find(symbol, col)
            if found >= 0:
                return (line - 1, found)
            line, col = line + 1, 0
        return self.pos(node)

    def fail(self, node: ast.AST, message: str, suggestion: str | None = None) -> ExpressionError:
        return ExpressionError(message, self.pos(node), suggestion)

    def condition(self, expr: Expr) -> Expr:
        """A boolean in a condition position: a bare boolean path means ``path == True``."""
        kind = getattr(expr, "type", "any")
        if isinstance(expr, Field) and kind in ("boolean", "any"):
            return Compare(expr.pos, "==", expr, Const(expr.pos, True, "boolean"))
        if kind == "boolean":
            return expr
        what = (
            f"{expr.path!r} is {_article(kind)}"
            if isinstance(expr, Field)
            else f"this is {_article(kind)}"
        )
        raise ExpressionError(f"expected a condition, but {what}", expr.pos)

    # -- dispatch

    def expr(self, node: ast.AST) -> Expr:
        method: Callable[[Any], Expr] | None = getattr(self, f"on_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{_describe(node)} is not allowed in an expression")
        return method(node)

    def on_BoolOp(self, node: ast.BoolOp) -> Expr:
        operands = tuple(self.condition(self.expr(v)) for v in node.values)
        return (And if isinstance(node.op, ast.And) else Or)(self.pos(node), operands)

    def on_UnaryOp(self, node: ast.UnaryOp) -> Expr:
        if isinstance(node.op, ast.Not):
            return Not(self.pos(node), self.condition(self.expr(node.operand)))
        if isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.expr(node.operand)
            self.need_number(operand, node.operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(operand, Const):
                return Const(self.pos(node), -Decimal(str(operand.value)), "number")
            return Arith(self.pos(node), "-", Const(self.pos(node), Decimal(0), "number"), operand)
        raise self.fail(node, f"the operator {type(node.op).__name__} is not allowed")

    def on_BinOp(self, node: ast.BinOp) -> Expr:
        op = _ARITH_OPS.get(type(node.op))
        if op is None:
            word = _BIT_SLIPS.get(type(node.op))
            if word is not None:  # `a > 1 & b < 2`: the `and` of another language
                symbol = "&" if word == "and" else "|"
                raise ExpressionError(
                    f"invalid syntax: {symbol!r} is not an operator here",  # as '&&' and '=>' say
                    self.operator_pos(node, symbol),
                    word,
                )
            raise self.fail(
                node, f"the operator {type(node.op).__name__} is not allowed (use + - * /)"
            )
        left, right = self.expr(node.left), self.expr(node.right)
        self.need_number(left, node.left)
        self.need_number(right, node.right)
        if isinstance(left, Const) and isinstance(right, Const):
            from dealdesk.rules.meaning import arithmetic  # the meaning builds on this tree

            folded = arithmetic(op, left.value, right.value)
            if folded is None:
                raise self.fail(node, "division by zero")
            return Const(self.pos(node), folded, "number")
        return Arith(self.pos(node), op, left, right)

    def on_Compare(self, node: ast.Compare) -> Expr:
        parts: list[Expr] = []
        try:
            left = self.expr(node.left)
        except ExpressionError as exc:  # `gold == partner.tier`
            raise self.quote_hint(exc, node.left, node.comparators[0]) from None
        left_node = node.left
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op_node, ast.In | ast.NotIn):
                parts.append(
                    self.membership(node, left, right_node, isinstance(op_node, ast.NotIn))
                )
                left_node, left = right_node, left  # `x in [..]` cannot chain on a list
                continue
            op = _COMPARE_OPS.get(type(op_node))
            if op is None:
                raise self.fail(node, f"the operator {type(op_node).__name__} is not allowed")
            try:
                right = self.expr(right_node)
            except ExpressionError as exc:  # `partner.tier == gold`
                raise self.quote_hint(exc, right_node, left) from None
            self.check_comparison(op, left, right, left_node, right_node)
            parts.append(Compare(self.pos(node), op, left, right))
            left_node, left = right_node, right
        return parts[0] if len(parts) == 1 else And(self.pos(node), tuple(parts))

    def quote_hint(
        self, exc: ExpressionError, name: ast.AST, other: Expr | ast.AST
    ) -> ExpressionError:
        """``exc``, with a hint to quote a bare name that is (or is close to) a value of the
        enumerated field it is compared with: ``partner.tier == gold`` means ``"gold"``."""
        if not isinstance(name, ast.Name) or not exc.message.startswith("unknown path"):
            return exc
        if isinstance(other, ast.AST):
            try:
                other = self.expr(other)
            except ExpressionError:
                return exc
        enum = (other.enum if isinstance(other, Field) else None) or ()
        exact = name.id in enum
        value = name.id if exact else closest(name.id, enum)
        if value is None or (not exact and exc.suggestion):  # a near path stays the guess
            return exc
        return ExpressionError(
            f'unknown path {name.id!r} (did you mean "{value}"? a value is written in quotes)',
            exc.pos,
        )

    def membership(self, node: ast.AST, operand: Expr, values_node: ast.AST, negated: bool) -> Expr:
        if not isinstance(values_node, ast.List | ast.Tuple | ast.Set):
            raise self.fail(values_node, '`in` needs a literal list, like ["gold", "silver"]')
        values = []
        for element in values_node.elts:
            try:
                const = self.expr(element)
            except ExpressionError as exc:  # `partner.tier in [gold, silver]`
                raise self.quote_hint(exc, element, operand) from None
            if not isinstance(const, Const):
                raise self.fail(element, "the list after `in` may hold literals only")
            self.check_comparison("==", operand, const, node, element)
            values.append(const)
        return InList(self.pos(node), operand, tuple(values), negated)

    def on_Constant(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool):
            return Const(self.pos(node), value, "boolean")
        if isinstance(value, float):
            # the literal as written: through a float, 999999999999999.98 would be 1E+15
            written = ast.get_source_segment(self.source, node) or repr(value)
            return Const(self.pos(node), Decimal(written.replace("_", "")), "number")
        if isinstance(value, int):
            return Const(self.pos(node), Decimal(value), "number")
        if isinstance(value, str):
            return Const(self.pos(node), value, "string")
        if value is None:
            return Const(self.pos(node), None, "null")
        raise self.fail(node, f"the literal {value!r} is not allowed")

    def on_Name(self, node: ast.Name) -> Expr:
        return self.path(node)

    def on_Attribute(self, node: ast.Attribute) -> Expr:
        return self.path(node)

    def on_List(self, node: ast.List) -> Expr:
        raise self.fail(node, "a list is allowed only after `in`")

    def on_Call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only exists(), matches(), any() and all() can be called")
        name = node.func.id
        if name.startswith("_"):
            raise self.fail(node, f"the name {name!r} is not allowed")
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        if name == "exists":
            target = self.single_path_argument(node, name)
            return Exists(self.pos(node), target)
        if name == "matches":
            if len(node.args) != 2:
                raise self.fail(
                    node, 'matches() takes a path and a pattern: matches(sku, "^EDGE-")'
                )
            target = self.path(node.args[0])
            pattern = node.args[1]
            if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
                raise self.fail(pattern, "the pattern of matches() must be a string literal")
            if target.type not in ("string", "any"):
                raise self.fail(
                    node.args[0],
                    f"matches() needs a string, but {target.path!r} is {_article(target.type)}",
                )
            problem = pattern_problem(pattern.value)
            if problem:
                raise self.fail(pattern, problem)
            return Matches(self.pos(node), target, pattern.value)
        if name in ("any", "all") or (self.value and name == "sum" and _is_generator(node)):
            return self.quantifier(node, name)
        if name in VALUE_FUNCTIONS:
            if not self.value:
                raise self.fail(
                    node,
                    f"{name}() cannot be used in a condition (durable_rules cannot compute it); "
                    "derive the value in a plugin's dealdesk_enrich or set it as an output of an earlier rule",
                )
            return self.value_call(node, name)
        suggestion = closest(name, ["exists", "matches", "any", "all", *sorted(VALUE_FUNCTIONS)])
        raise self.fail(node, f"unknown function {name}()", suggestion)

    def single_path_argument(self, node: ast.Call, name: str) -> Field:
        if len(node.args) != 1:
            raise self.fail(node, f"{name}() takes exactly one path")
        return self.path(node.args[0])

    def value_call(self, node: ast.Call, name: str) -> Expr:
        args = tuple(self.expr(a) for a in node.args)
        arity = {"abs": (1, 1), "round": (1, 2), "sum": (1, 1), "min": (1, 99), "max": (1, 99)}[
            name
        ]
        if not arity[0] <= len(args) <= arity[1]:
            raise self.fail(
                node,
                f"{name}() takes {arity[0]}{'' if arity[0] == arity[1] else '..' + str(arity[1])} arguments, got {len(args)}",
            )
        if name == "sum":
            if not (isinstance(args[0], Field) and args[0].type in ("array", "any")):
                raise self.fail(
                    node,
                    "sum() takes a list path or a generator, like sum(line.amount for line in lines)",
                )
        elif name in ("min", "max") and len(args) == 1:
            if not (isinstance(args[0], Field) and args[0].type in ("array", "any")):
                raise self.fail(node, f"{name}() of one argument needs a list path")
        else:
            for arg, arg_node in zip(args, node.args, strict=True):
                self.need_number(arg, arg_node)
        places = args[-1]
        if name == "round" and len(args) == 2 and isinstance(places, Const):
            if not isinstance(places.value, Decimal) or (
                places.value != places.value.to_integral_value()
                or abs(places.value) > MAX_ROUND_PLACES
            ):
                raise self.fail(
                    node.args[1],
                    f"round() takes a whole number of places from -{MAX_ROUND_PLACES} to "
                    f"{MAX_ROUND_PLACES}, got {places.value}",
                )
        return Call(self.pos(node), name, args)

    def quantifier(self, node: ast.Call, name: str) -> Expr:
        if len(node.args) != 1 or not _is_generator(node):
            raise self.fail(
                node,
                f'{name}() takes a generator: {name}(line.category == "support" for line in lines)',
            )
        gen = node.args[0]
        assert isinstance(gen, ast.GeneratorExp)
        if len(gen.generators) != 1 or gen.generators[0].ifs or gen.generators[0].is_async:
            raise self.fail(gen, f"{name}() takes one `for ... in ...` without `if`")
        comp = gen.generators[0]
        if not isinstance(comp.target, ast.Name):
            raise self.fail(comp.target, "the loop variable must be a plain name")
        if self.loop is not None:
            raise self.fail(node, f"{name}() cannot be nested inside another any()/all()")
        items = self.path(comp.iter)
        if items.type not in ("array", "any"):
            raise self.fail(comp.iter, f"{items.path!r} is {_article(items.type)}, not a list")
        variable = comp.target.id
        if variable in _CONSTANT_NAMES or variable.startswith("_"):
            raise self.fail(comp.target, f"{variable!r} cannot be a loop variable")
        self.loop = (variable, items.path)
        try:
            body = self.expr(gen.elt)
            body = body if name == "sum" else self.condition(body)
            if name == "sum":
                self.need_number(body, gen.elt)
        finally:
            self.loop = None
        return Quantifier(
            self.pos(node), name, items, body, "number" if name == "sum" else "boolean"
        )

    def path(self, node: ast.AST) -> Field:
        parts: list[str] = []
        current = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name):
            if isinstance(current, ast.Subscript):
                raise self.fail(
                    current, "subscripts are not supported; use any()/all() over a list"
                )
            raise self.fail(
                current, f"expected a path like customer.region, found {_describe(current)}"
            )
        parts.append(current.id)
        parts.reverse()
        for part in parts:
            if part.startswith("__") or part.startswith("_"):
                raise self.fail(node, f"the name {part!r} is not allowed")
        if len(parts) == 1 and parts[0].lower() in _CONSTANT_NAMES:
            const = _CONSTANT_NAMES[parts[0].lower()]
            raise self.fail(node, f"write {const!r} for the literal {parts[0]}", repr(const))
        if self.loop is not None:
            variable, list_path = self.loop
            if parts[0] != variable:
                raise self.fail(
                    node,
                    f"inside any()/all() only fields of {variable!r} and literals can be used; "
                    f"{'.'.join(parts)!r} is outside the loop",
                )
            item_path = ".".join(parts[1:])
            if not item_path:
                element = self.scope.lookup(f"{list_path}[]")
                if element is not None and element.type not in ("object", "any"):
                    # no field to name: say what the elements are, not "like part.category"
                    raise self.fail(
                        node,
                        f"the elements of {list_path!r} are {element.type}s; any()/all() "
                        f"compare fields of a list's objects (like line.category), not the "
                        "elements themselves: derive such a fact in a plugin's dealdesk_enrich",
                    )
                raise self.fail(node, f"compare a field of {variable!r}, like {variable}.category")
            known = self.scope.lookup(f"{list_path}[].{item_path}")
            if known is None:
                suggestion = self.scope.suggest(f"{list_path}[].{item_path}")
                hint = (
                    suggestion.replace(f"{list_path}.", f"{variable}.", 1) if suggestion else None
                )
                raise self.fail(node, f"unknown field {variable}.{item_path} of {list_path}", hint)
            return Field(self.pos(node), item_path, known.type, known.enum, item=True)
        dotted = ".".join(parts)
        known = self.scope.lookup(dotted)
        for i in range(1, len(parts)):  # `lines.category`: a field of a list's elements
            head, rest = ".".join(parts[:i]), ".".join(parts[i:])
            if known is None and self.scope.lookup(f"{head}[].{rest}") is not None:
                item = head.rpartition(".")[2].rstrip("s") or "item"
                raise self.fail(
                    node,
                    f"{head!r} is a list; test its elements with any() or all(), "
                    f"like any({item}.{rest} == ... for {item} in {head})",
                )
        if known is None:
            raise self.fail(node, f"unknown path {dotted!r}", self.scope.suggest(dotted))
        return Field(self.pos(node), dotted, known.type, known.enum)

    # -- type checks

    def need_number(self, expr: Expr, node: ast.AST) -> None:
        kind = getattr(expr, "type", "any")
        if kind not in _NUMERIC:
            what = (
                f"{expr.path!r} is {_article(kind)}"
                if isinstance(expr, Field)
                else f"this is {_article(kind)}"
            )
            raise self.fail(node, f"arithmetic needs numbers, but {what}")

    def check_comparison(
        self, op: str, left: Expr, right: Expr, left_node: ast.AST, right_node: ast.AST
    ) -> None:
        lt, rt = _comparable(left), _comparable(right)
        if "null" in (lt, rt):
            raise self.fail(
                right_node if rt == "null" else left_node,
                "compare with None is never true; use exists(path) or not exists(path)",
            )
        if op in ("<", "<=", ">", ">="):
            for expr, kind, node in ((left, lt, left_node), (right, rt, right_node)):
                if kind not in _NUMERIC:
                    if isinstance(expr, Field):
                        what = f"{expr.path!r} is {_article(kind)}"
                    elif isinstance(expr, Const):
                        what = f"{expr.value!r} is {_article(kind)}"
                    else:
                        what = f"{_describe(node)} is {_article(kind)}"
                    raise self.fail(node, f"{op} compares numbers, but {what}")
            return
        if lt != "any" and rt != "any" and lt != rt:
            raise self.fail(right_node, f"cannot compare {_article(lt)} with {_article(rt)}")
        for fld, const, node in ((left, right, right_node), (right, left, left_node)):
            if (
                isinstance(fld, Field)
                and fld.enum
                and isinstance(const, Const)
                and isinstance(const.value, str)
            ):
                if const.value not in fld.enum:
                    raise self.fail(
                        node,
                        f"{const.value!r} is not a value of {fld.path!r} (one of: {', '.join(fld.enum)})",
                        closest(const.value, list(fld.enum)),
                    )


def _comparable(expr: Expr) -> str:
    kind = getattr(expr, "type", "any")
    return "string" if kind == "date" else kind  # ISO dates compare as text


def check_test(test: Expr) -> tuple[str, str | None] | None:
    """The first type problem in a decision-table cell's test, as (message, suggestion)."""
    if isinstance(test, Compare):
        subject, const = test.left, test.right
        kind, value_kind = _comparable(subject), _comparable(const)
        if test.op in ("<", "<=", ">", ">="):
            if kind not in _NUMERIC:
                return f"{test.op} compares numbers, but the input is {_article(kind)}", None
            if value_kind not in _NUMERIC:
                shown = repr(const.value) if isinstance(const, Const) else "the value"
                return f"{test.op} compares numbers, but {shown} is {_article(value_kind)}", None
        if "any" not in (kind, value_kind) and kind != value_kind:
            return f"cannot compare {_article(kind)} input with {_article(value_kind)}", None
        if (
            isinstance(subject, Field)
            and subject.enum
            and isinstance(const, Const)
            and isinstance(const.value, str)
            and const.value not in subject.enum
        ):
            allowed = ", ".join(subject.enum)
            message = f"{const.value!r} is not a value of {subject.path!r} (one of: {allowed})"
            return message, closest(const.value, list(subject.enum))
        return None
    for child in children(test):
        problem = check_test(child)
        if problem:
            return problem
    return None


def _is_generator(node: ast.Call) -> bool:
    return len(node.args) == 1 and isinstance(node.args[0], ast.GeneratorExp)


def _article(kind: str) -> str:
    return {"any": "a value", "array": "a list", "object": "an object", "null": "None"}.get(
        kind, f"a {kind}"
    )


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "a lambda",
        "ListComp": "a list comprehension",
        "SetComp": "a set comprehension",
        "DictComp": "a dict comprehension",
        "GeneratorExp": "a generator outside any()/all()",
        "Subscript": "a subscript",
        "IfExp": "a conditional expression",
        "Dict": "a dict",
        "Starred": "a starred expression",
        "NamedExpr": "an assignment expression",
        "JoinedStr": "an f-string",
        "Await": "await",
        "Yield": "yield",
        "Constant": "a literal",
        "Call": "a call",
    }
    return names.get(type(node).__name__, f"the syntax {type(node).__name__}")


# ---------------------------------------------------------------------------------------------
# matches(): RE2, so that no pattern can take more than linear time (SPEC §9)


@functools.cache
def _re2() -> tuple[Any, Any]:
    """The re2 module and the options every pattern is compiled with, imported on the first
    ``matches()`` (most rulesets have none)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the validation error says it; RE2 would also print to stderr
    options.never_capture = True  # only whether it matches is wanted
    return re2, options


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str) -> Any:
    # pattern and text as UTF-8 bytes: a lone surrogate (valid in JSON and YAML text) must not
    # make compiling or matching raise
    re2, options = _re2()
    return re2.compile(pattern.encode("utf-8", "surrogatepass"), options)


def pattern_problem(pattern: str) -> str | None:
    """Why ``matches()`` cannot run ``pattern`` (None when it can), for a validation error."""
    re2 = _re2()[0]
    try:
        _regex(pattern)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args else "invalid"
        return (
            f"invalid regular expression {pattern!r}: {detail} (matches() runs RE2 patterns, "
            "in linear time: no backreferences or lookaround; write \\z for \\Z)"
        )
    return None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` occurs anywhere in ``text`` (like Python's ``re.search``), on RE2."""
    return _regex(pattern).search(text.encode("utf-8", "surrogatepass")) is not None


# ---------------------------------------------------------------------------------------------
# Walking the tree


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr``."""
    match expr:
        case Arith(left=left, right=right) | Compare(left=left, right=right):
            return (left, right)
        case InList(operand=operand, values=values):
            return (operand, *values)
        case Exists(target=target) | Matches(target=target):
            return (target,)
        case Not(operand=operand):
            return (operand,)
        case And(operands=ops) | Or(operands=ops):
            return ops
        case Call(args=args):
            return args
        case Quantifier(items=items, body=body):
            return (items, body)
    return ()


def fields(expr: Expr) -> list[Field]:
    """Every path ``expr`` reads, in reading order (item fields included, with ``item`` set)."""
    found: list[Field] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Field):
            found.append(node)
        stack.extend(reversed(children(node)))
    return found


def output_reads(expr: Expr) -> set[str]:
    """Names of the outputs (``outputs.NAME``) that ``expr`` reads."""
    return {
        f.path.split(".")[1] for f in fields(expr) if not f.item and f.path.startswith("outputs.")
    }
