"""Why each rule fired or did not, for one deal: the data behind ``dealdesk explain``.

:func:`explain_deal` evaluates the deal, then goes through every policy's rules and table rows
in priority order and evaluates each condition directly (:func:`dealdesk.rules.meaning.evaluate`,
three-valued) on what the rule saw: the deal with its derived facts plus the policy's outputs.
A rule reading ``outputs.X`` runs after every rule that can set ``X`` (SPEC §3), so the final
outputs are exactly what it saw. Each top-level conjunct of a condition (each non-``-`` cell of a
table row) is shown with its value and the values of the paths it reads, and a rule whose
condition is true but that did not fire says why (the table's hit policy, the ruleset's effective
window). The result is plain data; the CLI formats it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dealdesk.combine import plain
from dealdesk.evaluate import Firing, PolicyRun
from dealdesk.rules.expressions import (
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
    fields,
)
from dealdesk.rules.meaning import evaluate, lookup
from dealdesk.rules.policyset import CompiledRule, Policy

__all__ = [
    "Conjunct",
    "DealExplanation",
    "PolicyExplanation",
    "Read",
    "RuleExplanation",
    "explain_deal",
    "format_expr",
    "format_value",
    "truth",
]


@dataclass
class Read:
    """One path a condition reads and its value in the deal (``None`` when missing)."""

    path: str
    value: Any


@dataclass
class Conjunct:
    """One top-level part of a condition (or one cell of a table row).

    :ivar text: the part as an expression (``totals.product >= 500000``), or for a table cell
        ``INPUT: CELL`` (``services_ratio: [0.20..0.40]``).
    :ivar value: True, False or None (unknown: a value it needs is missing).
    :ivar reads: the paths it reads, each once, with their values.
    :ivar detail: a one-line account, e.g. ``totals.product = 1000000 (>= 500000: true)``.
    """

    text: str
    value: bool | None
    reads: list[Read] = field(default_factory=list)
    detail: str = ""


@dataclass
class RuleExplanation:
    """One rule, or one row of a decision table, and why it fired or not."""

    id: str
    policy: str
    ruleset: str
    location: str
    priority: int
    when: str  # the condition as written (for a table row: its cells other than '-')
    value: bool | None  # the whole condition, three-valued
    fired: bool
    conjuncts: list[Conjunct]
    why: str  # one sentence: why it fired, or why not
    row: int | None = None  # 1-based row number for a table row
    hit: str | None = None  # the table's hit policy
    description: str = ""
    effects: list[str] = field(default_factory=list)  # what it did when it fired

    @property
    def label(self) -> str:
        """``PM-5`` for a rule, ``PM-5 row 2`` for a table row."""
        return self.id if self.row is None else f"{self.id} row {self.row}"


@dataclass
class PolicyExplanation:
    name: str
    status: str
    rules: list[RuleExplanation]
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DealExplanation:
    """A deal's decision and, unless the deal was invalid, every policy's rules explained."""

    deal_id: Any
    status: str
    approvals: list[str]
    record: dict[str, Any]
    policies: list[PolicyExplanation]
    errors: list[dict[str, Any]] = field(default_factory=list)

    def rules(self) -> list[RuleExplanation]:
        return [rule for policy in self.policies for rule in policy.rules]


def truth(value: bool | None) -> str:
    """``true``, ``false`` or ``unknown``."""
    return "unknown" if value is None else ("true" if value else "false")


# ---------------------------------------------------------------------------------------------
# Explaining


def explain_deal(
    record: Mapping[str, Any],
    runs: Mapping[str, PolicyRun],
    data: Mapping[str, Any] | None,
    *,
    rule_id: str | None = None,
) -> DealExplanation:
    """Explain one evaluated deal.

    :param record: its decision record.
    :param runs: each policy's run, from :meth:`dealdesk.pipeline.Pipeline.decide_one` (``Decision.runs``)
        (empty when the deal was invalid).
    :param data: the prepared deal (``Decision.data``), None if invalid.
    :param rule_id: only this rule (or table) id.
    """
    policies: list[PolicyExplanation] = []
    if data is not None:
        for name, run in runs.items():
            result = (record.get("policies") or {}).get(name, {})
            rules = explain_policy(run, data, rule_id=rule_id)
            if rule_id is not None and not rules:
                continue
            policies.append(
                PolicyExplanation(
                    name, result.get("status", ""), rules, dict(result.get("outputs") or {})
                )
            )
    return DealExplanation(
        record.get("deal_id"),
        str(record.get("status")),
        list(record.get("approvals") or []),
        dict(record),
        policies,
        list(record.get("errors") or []),
    )


def explain_policy(
    run: PolicyRun, data: Mapping[str, Any], *, rule_id: str | None = None
) -> list[RuleExplanation]:
    """Every rule and table row of ``run.policy``, in priority order (higher first, then file order)."""
    policy = run.policy
    view = {**data, "outputs": run.outputs()}
    fired: dict[str, list[Firing]] = {}
    for firing in run.firings:
        fired.setdefault(firing.rule.key, []).append(firing)
    close = lookup(data, "dates.close")
    applicable = policy.applicable(close)
    rules = sorted(policy.rules, key=lambda r: (-r.priority, r.order))
    if rule_id is not None:
        rules = [r for r in rules if r.id == rule_id]
    values = {rule.key: evaluate(rule.condition, view) for rule in policy.rules}
    return [
        _explain_rule(policy, rule, view, values, fired, applicable, close, run) for rule in rules
    ]


def _explain_rule(
    policy: Policy,
    rule: CompiledRule,
    view: Mapping[str, Any],
    values: Mapping[str, bool | None],
    fired: Mapping[str, list[Firing]],
    applicable: set[str],
    close: Any,
    run: PolicyRun,
) -> RuleExplanation:
    value = values[rule.key]
    did_fire = rule.key in fired
    conjuncts = _conjuncts(rule, view)
    if rule.table is None:
        when = _rule_text(rule)
        description = next((r.description for r in rule.ruleset.rules if r.id == rule.id), "")
    else:
        cells = rule.table.rows[rule.row or 0].cells
        # '-' cells match anything; leaving them out keeps wide tables readable
        when = (
            ", ".join(
                f"{i.value}: {_cell_text(c)}"
                for i, c in zip(rule.table.inputs, cells, strict=False)
                if not _is_any(c)
            )
            or "- (every cell matches anything)"
        )
        description = rule.table.description
    why = _why(rule, value, did_fire, conjuncts, values, fired, applicable, close, run)
    effects = [effect for firing in fired.get(rule.key, []) for effect in _effects(firing)]
    return RuleExplanation(
        id=rule.id,
        policy=policy.name,
        ruleset=rule.ruleset.name,
        location=str(rule.location),
        priority=rule.priority,
        when=when,
        value=value,
        fired=did_fire,
        conjuncts=conjuncts,
        why=why,
        row=None if rule.row is None else rule.row + 1,
        hit=None if rule.table is None else rule.table.hit,
        description=description,
        effects=effects,
    )


def _rule_text(rule: CompiledRule) -> str:
    for source in rule.ruleset.rules:
        if source.id == rule.id:
            return " ".join(source.when.value.split())
    return format_expr(rule.condition)


def _cell_text(cell: Any) -> str:
    if isinstance(cell, bool):
        return "true" if cell else "false"
    return str(cell)


def _is_any(cell: Any) -> bool:
    return not isinstance(cell, bool | int | float) and str(cell).strip() in ("-", "")


def _conjuncts(rule: CompiledRule, view: Mapping[str, Any]) -> list[Conjunct]:
    """The condition's top-level parts, each evaluated; a table row's parts are its cells."""
    condition = rule.condition
    parts = list(condition.operands) if isinstance(condition, And) else [condition]
    if rule.table is not None:
        cells = rule.table.rows[rule.row or 0].cells
        tested = [
            (i.value, c) for i, c in zip(rule.table.inputs, cells, strict=False) if not _is_any(c)
        ]
        if not tested:
            return []  # every cell is '-': the row matches any deal
        if len(tested) == 1:
            parts = [condition]  # one cell: the condition is that cell's test (maybe an And itself)
            if isinstance(condition, And) and len(condition.operands) == 1:
                parts = [condition.operands[0]]
        if len(tested) == len(parts):
            return [
                _cell(part, view, subject, _cell_text(cell))
                for part, (subject, cell) in zip(parts, tested, strict=True)
            ]
    return [_conjunct(part, view) for part in parts]


def _reads(expr: Expr, view: Mapping[str, Any]) -> list[Read]:
    reads: list[Read] = []
    seen: set[str] = set()
    for fld in fields(expr):
        if fld.item or fld.path in seen:
            continue
        seen.add(fld.path)
        reads.append(Read(fld.path, lookup(view, fld.path)))
    return reads


def _cell(test: Expr, view: Mapping[str, Any], subject_text: str, cell: str) -> Conjunct:
    """A table cell: ``services_ratio = ~0.280368 ([0.20..0.40]: true)``."""
    value = evaluate(test, view)
    subject = _subject(test)
    shown = format_value(evaluate(subject, view)) if subject is not None else "?"
    return Conjunct(
        f"{subject_text}: {cell}",
        value,
        _reads(test, view),
        f"{subject_text} = {shown} ({cell}: {truth(value)})",
    )


def _subject(test: Expr) -> Expr | None:
    """The input a cell's test is about (the left side of its first comparison)."""
    stack = [test]
    while stack:
        node = stack.pop(0)
        if isinstance(node, Compare):
            return node.left
        if isinstance(node, InList):
            return node.operand
        if isinstance(node, And | Or):
            stack.extend(node.operands)
        elif isinstance(node, Not) and node.operand is not None:
            stack.append(node.operand)
    return None


def _conjunct(expr: Expr, view: Mapping[str, Any]) -> Conjunct:
    value = evaluate(expr, view)
    reads = _reads(expr, view)
    return Conjunct(format_expr(expr), value, reads, _detail(expr, value, reads, view))


def _detail(expr: Expr, value: bool | None, reads: Sequence[Read], view: Mapping[str, Any]) -> str:
    """One line on a conjunct: ``totals.product = 1000000 (>= 500000: true)`` for a comparison
    with a literal; otherwise the conjunct, its value and the values it reads."""
    if isinstance(expr, Compare) and _is_bare_boolean(expr) and isinstance(expr.left, Field):
        seen = evaluate(expr.left, view)
        return f"{expr.left.path} = {format_value(seen)}" + (
            "" if isinstance(seen, bool) else f" ({truth(value)})"
        )
    if isinstance(expr, Compare):
        left, right = expr.left, expr.right
        assert left is not None and right is not None
        if isinstance(right, Const) and not isinstance(left, Const):
            return f"{format_expr(left)} = {format_value(evaluate(left, view))} ({expr.op} {format_expr(right)}: {truth(value)})"
        if isinstance(left, Const) and not isinstance(right, Const):
            return f"{format_expr(right)} = {format_value(evaluate(right, view))} ({format_expr(left)} {expr.op}: {truth(value)})"
    if isinstance(expr, InList) and expr.operand is not None:
        listed = ", ".join(format_expr(v) for v in expr.values)
        return f"{format_expr(expr.operand)} = {format_value(evaluate(expr.operand, view))} ({'not in' if expr.negated else 'in'} [{listed}]: {truth(value)})"
    if isinstance(expr, Exists) and expr.target is not None:
        return f"{format_expr(expr.target)} = {format_value(evaluate(expr.target, view))} (exists: {truth(value)})"
    shown = [f"{r.path} = {format_value(r.value)}" for r in reads]
    # a computed operand (outputs.margin_floor - 0.05) is worth its value too
    shown += [
        f"{format_expr(e)} = {format_value(evaluate(e, view))}"
        for e in _compared(expr)
        if not isinstance(e, Field | Const)
    ]
    where = f", where {', '.join(shown)}" if shown else ""
    return f"{format_expr(expr)}: {truth(value)}{where}"


def _compared(expr: Expr) -> list[Expr]:
    """The distinct operands compared anywhere in ``expr`` (outside any()/all())."""
    found: list[Expr] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Compare):
            for side in (node.left, node.right):
                if side is not None and side not in found:
                    found.append(side)
        elif isinstance(node, And | Or):
            stack.extend(reversed(node.operands))
        elif isinstance(node, Not) and node.operand is not None:
            stack.append(node.operand)
    return found


def _why(
    rule: CompiledRule,
    value: bool | None,
    did_fire: bool,
    conjuncts: Sequence[Conjunct],
    values: Mapping[str, bool | None],
    fired: Mapping[str, list[Firing]],
    applicable: set[str],
    close: Any,
    run: PolicyRun,
) -> str:
    if did_fire:
        return (
            "its condition is true"
            if rule.table is None
            else f"the row matches (hit policy {rule.table.hit})"
        )
    if value is not True:
        failing = [c for c in conjuncts if c.value is not True]
        if value is False:
            named = [c.text for c in failing if c.value is False]
            return f"{_join(named) if named else 'the condition'} {'is' if len(named) <= 1 else 'are'} false"
        named = [c.text for c in failing if c.value is None]
        missing = sorted({r.path for c in failing for r in c.reads if r.value is None})
        because = (
            f" ({', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing)"
            if missing
            else ""
        )
        return f"{_join(named) if named else 'the condition'} {'is' if len(named) <= 1 else 'are'} unknown{because}"
    if rule.ruleset.name not in applicable:
        window = f"{rule.ruleset.effective_from or '...'} to {rule.ruleset.effective_to or '...'}"
        return f"its condition is true, but ruleset {rule.ruleset.name!r} is in effect {window}, not on {close}"
    if rule.table is not None:
        table = rule.table
        siblings = [r for r in run.policy.rules if r.table is table]
        matching = [r for r in siblings if values.get(r.key) is True]
        chosen = [r for r in siblings if r.key in fired]
        numbers = ", ".join(str((r.row or 0) + 1) for r in chosen)
        if table.hit == "first" and chosen:
            return f"the row matches, but hit policy first chose row {numbers}"
        if table.hit in ("unique", "any") and len(matching) > 1:
            others = ", ".join(str((r.row or 0) + 1) for r in matching)
            return f"the row matches, but so do rows {others}, which hit policy {table.hit} does not allow"
        if chosen:
            return f"the row matches, but hit policy {table.hit} chose row {numbers}"
        return f"the row matches, but hit policy {table.hit} chose no row"
    return "its condition is true here, but the engine did not fire it (please report this)"


def _join(items: Sequence[str]) -> str:
    return "; ".join(_short(item) for item in items)


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _effects(firing: Firing) -> list[str]:
    effects = firing.effects
    out: list[str] = []
    for name, value in effects.sets:
        out.append(f"set {name} = {format_value(value)}")
    out.extend(f"require {role}" for role in effects.requires)
    out.extend("reject" for _ in effects.rejects)
    out.extend("flag" for _ in effects.flags)
    out.extend(f"clause {clause}" for clause in effects.clauses)
    if firing.rule.then.action:
        out.insert(0, f"action {firing.rule.then.action}")
    return out


# ---------------------------------------------------------------------------------------------
# Formatting expressions and values

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def format_expr(expr: Expr | None, loop: str = "line") -> str:
    """``expr`` back in the condition language (Python syntax), for people to read."""
    match expr:
        case None:
            return "?"
        case Const(value=value):
            return _literal(value)
        case Field(path=path, item=True):
            return f"{loop}.{path}"
        case Field(path=path):
            return path
        case Compare() if _is_bare_boolean(expr):
            return format_expr(expr.left, loop)
        case Compare(op=op, left=left, right=right):
            return f"{format_expr(left, loop)} {op} {format_expr(right, loop)}"
        case Arith(op=op, left=left, right=right):
            return f"{_operand(left, op, False, loop)} {op} {_operand(right, op, True, loop)}"
        case InList(operand=operand, values=values, negated=negated):
            listed = ", ".join(format_expr(v, loop) for v in values)
            return f"{format_expr(operand, loop)} {'not in' if negated else 'in'} [{listed}]"
        case Exists(target=target):
            return f"exists({format_expr(target, loop)})"
        case Matches(target=target, pattern=pattern):
            return f"matches({format_expr(target, loop)}, {json.dumps(pattern)})"
        case Not(operand=operand):
            inner = format_expr(operand, loop)
            return f"not ({inner})" if isinstance(operand, And | Or) else f"not {inner}"
        case And(operands=operands):
            return " and ".join(
                f"({format_expr(o, loop)})" if isinstance(o, Or) else format_expr(o, loop)
                for o in operands
            )
        case Or(operands=operands):
            return " or ".join(format_expr(o, loop) for o in operands)
        case Quantifier(kind=kind, items=items, body=body):
            path = items.path if items is not None else "items"
            variable = path.rpartition(".")[2].removesuffix("s") or "item"
            return f"{kind}({format_expr(body, variable)} for {variable} in {path})"
        case Call(name=name, args=args):
            return f"{name}({', '.join(format_expr(a, loop) for a in args)})"
    return type(expr).__name__


def _is_bare_boolean(expr: Compare) -> bool:
    """``risk_offer`` is parsed as ``risk_offer == True``; show it as written."""
    return (
        expr.op == "=="
        and isinstance(expr.left, Field)
        and isinstance(expr.right, Const)
        and expr.right.value is True
        and expr.right.pos == expr.left.pos
    )


def _operand(expr: Expr | None, op: str, right: bool, loop: str) -> str:
    text = format_expr(expr, loop)
    if isinstance(expr, Arith):
        inner, outer = _PRECEDENCE[expr.op], _PRECEDENCE[op]
        if inner < outer or (right and inner == outer and op in "-/"):
            return f"({text})"
    return text


def _literal(value: Any) -> str:
    if value is True:
        return "True"
    if value is False:
        return "False"
    if value is None:
        return "None"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return _decimal(value)
    return str(value)


def _decimal(value: Decimal, places: int = 6) -> str:
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    rounded = value.quantize(Decimal(1).scaleb(-places))
    text = format(rounded.normalize(), "f")
    return text if rounded == value else f"~{text}"


def format_value(value: Any) -> str:
    """A deal value for people: ``1000000``, ``~0.498273``, ``"select"``, ``true``, ``missing``."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        return _decimal(Decimal(str(value)))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return f"[{len(value)} item{'' if len(value) == 1 else 's'}]"
    text = json.dumps(plain(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= 80 else text[:77] + "..."
