"""Stage two and three of the compiler: condition trees → durable_rules JSON, rulesets → policies.

Lowering keeps SPEC §3's three-valued logic on an engine that only answers true or false:
negations are pushed down to the leaves (De Morgan), so a rule fires exactly when its condition
is *true* — a comparison with a missing operand is false, and so is its negation. Every field a
comparison reads is guarded with ``$ex`` (durable answers ``a < b`` with true when ``b`` is
missing). Arithmetic, ``matches()`` and comparisons durable cannot express are computed in
exact decimals into synthetic fields of the fact (``_x0``...), absent when unknown — so there is
no float rounding at a boundary and no ``$div`` by zero (SIGFPE, SPEC §9). Every condition lives
on one fact and carries a positive anchor, so no rule is a bare negation and no join is emitted.

What durable cannot hold (``dealdesk.engines.durable.limits``) is computed in Python too: a long
``in`` list is one synthetic membership field, a condition whose normal form has too many
alternatives or whose rule would read more properties than a fact may hold is one synthetic
boolean, and a string too long for durable to compare in full goes in as a digest.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dealdesk.engines.durable.limits import MAX_STRING_BYTES, fits, rule_reads
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
from dealdesk.rules.meaning import Compiled, compile_expr, evaluate, lookup

ANCHOR = "_a"  # every fact carries _a = 1 and every condition requires it
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_DURABLE_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}

# ---------------------------------------------------------------------------------------------
# Formulas: positive boolean structure over two-valued atoms


@dataclass(frozen=True)
class Formula:
    pass


@dataclass(frozen=True)
class FConst(Formula):
    value: bool


@dataclass(frozen=True)
class FAnd(Formula):
    items: tuple[Formula, ...]


@dataclass(frozen=True)
class FOr(Formula):
    items: tuple[Formula, ...]


@dataclass(frozen=True)
class FExists(Formula):
    name: str  # durable property name: "customer.region", "$i.category", "_x0"
    present: bool = True


@dataclass(frozen=True)
class FCompare(Formula):
    name: str
    op: str
    rhs: Any  # a JSON literal, or a Ref to another property of the same fact


@dataclass(frozen=True)
class Ref:
    """Another property of the same fact, as the right side of a comparison."""

    name: str


@dataclass(frozen=True)
class FQuant(Formula):
    kind: str  # any | all
    items: str  # the list's property name in the fact
    body: Formula  # a flat conjunction of atoms on "$i." properties
    count: str  # synthetic field holding the list's length
    path: str = ""  # the list's deal path (for synthetic values of its elements)


TRUE, FALSE = FConst(True), FConst(False)


def f_and(*items: Formula) -> Formula:
    flat: list[Formula] = []
    for item in items:
        if item == FALSE:
            return FALSE
        if item == TRUE:
            continue
        flat.extend(item.items if isinstance(item, FAnd) else (item,))
    flat = list(dict.fromkeys(flat))
    return TRUE if not flat else flat[0] if len(flat) == 1 else FAnd(tuple(flat))


def f_or(*items: Formula) -> Formula:
    flat: list[Formula] = []
    for item in items:
        if item == TRUE:
            return TRUE
        if item == FALSE:
            continue
        flat.extend(item.items if isinstance(item, FOr) else (item,))
    flat = list(dict.fromkeys(flat))
    return FALSE if not flat else flat[0] if len(flat) == 1 else FOr(tuple(flat))


def to_json(formula: Formula) -> dict[str, Any]:
    """durable_rules JSON for a formula (without the anchor)."""
    match formula:
        case FAnd(items=items):
            return {"$and": [to_json(i) for i in items]}
        case FOr(items=items):
            return {"$or": [to_json(i) for i in items]}
        case FExists(name=name, present=present):
            return {"$ex" if present else "$nex": {name: 1}}
        case FCompare(name=name, op=op, rhs=rhs):
            value = {"$m": rhs.name} if isinstance(rhs, Ref) else rhs
            return {name: value} if op == "==" else {_DURABLE_OPS[op]: {name: value}}
        case FQuant(kind=kind, items=items, body=body):
            return {f"${'iany' if kind == 'any' else 'iall'}": {items: to_json(body)}}
    raise TypeError(f"cannot express {formula!r} in durable_rules")


MAX_ALTERNATIVES = 64
# `x in [...]` with more values is one synthetic field, not one durable rule per value.
MAX_LISTED_VALUES = 8


class TooComplex(ValueError):
    """A condition whose disjunctive normal form has more than MAX_ALTERNATIVES branches."""


def alternatives(formula: Formula) -> list[tuple[Formula, ...]]:
    """The disjunctive normal form of ``formula``: conjunctions of atoms, any of which suffices.

    durable_rules refuses rules whose nested ``$or``/``$and`` expand past its expression limit
    (error 113, seen with 14 two-atom branches), so each conjunction becomes a rule of its own.
    """
    match formula:
        case FConst(value=value):
            return [()] if value else []
        case FOr(items=items):
            result: list[tuple[Formula, ...]] = []
            for item in items:
                result.extend(alternatives(item))
                _check_size(result)
            return _dedupe(result)
        case FAnd(items=items):
            product: list[tuple[Formula, ...]] = [()]
            for item in items:
                product = [left + right for left in product for right in alternatives(item)]
                _check_size(product)
            return _dedupe(product)
    return [(formula,)]


def _check_size(branches: list[tuple[Formula, ...]]) -> None:
    if len(branches) > MAX_ALTERNATIVES:
        raise TooComplex(
            f"the condition expands to more than {MAX_ALTERNATIVES} alternatives; "
            "split the rule or derive a fact in a plugin"
        )


def _dedupe(branches: list[tuple[Formula, ...]]) -> list[tuple[Formula, ...]]:
    seen: dict[frozenset[Formula], tuple[Formula, ...]] = {}
    for branch in branches:
        atoms = tuple(dict.fromkeys(branch))
        present = {a.name for a in atoms if isinstance(a, FExists) and a.present}
        if any(isinstance(a, FExists) and not a.present and a.name in present for a in atoms):
            continue  # `x exists and x does not exist` never holds
        seen.setdefault(frozenset(atoms), atoms)
    return list(seen.values())


def rule_conditions(formula: Formula) -> list[dict[str, Any]]:
    """durable rule bodies for a condition, one per alternative: each on one fact, anchored
    (so no rule is a bare negation), each a flat ``$and`` of atoms."""
    bodies = []
    for branch in alternatives(formula):
        atoms = [{ANCHOR: 1}, *(to_json(atom) for atom in branch)]
        bodies.append({"all": [{"m": {"$and": atoms} if len(atoms) > 1 else atoms[0]}]})
    return bodies


# ---------------------------------------------------------------------------------------------
# Synthetic fields and the shape of the fact


@dataclass(frozen=True)
class Synthetic:
    """A value computed in Python into the fact: ``name`` at the top, or in each element of
    ``items`` when ``items`` is set. ``kind`` is value (a number or boolean computed from ``expr``), count (the
    length of the list ``expr``), or formula (``formula`` tested on each element's row)."""

    name: str
    expr: Expr | None
    items: str | None = None
    kind: str = "value"  # value | count | formula (a lowered formula over the element's row)
    formula: Formula | None = None


@dataclass
class FactPlan:
    """Which deal paths and synthetic values a set of conditions needs in its fact."""

    paths: set[str] = field(default_factory=set)
    item_paths: dict[str, set[str]] = field(default_factory=dict)
    synthetics: list[Synthetic] = field(default_factory=list)
    _layout: _Layout | None = field(default=None, init=False, repr=False, compare=False)

    def layout(self) -> _Layout:
        """The plan in build order, worked out once: building runs for every deal."""
        if self._layout is None:
            lists = []
            for items, names in sorted(self.item_paths.items()):
                mine = [s for s in self.synthetics if s.items == items]
                lists.append(
                    (
                        _path_getter(items),
                        fact_name(items),
                        _steps(_tree(names)),
                        tuple(_compiled(s) for s in mine if s.kind != "formula"),
                        tuple(s for s in mine if s.kind == "formula"),
                    )
                )
            paths = _tree(self.paths)
            self._layout = _Layout(
                _steps(paths),
                tuple(key for key in ("id", "sid") if key in paths),
                tuple(lists),
                tuple(_compiled(s) for s in self.synthetics if s.items is None),
            )
        return self._layout

    def build(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The fact for ``data`` (a deal with derived facts and ``outputs``): only the paths the
        conditions read, numbers as floats, missing and null values left out."""
        return self.build_checked(data)[0]

    def build_checked(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """:meth:`build`'s fact, and whether every number in it is :func:`plain_number`."""
        layout = self.layout()
        odd: list[Any] = []  # the numbers that are not plain
        fact = _project(data, layout.paths, odd)
        for reserved in layout.reserved:  # see fact_name()
            if reserved in fact:
                fact[f"_{reserved}"] = fact.pop(reserved)
        fact[ANCHOR] = 1
        for get_items, items_name, fields, values, formulas in layout.lists:
            elements = get_items(data)
            if not isinstance(elements, list):
                continue
            projected = []
            for element in elements:
                if isinstance(element, Mapping):
                    row = _project(element, fields, odd)
                    item: Any = element
                else:
                    row, item = {}, None
                for name, compute in values:
                    value = compute(data, item)
                    if value is not None:
                        row[name] = _checked(engine_value(value), odd)
                for synthetic in formulas:  # after the values: a formula may test them
                    row[synthetic.name] = holds(synthetic.formula or TRUE, row)
                projected.append(row)
            _put(fact, items_name, projected)
        for name, compute in layout.top:
            value = compute(data, None)
            if value is not None:
                fact[name] = _checked(engine_value(value), odd)
        return fact, not odd


def plain_number(number: float) -> bool:
    """Whether Python writes ``number`` without an exponent: 0, or 1e-4 <= |number| < 1e16
    (where orjson writes the same text too)."""
    return number == 0.0 or 1e-4 <= abs(number) < 1e16


def _checked(value: Any, odd: list[Any]) -> Any:
    """``value``, noted in ``odd`` when it is a number that is not plain."""
    if type(value) is float and not plain_number(value):
        odd.append(value)
    return value


# A projection: each key maps to None (take the value) or to the projection of its mapping.
_Tree = dict[str, Any]
# The same, compiled for building: (key, None or the steps of its mapping), in tree order.
_Steps = tuple[tuple[str, Any], ...]


def _tree(paths: set[str]) -> _Tree:
    tree: _Tree = {}
    for path in sorted(paths):
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if leaf not in node:
            node[leaf] = None
    return tree


def _steps(tree: _Tree) -> _Steps:
    return tuple((key, None if sub is None else _steps(sub)) for key, sub in tree.items())


def _project(data: Mapping[str, Any], steps: _Steps, odd: list[Any]) -> dict[str, Any]:
    """The parts of ``data`` that ``steps`` name, as durable_rules should see them; numbers that
    are not plain are noted in ``odd``."""
    out: dict[str, Any] = {}
    for key, sub in steps:
        value = data.get(key)
        if value is None:
            continue
        if sub is None:
            kind = type(value)
            if kind is float or kind is Decimal:
                number = float(value)
                # plain, hence finite: engine_value would give it as it is
                if 1e-4 <= number < 1e16 or -1e16 < number <= -1e-4:
                    out[key] = number
                else:
                    out[key] = _checked(engine_value(value), odd)
            elif kind is bool:
                out[key] = value
            elif (
                kind is str
                and len(value) <= _SHORT_TEXT
                and value.isascii()
                and not value.startswith(LONG_TEXT)
            ):
                out[key] = value  # what engine_value gives text durable compares in full
            else:
                out[key] = _checked(engine_value(value), odd)
        elif isinstance(value, dict | Mapping):
            out[key] = _project(value, sub, odd)  # present, even if none of its fields are
    return out


def _path_getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """``lookup(data, path)`` for one path, split once."""
    parts = tuple(path.split("."))

    def get(data: Mapping[str, Any]) -> Any:
        value: Any = data
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def _compiled(synthetic: Synthetic) -> tuple[str, Compiled]:
    """``synthetic``'s name and ``fn(data, item)`` computing its value (None: left out)."""
    expr = synthetic.expr
    assert expr is not None  # only formula synthetics have none, and they are built apart
    if synthetic.kind == "count":
        get = _path_getter(expr.path) if isinstance(expr, Field) else None

        def count(data: Mapping[str, Any], item: Any) -> Any:
            elements = get(data) if get is not None else None
            return float(len(elements)) if isinstance(elements, list) else None

        return synthetic.name, count
    return synthetic.name, compile_expr(expr)


@dataclass(frozen=True)
class _Layout:
    paths: _Steps
    reserved: tuple[str, ...]  # deal keys durable owns (id, sid) that the fact holds elsewhere
    # (list getter, fact name, element projection, value synthetics, formula synthetics)
    lists: tuple[
        tuple[
            Callable[[Mapping[str, Any]], Any],
            str,
            _Steps,
            tuple[tuple[str, Compiled], ...],
            tuple[Synthetic, ...],
        ],
        ...,
    ]
    top: tuple[tuple[str, Compiled], ...]


def holds(formula: Formula, row: Mapping[str, Any]) -> bool:
    """Whether ``formula`` (atoms on ``$i.`` properties) holds for one projected list element,
    with durable_rules' meaning of each atom."""
    match formula:
        case FConst(value=value):
            return value
        case FAnd(items=items):
            return all(holds(i, row) for i in items)
        case FOr(items=items):
            return any(holds(i, row) for i in items)
        case FExists(name=name, present=present):
            return (lookup(row, name.removeprefix("$i.")) is not None) == present
        case FCompare(name=name, op=op, rhs=rhs):
            value = lookup(row, name.removeprefix("$i."))
            if value is None or isinstance(rhs, Ref):
                return False
            if isinstance(value, bool) != isinstance(rhs, bool) or isinstance(
                value, str
            ) != isinstance(rhs, str):
                return op == "!="
            return {
                "==": value == rhs,
                "!=": value != rhs,
                "<": value < rhs,
                "<=": value <= rhs,
                ">": value > rhs,
                ">=": value >= rhs,
            }[op]
    raise TypeError(formula)


def fact_name(path: str) -> str:
    """Where a deal path lives in the fact: durable_rules owns the top-level ``id`` and ``sid``
    of every fact, so a deal's own ``id`` moves to ``_id`` (user paths never start with ``_``)."""
    return f"_{path}" if path.split(".")[0] in ("id", "sid") else path


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set a list's projected elements at its dotted ``path``, beside what is projected there."""
    *parents, leaf = path.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[leaf] = value


# Starts the stand-in for a string durable_rules cannot compare exactly (see engine_value).
LONG_TEXT = "\x00dealdesk:sha256:"
# The longest escaped JSON text of one character (a surrogate pair, escaped twice).
_MAX_ESCAPED = len(json.dumps("\U0001f600")) - 2
# Text no longer than this is compared in full by durable, however it escapes.
_SHORT_TEXT = MAX_STRING_BYTES // _MAX_ESCAPED
# A lone surrogate (YAML and JSON allow them) escapes like half of a pair: "\ud83d\ude00" would
# pass for the emoji it spells. Text holding one goes in as a stand-in, equal only to itself.
_SURROGATE = re.compile("[\ud800-\udfff]")


def engine_value(value: Any) -> Any:
    """A deal value or a literal as durable_rules should see it: every number a finite float
    (an integer 0 as a divisor kills the process, SPEC §9), objects as presence markers, and
    text too long for durable to compare in full as a digest (equal exactly when the texts are).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if (
            len(value) * _MAX_ESCAPED <= MAX_STRING_BYTES
            and (value.isascii() or not _SURROGATE.search(value))
            and not value.startswith(LONG_TEXT)
        ):
            return value
        return _engine_text(value)
    if isinstance(value, Decimal | int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond a float's range
            number = math.inf if value > 0 else -math.inf
        # beyond a float's range: the largest float keeps the order with every literal
        return math.copysign(sys.float_info.max, number) if math.isinf(number) else number
    if isinstance(value, dict | Mapping):
        return {}
    if isinstance(value, list):
        return []
    return str(value)


def _engine_text(text: str) -> str:
    """``text``, or its stand-in when durable_rules would compare only part of it (durable takes
    string lengths modulo 65,536) or would not tell it from other text (a lone surrogate). Text
    that merely starts like a stand-in gets one of its own, so no value passes for another's."""
    if (
        len(json.dumps(text)) - 2 <= MAX_STRING_BYTES
        and not _SURROGATE.search(text)
        and not text.startswith(LONG_TEXT)
    ):
        return text
    return LONG_TEXT + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Lowering


class ConditionCompiler:
    """Lowers condition trees to formulas, collecting the fact plan they need.

    One compiler serves every condition of one stratum, so synthetic names are shared.
    """

    def __init__(self) -> None:
        self.plan = FactPlan()
        self._synthetic_names: dict[tuple[Any, ...], str] = {}

    def compile(self, expr: Expr) -> list[dict[str, Any]]:
        """The durable rule bodies for a condition, one per alternative (none: never true).

        A condition durable cannot hold as rules — more than MAX_ALTERNATIVES alternatives, or
        an alternative reading more properties than a durable fact may hold — is computed in
        Python into one synthetic boolean instead, with the same three-valued meaning.
        """
        saved = self._save()
        try:
            bodies = rule_conditions(self.lower(expr))
            if all(fits(rule_reads(body)) for body in bodies):
                return bodies
        except TooComplex:
            pass
        self._restore(saved)
        name = self.synthetic(expr, None)
        return rule_conditions(f_and(FExists(name), FCompare(name, "==", True)))

    def _save(self) -> tuple[Any, ...]:
        # Paths are bounded by the deal schema; synthetics grow with the rules and are only added
        # at the end, so their counts are enough.
        plan = self.plan
        return (
            set(plan.paths),
            {items: set(names) for items, names in plan.item_paths.items()},
            len(plan.synthetics),
            len(self._synthetic_names),
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        """Forget what a lowering that was given up added to the plan."""
        plan = self.plan
        plan.paths, plan.item_paths, synthetics, names = saved
        del plan.synthetics[synthetics:]
        for key in list(self._synthetic_names)[names:]:
            del self._synthetic_names[key]
        plan._layout = None

    def lower(self, expr: Expr, positive: bool = True, items: str | None = None) -> Formula:
        """The formula that is true exactly where ``expr`` (or ``not expr``) is true."""
        match expr:
            case Not(operand=operand):
                return self.lower(operand, not positive, items)
            case And(operands=ops):
                parts = [self.lower(o, positive, items) for o in ops]
                return f_and(*parts) if positive else f_or(*parts)
            case Or(operands=ops):
                parts = [self.lower(o, positive, items) for o in ops]
                return f_or(*parts) if positive else f_and(*parts)
            case Exists(target=target):
                name = self.field_name(target, items)
                return FExists(name, positive)
            case Compare(op=op, left=left, right=right):
                return self.comparison(expr, op if positive else _NEGATE[op], left, right, items)
            case InList(values=values) if len(values) > MAX_LISTED_VALUES:
                # one durable rule per value would crowd the ruleset: test membership in Python
                name = self.synthetic(expr, items)
                return f_and(FExists(name), FCompare(name, "==", positive))
            case InList(operand=operand, values=values, negated=negated):
                member = positive != negated
                parts = [
                    self.comparison(expr, "==" if member else "!=", operand, v, items)
                    for v in values
                ]
                return f_or(*parts) if member else f_and(*parts)
            case Matches():
                name = self.synthetic(expr, items)
                return f_and(FExists(name), FCompare(name, "==", positive))
            case Quantifier(kind=kind, items=list_field, body=body):
                assert isinstance(list_field, Field) and body is not None
                list_name = list_field.path
                self.plan.item_paths.setdefault(list_name, set())
                count = self.count(list_field)
                inner = self.quantify(kind, list_name, self.lower(body, True, list_name), count)
                return inner if positive else self.complement(inner)
            case Const(value=value):
                if value is None:
                    return FALSE
                return FConst(bool(value) == positive)
        raise TypeError(f"not a condition: {expr!r}")

    def complement(self, formula: Formula) -> Formula:
        """The exact two-valued negation of ``formula`` (true wherever it is not true)."""
        match formula:
            case FConst(value=value):
                return FConst(not value)
            case FAnd(items=items):
                return f_or(*(self.complement(i) for i in items))
            case FOr(items=items):
                return f_and(*(self.complement(i) for i in items))
            case FExists(name=name, present=present):
                return FExists(name, not present)
            case FCompare(name=name, op=op, rhs=rhs):
                return FCompare(name, _NEGATE[op], rhs)
            case FQuant(kind=kind, items=items, body=body, count=count, path=path):
                # no element where the body holds: no list, an empty list, or all elements fail
                other = "all" if kind == "any" else "any"
                empty = f_or(FExists(items, False), FCompare(count, "==", 0.0))
                return f_or(empty, self.quantify(other, path, self.complement(body), count))
        raise TypeError(formula)

    def quantify(self, kind: str, path: str, body: Formula, count: str) -> Formula:
        """``$iany``/``$iall`` over the list at ``path`` with a body durable evaluates right.

        durable_rules mis-evaluates ``$or`` inside ``$iany``/``$iall`` (seen here: wrong for
        most lists), so bodies are flat conjunctions: any(A or B) is any(A) or any(B), and an
        all() over a disjunction tests a per-element synthetic boolean computed in Python.
        """
        items = fact_name(path)
        branches = alternatives(body)
        nonempty = FCompare(count, ">", 0.0)
        if kind == "any":
            return f_or(
                *(FQuant("any", items, f_and(*b), count, path) if b else nonempty for b in branches)
            )
        if not branches:
            return FALSE
        if len(branches) == 1:
            if not branches[0]:
                return nonempty
            return FQuant("all", items, f_and(*branches[0]), count, path)
        name = self.formula_synthetic(path, f_or(*(f_and(*b) for b in branches)))
        return FQuant("all", items, FCompare(f"$i.{name}", "==", True), count, path)

    def formula_synthetic(self, path: str, formula: Formula) -> str:
        key = ("formula", path, formula)
        if key not in self._synthetic_names:
            name = f"_x{len(self._synthetic_names)}"
            self._synthetic_names[key] = name
            self.plan.synthetics.append(Synthetic(name, None, path, "formula", formula))
        return self._synthetic_names[key]

    def comparison(
        self, whole: Expr, op: str, left: Expr, right: Expr, items: str | None
    ) -> Formula:
        if isinstance(left, Const) and isinstance(right, Const):
            result = evaluate(Compare(whole.pos, op, left, right), {})
            return FConst(result is True)
        if not isinstance(left, Field) and isinstance(right, Field):
            left, right, op = right, left, _FLIP[op]
        if not isinstance(left, Field) or (items is not None and not isinstance(right, Const)):
            # durable compares a property with a literal or a top-level property only; inside
            # $iany/$iall it cannot read a second field of the element
            name = self.synthetic(Compare(whole.pos, op, left, right), items)
            return f_and(FExists(name), FCompare(name, "==", True))
        lhs = self.field_name(left, items)
        guards = [FExists(lhs)]
        if isinstance(right, Field):
            rhs_name = self.field_name(right, items)
            guards.append(FExists(rhs_name))
            rhs: Any = Ref(rhs_name)
        elif isinstance(right, Const):
            if right.value is None:
                return FALSE
            rhs = engine_value(right.value)
        else:
            rhs_name = self.synthetic(right, items)
            guards.append(FExists(rhs_name))
            rhs = Ref(rhs_name)
        return f_and(*guards, FCompare(lhs, op, rhs))

    def field_name(self, expr: Expr, items: str | None) -> str:
        if isinstance(expr, Field):
            if expr.item:
                assert items is not None
                self.plan.item_paths.setdefault(items, set()).add(expr.path)
                return f"$i.{expr.path}"
            self.plan.paths.add(expr.path)
            return fact_name(expr.path)
        return self.synthetic(expr, items)

    def synthetic(self, expr: Expr, items: str | None) -> str:
        key = ("value", items, expr)
        if key not in self._synthetic_names:
            name = f"_x{len(self._synthetic_names)}"
            self._synthetic_names[key] = name
            self.plan.synthetics.append(Synthetic(name, expr, items))
        name = self._synthetic_names[key]
        return f"$i.{name}" if items is not None else name

    def count(self, list_field: Field) -> str:
        key = ("count", None, list_field.path)
        if key not in self._synthetic_names:
            name = f"_x{len(self._synthetic_names)}"
            self._synthetic_names[key] = name
            self.plan.synthetics.append(Synthetic(name, list_field, None, "count"))
        return self._synthetic_names[key]


# ---------------------------------------------------------------------------------------------
# Decision table cells (S-FEEL unary tests)


def definition_digest(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:12]
