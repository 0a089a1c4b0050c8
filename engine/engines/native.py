"""The native engine: each stratum's conditions compiled once into one Python function.

For every stratum of every policy, :class:`StratumSource` writes the source of a function
``match(data) -> [rule, ...]`` from the checked condition trees: each path the stratum reads is
looked up once, then each rule's condition is an inline Python test in evaluation order.
Nothing a ruleset says is ever written into that source: literals, dictionary keys, patterns,
rules and the closures it falls back on are passed in as tuples (``K``, ``C``, ``R``) and the
source names them only by index, so the text is made of our own identifiers, operators and
numbers (a test checks it). An ``any``/``all`` over a deal's list is a helper function in the
same source that loops over the list with its body inline. What has no inline form —
arithmetic and function calls, nested quantifiers, very deep nesting — is the closure
:func:`~dealdesk.rules.meaning.compile_expr` builds, called from the source, so the meaning is
the closures' exactly.

Conditions are three-valued (SPEC §3: a comparison with a missing value is unknown); a rule
fires when its condition is True. The source never builds the unknown value: each test is
written for the outcome it needs — "is True" or "is False" — so ``not``, ``and`` and ``or``
become Python's short-circuit operators over those tests (``not x`` is True exactly when ``x``
is False; ``a and b`` is False as soon as one operand is False, and True only when none is
False or unknown).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dealdesk.engines.base import Engine
from dealdesk.evaluate import evaluation_order
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
    children,
    search,
)
from dealdesk.rules.meaning import _compare, _getter, compile_expr, to_decimal

if TYPE_CHECKING:
    from dealdesk.manager import RegisteredAction
    from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet

#: ``match(view)``: the rules of one stratum whose condition is True on ``view``, in order.
StratumMatcher = Callable[[Mapping[str, Any]], list["CompiledRule"]]

# the only operator text the source may hold: one of the checked tree's six comparisons, taken
# from this table (a KeyError for anything else), never from the tree itself
_PYTHON_OPS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

# deeper conditions are called as closures: the source stays far below Python's own nesting
# limits (about 200 parentheses), whatever the ruleset
_INLINE_DEPTH = 24

# a condition whose value is always True, False or None (unknown); any other node (a path, a
# constant, arithmetic) may hold any value, and is tested as _compare and the closures test it
_EXACT = (Compare, InList, Exists, Matches, Not, And, Or)


def _exact(expr: Expr) -> bool:
    return isinstance(expr, _EXACT) or (isinstance(expr, Quantifier) and expr.kind != "sum")


def _depth(expr: Expr) -> int:
    match expr:
        case Not(operand=operand):
            return 1 + _depth(operand)
        case And(operands=operands) | Or(operands=operands):
            return 1 + max(_depth(o) for o in operands)
        case _:
            return 1


def _has_quantifier(expr: Expr) -> bool:
    return isinstance(expr, Quantifier) or any(_has_quantifier(e) for e in children(expr))


def _any_equal(value: Any, values: tuple[Any, ...]) -> bool:
    return any(_compare("==", value, v) for v in values)


@dataclass
class _Scope:
    """Where the source being written reads its paths: a function's first lines (the deal's
    paths) and, inside a quantifier's loop, the lines that read the element's paths."""

    indent: str
    lookups: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    looping: bool = False  # inside a quantifier's loop over a list
    item: list[str] = field(default_factory=list)
    item_paths: dict[str, str] = field(default_factory=dict)

    @property
    def element(self) -> str:
        """The name of the current list element, for a closure called in the loop."""
        return "it" if self.looping else "None"


class StratumSource:
    """The source of one stratum's ``match(data)`` and the values it refers to by index."""

    def __init__(self) -> None:
        self.constants: list[Any] = []  # K: literals, keys, patterns, lists
        self.closures: list[Any] = []  # C: compiled closures and path walkers
        self.helpers: list[str] = []  # the sources of the quantifiers' functions
        self.scope = _Scope("    ")  # where the paths being read go: match's first lines
        self.names = itertools.count()

    def constant(self, value: Any) -> str:
        self.constants.append(value)
        return f"K[{len(self.constants) - 1}]"

    def closure(self, fn: Any) -> str:
        self.closures.append(fn)
        return f"C[{len(self.closures) - 1}]"

    def temporary(self) -> str:
        return f"t{next(self.names)}"

    # -- values

    def path(self, target: Field) -> str:
        """The variable that holds ``target``'s value, read once at the top of the function
        (a deal's path) or of the loop over a list (an element's path, in a quantifier)."""
        scope = self.scope
        item = target.item and scope.looping
        paths, lines = (scope.item_paths, scope.item) if item else (scope.paths, scope.lookups)
        found = paths.get(target.path)
        if found is not None:
            return found
        name = paths[target.path] = f"v{next(self.names)}"
        base = "it" if item else "data"
        indent = scope.indent + "    " if item else scope.indent
        first, *rest = target.path.split(".")
        # the careful walk answers whatever is not a plain dict on the way (a missing group is
        # None): None unless it is a mapping
        walk = f"{self.closure(_getter(target.path))}({base}, None)"
        lines.append(f"{indent}{name} = {base}.get({self.constant(first)})")
        if item:  # a list may hold anything: only a dict element is read straight
            lines[-1] += f" if type(it) is dict else {walk}"
        for depth, part in enumerate(rest):
            lines += [
                f"{indent}{'    ' * depth}if type({name}) is dict:",
                f"{indent}{'    ' * depth}    {name} = {name}.get({self.constant(part)})",
            ]
        for depth in range(len(rest) - 1, -1, -1):
            lines += [
                f"{indent}{'    ' * depth}elif {name} is not None:",
                f"{indent}{'    ' * depth}    {name} = {walk}",
            ]
        return name

    def value(self, expr: Expr) -> tuple[str, bool]:
        """Source for ``expr``'s value, and whether it is a plain name (safe to repeat)."""
        if isinstance(expr, Field) and (not expr.item or self.scope.looping):
            return self.path(expr), True
        if isinstance(expr, Const):
            return self.constant(expr.value), True
        return f"{self.closure(compile_expr(expr))}(data, {self.scope.element})", False

    def named(self, expr: Expr) -> tuple[str, str]:
        """``(first, name)``: ``first`` evaluates ``expr`` into ``name`` (a walrus for anything
        but a path or constant), for source that reads the value more than once."""
        code, plain = self.value(expr)
        if plain:
            return code, code
        name = self.temporary()
        return f"({name} := {code})", name

    # -- conditions

    def test(self, expr: Expr, want: bool) -> str:
        """Source true exactly when ``expr`` is known and equals ``want`` (``value is not None
        and value == want``, as ``and``/``or`` test their operands); for a condition (always
        True, False or None) that is ``value is want``."""
        if _depth(expr) > _INLINE_DEPTH:
            return f"({self.closure(compile_expr(expr))}(data, {self.scope.element}) is {want})"
        match expr:
            case Not(operand=operand):
                if _exact(operand):
                    return self.test(operand, not want)
                first, name = self.named(operand)
                return (
                    f"({first} is not None and {'not ' if want else ''}{name})"  # only truth counts
                )
            case And(operands=operands):
                if want:  # True: no operand False or unknown
                    return "(" + " and ".join(self.holds_not(o, False) for o in operands) + ")"
                return "(" + " or ".join(self.test(o, False) for o in operands) + ")"
            case Or(operands=operands):
                if want:
                    return "(" + " or ".join(self.test(o, True) for o in operands) + ")"
                return "(" + " and ".join(self.holds_not(o, True) for o in operands) + ")"
            case Compare(op=op, left=left, right=right):
                return self.comparison(op, left, right, want)
            case InList(operand=operand, values=values, negated=negated):
                return self.membership(operand, tuple(v.value for v in values), negated, want)
            case Exists(target=target):
                code, _ = self.value(target)
                return f"({code} is {'not ' if want else ''}None)"
            case Matches(target=target, pattern=pattern):
                first, name = self.named(target)
                found = f"_search({self.constant(pattern)}, {name})"
                return f"(isinstance({first}, str) and {found if want else 'not ' + found})"
            case Quantifier(kind=kind) if kind != "sum":  # any/all: always True or False
                return f"({self.quantifier(expr)} is {want})"
            case Const(value=value):
                return str(value is not None and value == want)
        first, name = self.named(expr)  # a path or a value tested as a condition
        return f"({first} is not None and {name} == {want})"

    def quantifier(self, expr: Quantifier) -> str:
        """Source for an ``any``/``all`` condition's value (True or False): a call of a helper
        function that loops over the list, its body inline; nested quantifiers and lists that
        are not a deal's path are the closure's."""
        if self.scope.looping or expr.items.item or _has_quantifier(expr.body):
            return f"{self.closure(compile_expr(expr))}(data, {self.scope.element})"
        items = self.path(expr.items)
        outer, self.scope = self.scope, _Scope("    ", looping=True)
        try:
            fires = self.fires(expr.body)
        finally:
            inner, self.scope = self.scope, outer
        name = f"q{len(self.helpers)}"
        found, otherwise = ("True", "False") if expr.kind == "any" else ("False", "True")
        self.helpers.append(
            "\n".join(
                [
                    f"def {name}(data, items):",
                    *inner.lookups,
                    *(["    if not items:", "        return False"] if expr.kind == "all" else []),
                    "    for it in items:",
                    *inner.item,
                    f"        if {'' if expr.kind == 'any' else 'not '}{fires}:",
                    f"            return {found}",
                    f"    return {otherwise}",
                ]
            )
        )
        return f"{name}(data, {items} if isinstance({items}, list) else ())"

    def holds_not(self, expr: Expr, want: bool) -> str:
        """Source true when ``expr`` is known and not ``want``: an operand of ``and`` (want
        False) or ``or`` (want True) that neither decides nor makes the result unknown."""
        if _exact(expr):
            return self.test(expr, not want)
        if isinstance(expr, Const):
            return str(expr.value is not None and not expr.value == want)
        first, name = self.named(expr)
        return f"({first} is not None and not {name} == {want})"

    def comparison(self, op: str, left: Expr, right: Expr, want: bool) -> str:
        python_op = _PYTHON_OPS[op]
        operator = self.constant(op)
        if isinstance(right, Const) and right.value is not None:
            constant = right.value
            operand: Any  # what the value is compared with when its type is ``kind``
            # a Decimal against a number, a text against a text, a boolean against a boolean:
            # compared straight away; anything else as _compare decides (None: unknown)
            if isinstance(constant, bool):
                kind, operand = "bool", constant
            elif (number := to_decimal(constant)) is not None:
                kind, operand = "_Decimal", number
            else:
                kind, operand = "str", constant
            first, name = self.named(left)
            direct = f"{name} {python_op} {self.constant(operand)}"
            if not want:
                direct = f"not ({direct})"
            slow = f"_compare({operator}, {name}, {self.constant(constant)}) is {want}"
            return f"({direct} if type({first}) is {kind} else {slow})"
        left_code, _ = self.value(left)
        right_code, _ = self.value(right)
        return f"(_compare({operator}, {left_code}, {right_code}) is {want})"

    def membership(self, operand: Expr, values: tuple[Any, ...], negated: bool, want: bool) -> str:
        # as meaning._membership: text values are looked up in a set, anything else compared
        texts = frozenset(v for v in values if isinstance(v, str) and to_decimal(v) is None)
        first, name = self.named(operand)
        found = f"_any_equal({name}, {self.constant(values)})"
        if len(texts) == len(values):
            found = f"({name} in {self.constant(texts)} if type({name}) is str else {found})"
        return f"({first} is not None and {found} is {want != negated})"

    def fires(self, condition: Expr) -> str:
        """Source true when the rule with ``condition`` fires: its value is True."""
        if _exact(condition):
            return self.test(condition, True)
        first, _ = self.named(condition)
        return f"({first} is True)"

    def function(self, conditions: list[Expr]) -> str:
        """The source of ``match(data)`` for rules whose conditions are ``conditions``."""
        tests = [
            f"    if {self.fires(c)}:\n        matched.append(R[{i}])"
            for i, c in enumerate(conditions)
        ]
        return "\n\n".join(
            [
                *self.helpers,
                "\n".join(
                    [
                        "def match(data):",
                        "    if type(data) is not dict:",  # a mapping of another kind: as a dict
                        "        data = dict(data)",
                        *self.scope.lookups,
                        "    matched = []",
                        *tests,
                        "    return matched",
                    ]
                ),
            ]
        )


def compile_stratum(rules: list[CompiledRule], label: str) -> StratumMatcher:
    """``match(data)`` for ``rules`` (already in evaluation order)."""
    source = StratumSource()
    text = source.function([r.condition for r in rules])
    namespace: dict[str, Any] = {
        "K": tuple(source.constants),
        "C": tuple(source.closures),
        "R": tuple(rules),
        "_compare": _compare,
        "_any_equal": _any_equal,
        "_search": search,
        "_Decimal": Decimal,
    }
    # the source holds no ruleset text (see the module docstring): it is ours to compile
    exec(compile(text, f"<dealdesk native: {label}>", "exec"), namespace)  # noqa: S102
    match: StratumMatcher = namespace["match"]
    match.source = text  # type: ignore[attr-defined]  # for tests and --debug
    return match


class NativeEngine(Engine):
    name = "native"

    def __init__(self, policy_set: PolicySet, actions: Mapping[str, RegisteredAction]):
        super().__init__(policy_set, actions)
        self.strata: dict[str, list[StratumMatcher]] = {
            name: [
                compile_stratum(
                    sorted(s.rules, key=evaluation_order), f"policy {name} stratum {index}"
                )
                for index, s in enumerate(policy.strata)
            ]
            for name, policy in policy_set.policies.items()
        }

    def match(self, policy: Policy, stratum: int, view: Mapping[str, Any]) -> list[CompiledRule]:
        return self.strata[policy.name][stratum](view)


ENGINE = NativeEngine
