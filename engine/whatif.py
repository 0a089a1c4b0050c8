"""The smallest changes to a deal that change its decision: the data behind ``dealdesk whatif``.

An *obstacle* stands between a deal and its approval: a rule that rejects it, or an approver it
needs. For each one, :func:`what_if` walks the conditions of the rules behind it (a decision
table row's cells too) down to the tests that hold it in place — a comparison with a threshold,
a membership, a presence — evaluated on the view each rule saw (the deal, its derived facts and
its policy's outputs). It then asks of every input field of the deal that can change (a number,
an enumerated choice, a boolean, an optional part such as the partner) whether changing it moves
such a test. A number is moved in its own resolution — a cent of the deal's currency, a unit, a
day — on exact decimals, first to the smallest value that flips the test (so a line's unit price
is found for ``max_line_discount``, a cost for ``margin``, through the derivation itself), then
further until the whole deal, re-evaluated, is rid of the obstacle. Every change reported is one
that a real evaluation verified, with the decision it gives; a change that brings a new obstacle
says so. When no single change will do, the same number of several lines moves together (two
lines sharing the largest discount are both repriced). A :class:`Goal` (``no cfo``,
``approved``) asks instead for changes that reach it, and when no single change does, for a
short sequence of changes that does, each step chosen greedily.

The searches assume that a test moves one way as a field moves one way (sums, ratios and
maxima of SPEC §2 do); where that does not hold, the change found is still verified, but a
smaller one may exist.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dealdesk.combine import plain
from dealdesk.deal.schema import DEFAULT_CURRENCY, FIELDS, FRACTIONS
from dealdesk.errors import UsageError
from dealdesk.explain import format_expr
from dealdesk.money import minor_units, money_string, parse_decimal, round_fraction
from dealdesk.rules.expressions import And, Compare, Expr, Not, Or, fields
from dealdesk.rules.meaning import evaluate, lookup, to_decimal

if TYPE_CHECKING:
    from dealdesk.pipeline import Decision
    from dealdesk.rules.policyset import CompiledRule, Policy

__all__ = [
    "Change",
    "Goal",
    "Obstacle",
    "Outcome",
    "WhatIf",
    "all_of",
    "parse_goal",
    "what_if",
]

#: Optional parts of a deal whose absence means something (SPEC §2): no partner is a direct
#: deal; no requested split takes the policy's own milestones.
REMOVABLE = {"partner": "sell direct", "billing.requested_split": "drop the requested split"}
#: Fields a deal desk does not trade: the deal's identity and currency, who the customer is, and
#: what each line is. (Dates and free text are never changed either: they are not numbers or
#: choices.)
_FIXED = frozenset(
    {"id", "currency", "customer", "lines[].category", "lines[].resource", "lines[].sku"}
)
#: How far a number may grow: ten times its value (a step count for one that is zero).
_GROWTH = 10
_ZERO_RANGE_STEPS = 10**6
#: The most changes listed per obstacle, and the longest sequence tried for a goal.
DEFAULT_LIMIT = 5
MAX_SEQUENCE = 6


# ---------------------------------------------------------------------------------------------
# What can change


@dataclass(frozen=True)
class Knob:
    """An input field of the deal that a change may set.

    :ivar path: as people read it, ``lines[0].unit_price``.
    :ivar keys: the keys to it in the raw deal.
    :ivar value: its current value (a ``Decimal`` for a number).
    :ivar step: a number's resolution (a cent, a unit), None for a choice.
    :ivar choices: the other values a choice may take; :data:`REMOVED` removes the field.
    """

    path: str
    keys: tuple[str | int, ...]
    value: Any
    step: Decimal | None = None
    choices: tuple[Any, ...] = ()
    money: bool = False
    fraction: bool = False
    family: str = ""  # the schema path of a line's number (``lines[].unit_price``)
    sku: str = ""  # the line's sku, for a field of a line


class _Removed:
    def __repr__(self) -> str:
        return "REMOVED"


REMOVED: Any = _Removed()


def knobs(
    raw: Mapping[str, Any], fact_types: Mapping[str, str], currency: str = DEFAULT_CURRENCY
) -> list[Knob]:
    """Every field of ``raw`` a change may set, in the deal's order: numbers, enumerated
    choices and booleans that the deal schema or a plugin (``facts``) declares as input, and the
    optional parts of :data:`REMOVABLE`. Money moves by a minor unit of ``currency`` (the
    validated deal's)."""
    cent = Decimal(1).scaleb(-minor_units(currency))
    found: list[Knob] = []

    def walk(
        node: Mapping[str, Any], keys: tuple[str | int, ...], shown: str, schema: str, sku: str = ""
    ) -> None:
        for key, value in node.items():
            if not isinstance(key, str):
                continue
            path, name = f"{schema}{key}", f"{shown}{key}"
            if path in REMOVABLE and value is not None:
                found.append(Knob(name, (*keys, key), value, choices=(REMOVED,)))
            if path in _FIXED:
                continue
            spec = FIELDS.get(path)
            kind = spec.type if spec is not None else fact_types.get(path)
            if isinstance(value, Mapping):
                walk(value, (*keys, key), f"{name}.", f"{path}.")
            elif path == "lines" and isinstance(value, list):
                for index, line in enumerate(value):
                    if isinstance(line, Mapping):
                        given = line.get("sku")
                        line_sku = given if isinstance(given, str) else ""
                        walk(line, (*keys, key, index), f"{name}[{index}].", "lines[].", line_sku)
            elif kind == "number" and not isinstance(value, bool):
                number = _number(value)
                if number is not None:
                    money = spec is not None and spec.money
                    step = cent if money else _resolution(number, path)
                    found.append(
                        Knob(
                            name,
                            (*keys, key),
                            number,
                            step,
                            money=money,
                            fraction=path in FRACTIONS,
                            family=path if "[]" in path else "",
                            sku=sku,
                        )
                    )
            elif kind == "boolean" and isinstance(value, bool):
                found.append(Knob(name, (*keys, key), value, choices=(not value,)))
            elif spec is not None and spec.enum and value in spec.enum and "[]" not in path:
                others = tuple(v for v in spec.enum if v != value)
                found.append(Knob(name, (*keys, key), value, choices=others))

    walk(raw, (), "", "")
    return found


def _plain(knob: Knob, value: Any, currency: str) -> Any:
    """A value as JSON shows it: money as a decimal string in minor units (as records show it),
    other numbers as numbers, a removed field as null."""
    if value is REMOVED:
        return None
    if knob.step is None:
        return plain(value)
    if knob.money:
        return money_string(value, currency)
    return int(value) if value == value.to_integral_value() else float(value)


def _number(value: Any) -> Decimal | None:
    try:
        number = parse_decimal(value)
    except (ValueError, TypeError, ArithmeticError):
        return None
    return number if number.is_finite() else None


def _resolution(value: Decimal, path: str) -> Decimal:
    """A fraction moves by 0.0001 (records show fractions to 4 places); any other number by
    one unit of its last written place, a whole one at least."""
    if path in FRACTIONS:
        return Decimal("0.0001")
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return Decimal(1).scaleb(-places)


def _changed(raw: Mapping[str, Any], changes: Sequence[tuple[Knob, Any]]) -> dict[str, Any]:
    """``raw`` with ``changes`` made, ``raw`` itself untouched: only the objects on the way to
    each changed field are copied, the rest is shared (deciding a deal never changes it)."""
    deal = dict(raw)
    for knob, value in changes:
        node: Any = deal
        for key in knob.keys[:-1]:
            child = node[key]
            node[key] = child = dict(child) if isinstance(child, Mapping) else list(child)
            node = child
        if value is REMOVED:
            del node[knob.keys[-1]]
        else:
            node[knob.keys[-1]] = value
    return deal


# ---------------------------------------------------------------------------------------------
# What stands in the way


@dataclass(frozen=True)
class Obstacle:
    """A rejection (by a rule, or a whole decision table) or an approver the deal needs.

    :ivar rules: (policy, rule) of every firing behind it.
    """

    kind: str  # "approval" | "rejection"
    name: str  # the role, or the rejecting rule's id
    policy: str = ""
    rules: tuple[tuple[str, CompiledRule], ...] = field(default=(), compare=False)
    weight: int = field(default=1, compare=False)  # how far it is from approval (see obstacles)
    again: bool = field(default=False, compare=False)  # brought by more rules than before

    @property
    def label(self) -> str:
        label = self.name if self.kind == "approval" else f"rejection by {self.name}"
        if self.again:
            label += f" (also from {', '.join(_rule_labels(self))})"
        return label

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.policy, self.name)


def obstacles(decision: Decision, ranks: Sequence[str] = ()) -> list[Obstacle]:
    """What keeps the decided deal from approval: its rejections, in firing order, then its
    approvers, in rank order (the record's).

    :param ranks: the approver roles, least senior first: an approver weighs its place in them
        plus one, so that trading an approver for a less senior one is progress; a rejection
        outweighs them all.
    """
    weights = {role: index + 1 for index, role in enumerate(ranks)}
    rejections: dict[tuple[str, str], list[tuple[str, CompiledRule]]] = {}
    requirers: dict[str, list[tuple[str, CompiledRule]]] = {}
    for name, run in decision.runs.items():
        for firing in run.firings:
            if firing.effects.rejects:
                rejections.setdefault((name, firing.rule.id), []).append((name, firing.rule))
            for role in firing.effects.requires:
                requirers.setdefault(role, []).append((name, firing.rule))
    found = [
        Obstacle("rejection", rule_id, policy, tuple(rules), len(ranks) + 2)
        for (policy, rule_id), rules in rejections.items()
    ]
    found += [
        Obstacle(
            "approval",
            role,
            "",
            tuple(requirers.get(role, ())),
            weights.get(role, len(ranks) + 1),
        )
        for role in decision.record.get("approvals") or []
    ]
    return found


def _brought(before: Sequence[Obstacle], after: Sequence[Obstacle]) -> list[Obstacle]:
    """The obstacles of ``after`` that ``before`` did not have — or had for fewer rules: a
    deeper discount that the vp_sales the deal already needs would also cover is still worse."""
    had = {o.key: {rule.key for _, rule in o.rules} for o in before}
    brought = []
    for obstacle in after:
        if obstacle.key not in had:
            brought.append(obstacle)
            continue
        more = tuple((p, r) for p, r in obstacle.rules if r.key not in had[obstacle.key])
        if more:
            brought.append(dataclasses.replace(obstacle, rules=more, again=True))
    return brought


def _present(decision: Decision) -> set[tuple[str, str, str]]:
    return {o.key for o in obstacles(decision)}


# ---------------------------------------------------------------------------------------------
# Thresholds: the tests holding an obstacle in place


@dataclass(frozen=True)
class Threshold:
    """A test in a rule's condition, and the value it must stop having.

    ``need`` is ``"not true"`` (the rule fires because the test is true) or ``"not false"``
    (under a ``not``). ``sense`` says which way ``left - right`` must move for a numeric
    comparison: +1 up, -1 down, 0 either (``==``, ``!=``), None when the test is not one.
    """

    policy: str
    rule: CompiledRule
    test: Expr
    need: str
    sense: int | None

    @property
    def text(self) -> str:
        return f"{self.rule.label}: {format_expr(self.test)}"

    def holds(self, view: Mapping[str, Any]) -> bool:
        """Whether the test has the value it must have on ``view``."""
        value = evaluate(self.test, view)
        return value is not True if self.need == "not true" else value is not False

    def gap(self, view: Mapping[str, Any]) -> Decimal | None:
        """``left - right`` of a numeric comparison on ``view``; None otherwise or unknown."""
        if self.sense is None or not isinstance(self.test, Compare):
            return None
        left = to_decimal(evaluate(self.test.left, view))
        right = to_decimal(evaluate(self.test.right, view))
        return None if left is None or right is None else left - right


# which way left - right must move to make a comparison false (when it is true now)
_FALSIFY = {"<": 1, "<=": 1, ">": -1, ">=": -1, "==": 0, "!=": 0}


def thresholds(policy: Policy, rule: CompiledRule, view: Mapping[str, Any]) -> Iterator[Threshold]:
    """The tests that keep ``rule`` firing on ``view``: those of its condition that hold it
    true, and for a row of a ``first`` table, those that keep each earlier row from matching
    (an earlier row that matches takes the hit)."""

    def walk(expr: Expr, need: str, owner: CompiledRule) -> Iterator[Threshold]:
        value = evaluate(expr, view)
        if (value is not True) if need == "not true" else (value is not False):
            return  # already as needed
        match expr:
            case Not(operand=operand):
                yield from walk(operand, "not false" if need == "not true" else "not true", owner)
            case And(operands=operands) | Or(operands=operands):
                for operand in operands:
                    yield from walk(operand, need, owner)
            case Compare(op=op) if _numeric(expr, view):
                sense = _FALSIFY[op] * (1 if need == "not true" else -1)
                yield Threshold(policy.name, owner, expr, need, sense)
            case _:
                yield Threshold(policy.name, owner, expr, need, None)

    yield from walk(rule.condition, "not true", rule)
    if rule.table is not None and rule.table.hit == "first":
        for earlier in policy.rules:
            if earlier.unit == rule.unit and (earlier.row or 0) < (rule.row or 0):
                yield from walk(earlier.condition, "not false", earlier)


def _numeric(test: Compare, view: Mapping[str, Any]) -> bool:
    left, right = evaluate(test.left, view), evaluate(test.right, view)
    return (
        to_decimal(left) is not None
        and to_decimal(right) is not None
        and not (isinstance(left, bool) or isinstance(right, bool))
    )


# ---------------------------------------------------------------------------------------------
# Goals


@dataclass(frozen=True)
class Goal:
    """What a change must achieve: the deal ``approved``, ``not rejected``, and without each
    role of ``roles`` (``no cfo``); :func:`parse_goal` reads one, :func:`all_of` joins them."""

    text: str
    status: str | None = None  # "approved" | "not rejected"
    roles: frozenset[str] = frozenset()

    def met(self, record: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
        status = record.get("status")
        if status == "invalid" or self.roles & set(record.get("approvals") or ()):
            return False
        if self.status == "approved":
            return status == "approved"
        # "no cfo" is not met by a rejection the deal did not already have
        rejected_before = before.get("status") == "rejected" and self.status is None
        return status != "rejected" or rejected_before

    def concerns(self, obstacle: Obstacle) -> bool:
        if obstacle.kind == "rejection":
            return self.status is not None
        return self.status == "approved" or obstacle.name in self.roles


def all_of(goals: Sequence[Goal]) -> Goal:
    """One goal that holds when each of ``goals`` does."""
    statuses = {g.status for g in goals}
    return Goal(
        " and ".join(g.text for g in goals),
        "approved" if "approved" in statuses else ("not rejected" if statuses - {None} else None),
        frozenset().union(*(g.roles for g in goals)),
    )


def parse_goal(text: str, roles: Sequence[str]) -> Goal:
    """``approved``, ``not rejected`` (or ``not-rejected``, ``needs_approval``), ``no ROLE``
    (or ``no-ROLE``, ``no:ROLE``, ``without ROLE``; ``no sales manager`` is ``sales_manager``),
    each maybe after ``status`` (``status approved``, ``status=approved``).

    :raises UsageError: anything else (with a "did you mean"), or a role the approver ranks do
        not know.
    """
    words = text.strip().lower().replace(":", " ").replace("=", " ").split()
    if words[:1] == ["status"]:
        words = words[1:]
    if len(words) == 1 and words[0].split("-", 1)[0] in ("no", "not", "without"):
        words = words[0].split("-", 1)
    if words == ["approved"]:
        return Goal(text, status="approved")
    if words in (["not", "rejected"], ["needs_approval"]):
        return Goal(text, status="not rejected")
    if len(words) >= 2 and words[0] in ("no", "without"):
        role = "_".join(words[1:]).replace("-", "_")
        if role not in roles:
            close = difflib.get_close_matches(role, list(roles), n=1)
            hint = f" (did you mean 'no {close[0]}'?)" if close else ""
            raise UsageError(f"--goal {text!r}: no approver role {role!r}{hint}")
        return Goal(text, roles=frozenset({role}))
    options = ["approved", "not rejected", *(f"no {role}" for role in roles)]
    close = difflib.get_close_matches(" ".join(words), options, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(
        f"--goal {text!r}: expected 'approved', 'not rejected' or 'no ROLE' (e.g. 'no cfo'){hint}"
    )


# ---------------------------------------------------------------------------------------------
# Answers


@dataclass
class Outcome:
    """The decision a changed deal gets, and which obstacles it lost and gained."""

    status: str
    approvals: list[str]
    removed: list[Obstacle]
    added: list[Obstacle]


@dataclass
class Change:
    """One change to the deal (or one step of a sequence), verified by evaluation.

    :ivar before: the field's value before, :ivar after: after (:data:`REMOVED` when removed).
    :ivar crosses: the test it moves across (``PM-5 row 3: max_line_discount <= 0.3``).
    :ivar subject: for a comparison, its left side's value before and after.
    """

    path: str
    before: Any
    after: Any
    outcome: Outcome
    shown: tuple[Any, Any] = (None, None)  # before and after as JSON shows them
    crosses: str = ""
    subject: tuple[str, Any, Any] | None = None
    note: str = ""
    sku: str = ""  # the line's, for a change to a line

    @property
    def removed(self) -> bool:
        return self.after is REMOVED

    @property
    def relative(self) -> Decimal | None:
        """``|after - before| / |before|`` for a number (infinite from zero), else None."""
        if not isinstance(self.before, Decimal) or not isinstance(self.after, Decimal):
            return None
        if not self.before:
            return Decimal("Infinity")
        return abs(self.after - self.before) / abs(self.before)

    @property
    def signed(self) -> Decimal | None:
        """``(after - before) / |before|`` for a number from a non-zero value, else None."""
        if self.relative is None or not self.relative.is_finite():
            return None
        return self.relative if self.after >= self.before else -self.relative

    def rank(self) -> tuple[Any, ...]:
        # clean changes first (then those that bring the least), numbers by relative size, then
        # choices, then removals
        kind = 2 if self.removed else (0 if self.relative is not None else 1)
        size = self.relative if self.relative is not None else Decimal(0)
        brought = sum(o.weight for o in self.outcome.added)
        return (brought, kind, size, self.path, str(self.after))


@dataclass
class Answer:
    """The changes that remove one obstacle (or reach the goal)."""

    obstacle: Obstacle | None
    goal: Goal | None
    changes: list[Change]
    sequence: list[Change] = field(default_factory=list)  # a goal no single change reaches
    met: bool = False  # the goal holds already, or a change or the sequence reaches it

    @property
    def title(self) -> str:
        if self.goal is not None:
            return f"goal: {self.goal.text}"
        assert self.obstacle is not None
        return self.obstacle.label


@dataclass
class WhatIf:
    """Everything ``dealdesk whatif`` says about one deal."""

    deal_id: Any
    status: str
    approvals: list[str]
    answers: list[Answer]
    errors: list[dict[str, Any]] = field(default_factory=list)
    probes: int = 0
    evaluated: bool = False  # the deal itself was valid (an invalid record is the rules' fault)


# ---------------------------------------------------------------------------------------------
# The search


class _Explorer:
    """Evaluates changed versions of one deal (each once) and searches along its knobs."""

    def __init__(
        self,
        raw: Any,
        decide: Callable[[Any], Decision],
        fact_types: Mapping[str, str],
        ranks: Sequence[str],
    ):
        self.raw = raw
        self.decide = decide
        self.fact_types = fact_types
        self.ranks = ranks
        self.base = decide(raw)
        # an invalid deal (maybe not even a mapping) is not changed: it has no decision
        data = self.base.data
        valid = data is not None and isinstance(raw, Mapping)
        # validation checked the currency and gave an absent one its default
        self.currency = str(data["currency"]) if valid and data else DEFAULT_CURRENCY
        self.knobs = knobs(raw, fact_types, self.currency) if valid else []
        self.obstacles = obstacles(self.base, ranks)  # what the deal as it is has
        self._cache: dict[tuple[tuple[str, Any], ...], Decision] = {}

    @property
    def probes(self) -> int:
        return len(self._cache)

    def probe(self, knob: Knob, value: Any) -> Decision:
        return self.probe_all([(knob, value)])

    def probe_all(self, changes: Sequence[tuple[Knob, Any]]) -> Decision:
        """The decision of the deal with ``changes`` made (each deal decided once)."""
        key = tuple(sorted((k.path, v if v is REMOVED else str(v)) for k, v in changes))
        found = self._cache.get(key)
        if found is None:
            found = self.decide(_changed(self.raw, changes))
            self._cache[key] = found
        return found

    # -- numbers

    def value_at(self, knob: Knob, direction: int, k: int) -> Decimal:
        """The ``k``-th value of ``knob``'s grid (multiples of its step) past its value."""
        assert knob.step is not None
        units = knob.value / knob.step
        start = math.floor(units) if direction > 0 else math.ceil(units)
        return knob.step * (start + direction * k)

    def steps_limit(self, knob: Knob, direction: int) -> int:
        assert knob.step is not None
        units = knob.value / knob.step
        if direction < 0:
            # down to zero (no deal number is negative) — but a line's quantity, price or cost
            # at zero is a line removed, not changed: those stop a step above
            return max(math.ceil(units) - (1 if knob.family else 0), 0)
        top = (
            Decimal(1)
            if knob.fraction
            else max(abs(knob.value) * _GROWTH, knob.step * _ZERO_RANGE_STEPS)
        )
        return max(math.floor(top / knob.step) - math.floor(units), 0)

    def smallest(
        self, knob: Knob, direction: int, ok: Callable[[Decision], bool], start: int = 0
    ) -> int | None:
        """The smallest ``k > start`` whose value satisfies ``ok``."""

        def holds(k: int) -> bool:
            return ok(self.probe(knob, self.value_at(knob, direction, k)))

        return _smallest(holds, self.steps_limit(knob, direction), start)

    def directions(self, knob: Knob, threshold: Threshold) -> list[int]:
        """Which ways moving ``knob`` moves the threshold's test the way it must go (both when
        the test is not a numeric comparison but moves at all), nearest first."""
        view = _view(self.base, threshold.policy)
        assert view is not None
        gap = threshold.gap(view)
        found: list[int] = []
        for direction in (1, -1):
            for k in self._nudges(knob, direction, wide=threshold.sense is None or gap is None):
                moved = _view(self.probe(knob, self.value_at(knob, direction, k)), threshold.policy)
                if moved is None:
                    continue
                if threshold.sense is None or gap is None:
                    if _reads(threshold, moved) != _reads(threshold, view):
                        found.append(direction)
                        break
                    continue
                new_gap = threshold.gap(moved)
                if new_gap is None or new_gap == gap:
                    continue
                if threshold.sense == 0 or (new_gap - gap) * threshold.sense > 0:
                    found.append(direction)
                break
        return found

    def _nudges(self, knob: Knob, direction: int, *, wide: bool) -> list[int]:
        """A step and a tenth of the value; ``wide`` (a test that is no numeric comparison),
        then a half and all of it too: a test that reads the knob through a table's output moves
        only when the knob crosses that table's rows."""
        assert knob.step is not None
        whole = int(abs(knob.value) / knob.step)
        limit = self.steps_limit(knob, direction)
        nudges = (1, whole // 10, whole // 2, whole) if wide else (1, whole // 10)
        return [k for k in dict.fromkeys(nudges) if 0 < k <= limit]


def _smallest(holds: Callable[[int], bool], limit: int, start: int = 0) -> int | None:
    """The smallest ``k`` in ``(start, limit]`` for which ``holds(k)``, doubling then halving
    (so about twice the log of the answer's distance in probes), assuming that once it holds it
    keeps holding; None when it does not hold at ``limit``."""
    low, width = start, 1
    while True:
        high = min(start + width, limit)
        if high <= low:
            return None
        if holds(high):
            break
        if high == limit:
            return None
        low, width = high, width * 2
    while high - low > 1:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle
    return high


def _view(decision: Decision, policy: str) -> dict[str, Any] | None:
    """What the rules of ``policy`` saw: the deal with its facts and the policy's outputs."""
    run = decision.runs.get(policy)
    if decision.data is None or run is None:
        return None
    return {**decision.data, "outputs": run.outputs()}


def _reads(threshold: Threshold, view: Mapping[str, Any]) -> Any:
    """What a test reads on ``view``, and its value: a test that is not a numeric comparison
    moved when any of these did."""
    return tuple(str(lookup(view, f.path)) for f in fields(threshold.test) if not f.item) + (
        str(evaluate(threshold.test, view)),
    )


def what_if(
    raw: Any,
    decide: Callable[[Any], Decision],
    fact_types: Mapping[str, str],
    *,
    ranks: Sequence[str] = (),
    goals: Sequence[Goal] = (),
    limit: int = DEFAULT_LIMIT,
) -> WhatIf:
    """The smallest single changes to ``raw`` that remove each obstacle to its approval, or that
    reach every one of ``goals`` (with a sequence of changes when no single one does).

    :param decide: ``App.decide``: a raw deal to its decision (record, runs, prepared data).
    :param fact_types: the input paths plugins declare (``Plugins.fact_types``).
    :param ranks: the approver roles, least senior first (``PolicySet.approvers``): a change
        that brings a less senior approver ranks before one that brings a more senior one.
    :param limit: the most changes listed per obstacle.
    """
    explorer = _Explorer(raw, decide, fact_types, ranks)
    base = explorer.base
    record = base.record
    result = WhatIf(
        record.get("deal_id"),
        str(record.get("status")),
        list(record.get("approvals") or []),
        [],
        list(record.get("errors") or []),
    )
    if base.data is None:
        return result
    result.evaluated = True
    found = explorer.obstacles
    if goals:
        goal = all_of(goals)
        if goal.met(record, record):
            result.answers.append(Answer(None, goal, [], met=True))
        else:
            concerned = [o for o in found if goal.concerns(o)]
            changes = _search(explorer, concerned, _reaches(goal, record))
            answer = Answer(None, goal, changes[:limit], met=bool(changes))
            if not changes:
                goal_met = _reaches(goal, record)
                answer.sequence = _together(explorer, concerned, goal_met) or _sequence(
                    explorer, goal
                )
                answer.met = bool(answer.sequence)
            result.answers.append(answer)
    else:
        for obstacle in found:
            # trading the obstacle for a more senior approver is no answer
            changes = [
                c
                for c in _search(explorer, [obstacle], _gone(obstacle))
                if sum(o.weight for o in c.outcome.added) < obstacle.weight
            ]
            together: list[Change] = []
            if not any(not c.outcome.added for c in changes):
                # no single change removes it cleanly: several numbers of one kind may
                together = _together(explorer, [obstacle], _gone(obstacle, found, ranks))
                if len(together) == 1:  # one number moved after all: a single change
                    changes = sorted([*changes, *together], key=Change.rank)
                    together = []
            result.answers.append(Answer(obstacle, None, changes[:limit], together))
    result.probes = explorer.probes
    return result


def _reaches(goal: Goal, record: Mapping[str, Any]) -> Callable[[Decision], bool]:
    def reaches(decision: Decision) -> bool:
        return goal.met(decision.record, record)

    return reaches


def _gone(
    obstacle: Obstacle, had: Sequence[Obstacle] | None = None, ranks: Sequence[str] = ()
) -> Callable[[Decision], bool]:
    """Whether a decision is rid of ``obstacle`` (and, given the obstacles the deal ``had``,
    brought none: :func:`_brought`)."""

    def gone(decision: Decision) -> bool:
        if decision.data is None or obstacle.key in _present(decision):
            return False
        return had is None or not _brought(had, obstacles(decision, ranks))

    return gone


def _search(
    explorer: _Explorer,
    concerned: Sequence[Obstacle],
    ok: Callable[[Decision], bool],
) -> list[Change]:
    """The smallest change along each knob that satisfies ``ok``, found from the thresholds of
    the ``concerned`` obstacles' rules; the best first. Along a field where the smallest such
    change brings another obstacle, the smallest that brings none is kept too."""
    best: dict[tuple[str, str, tuple[Any, ...]], Change] = {}

    def keep(change: Change) -> None:
        # one change per field and per what it brings: the smallest that brings a senior
        # approver, and the larger one that brings a junior one, are both worth knowing
        brought = tuple(o.key for o in change.outcome.added)
        key = (change.path, "" if change.relative is not None else str(change.after), brought)
        if key not in best or change.rank() < best[key].rank():
            best[key] = change

    before = explorer.obstacles

    def clean_ok(decision: Decision) -> bool:
        return ok(decision) and not _brought(before, obstacles(decision, explorer.ranks))

    for threshold in _thresholds(explorer.base, concerned):

        def crossed(decision: Decision, threshold: Threshold = threshold) -> bool:
            moved = _view(decision, threshold.policy)
            return moved is not None and threshold.holds(moved)

        for knob in explorer.knobs:
            if knob.step is None:
                for choice in knob.choices:
                    decision = explorer.probe(knob, choice)
                    if crossed(decision) and ok(decision):
                        keep(_change(explorer, knob, choice, decision, threshold))
                continue
            for direction in explorer.directions(knob, threshold):
                k = explorer.smallest(knob, direction, crossed)
                if k is None:
                    continue
                if not ok(explorer.probe(knob, explorer.value_at(knob, direction, k))):
                    k = explorer.smallest(knob, direction, ok, start=k)
                    if k is None:
                        continue
                value = explorer.value_at(knob, direction, k)
                change = _change(explorer, knob, value, explorer.probe(knob, value), threshold)
                keep(change)
                if change.outcome.added:
                    # further along, the change may bring nothing (the next row of a table)
                    k = explorer.smallest(knob, direction, clean_ok, start=k)
                    if k is not None:
                        value = explorer.value_at(knob, direction, k)
                        decision = explorer.probe(knob, value)
                        keep(_change(explorer, knob, value, decision, threshold))
    return sorted(best.values(), key=Change.rank)


#: A family's numbers move together in steps of 0.01% of each one's value.
_JOINT_STEP = Decimal("0.0001")
_JOINT_NUDGE = 1000  # 10%: enough to see whether moving a family moves a test


def _together(
    explorer: _Explorer, concerned: Sequence[Obstacle], ok: Callable[[Decision], bool]
) -> list[Change]:
    """Numbers of one kind moved together, when no single change satisfies ``ok``: the same
    field of several lines (two lines that share the largest discount must both be repriced).

    All of a family's numbers move by the same relative amount, in the direction that moves a
    threshold of the ``concerned`` obstacles the way it must go, until ``ok``; then each one
    that need not move goes back, and each of the rest moves no further than it must. The
    family with the smallest total relative change wins; each change shows the decision with it
    and those before it made."""
    families: dict[str, list[Knob]] = {}
    for knob in explorer.knobs:
        if knob.family:
            families.setdefault(knob.family, []).append(knob)
    tests = [t for t in _thresholds(explorer.base, concerned) if t.sense]
    best: list[tuple[Knob, Decimal]] = []
    for members in families.values():
        if len(members) < 2:
            continue
        for direction in (1, -1):
            if not any(_moves_jointly(explorer, members, direction, t) for t in tests):
                continue
            found = _joint(explorer, members, direction, ok)
            if found and (not best or _total(found) < _total(best)):
                best = found
    return [
        _change(explorer, knob, value, explorer.probe_all(best[: index + 1]), None)
        for index, (knob, value) in enumerate(best)
    ]


def _jointly(members: Sequence[Knob], direction: int, k: int) -> list[tuple[Knob, Decimal]]:
    """Every member moved by ``k`` joint steps, each on its own grid (a cent, a unit)."""
    moved = []
    for knob in members:
        assert knob.step is not None
        target = knob.value * (1 + direction * k * _JOINT_STEP) / knob.step
        units = math.ceil(target) if direction > 0 else math.floor(target)
        moved.append((knob, max(knob.step * units, Decimal(0))))
    return moved


def _moves_jointly(
    explorer: _Explorer, members: Sequence[Knob], direction: int, threshold: Threshold
) -> bool:
    before = _view(explorer.base, threshold.policy)
    after = _view(explorer.probe_all(_jointly(members, direction, _JOINT_NUDGE)), threshold.policy)
    if before is None or after is None:
        return False
    old, new = threshold.gap(before), threshold.gap(after)
    return old is not None and new is not None and (new - old) * (threshold.sense or 0) > 0


def _joint(
    explorer: _Explorer, members: Sequence[Knob], direction: int, ok: Callable[[Decision], bool]
) -> list[tuple[Knob, Decimal]]:
    limit = int((_GROWTH - 1 if direction > 0 else 1) / _JOINT_STEP)
    k = _smallest(lambda k: ok(explorer.probe_all(_jointly(members, direction, k))), limit)
    if k is None:
        return []
    moved = [
        (knob, value) for knob, value in _jointly(members, direction, k) if value != knob.value
    ]
    for pair in list(moved):  # back where they were, those the change does not need
        rest = [p for p in moved if p is not pair]
        if rest and ok(explorer.probe_all(rest)):
            moved = rest
    for index, (knob, value) in enumerate(moved):  # and each of the others no further than needed
        others = moved[:index] + moved[index + 1 :]
        assert knob.step is not None
        start = knob.value / knob.step
        start_units = math.floor(start) if direction > 0 else math.ceil(start)
        farthest = int((value / knob.step - start_units) * direction)

        def holds(j: int, knob: Knob = knob, others: list[tuple[Knob, Decimal]] = others) -> bool:
            return ok(explorer.probe_all([*others, (knob, explorer.value_at(knob, direction, j))]))

        j = _smallest(holds, farthest)
        if j is not None:
            moved[index] = (knob, explorer.value_at(knob, direction, j))
    return moved if moved and ok(explorer.probe_all(moved)) else []


def _total(changes: Sequence[tuple[Knob, Decimal]]) -> Decimal:
    return sum(
        (abs(v - k.value) / abs(k.value) if k.value else Decimal(_GROWTH) for k, v in changes),
        Decimal(0),
    )


def _thresholds(decision: Decision, concerned: Sequence[Obstacle]) -> list[Threshold]:
    found: dict[tuple[str, str, str], Threshold] = {}
    for obstacle in concerned:
        for policy, rule in obstacle.rules:
            view = _view(decision, policy)
            if view is None:
                continue
            for threshold in thresholds(decision.runs[policy].policy, rule, view):
                found.setdefault((policy, rule.key, repr(threshold.test)), threshold)
    return list(found.values())


def _change(
    explorer: _Explorer, knob: Knob, value: Any, decision: Decision, threshold: Threshold | None
) -> Change:
    before, after = explorer.obstacles, obstacles(decision, explorer.ranks)
    after_keys = {o.key for o in after}
    record = decision.record
    outcome = Outcome(
        str(record.get("status")),
        list(record.get("approvals") or []),
        [o for o in before if o.key not in after_keys],
        _brought(before, after),
    )
    subject = None
    if (
        threshold is not None
        and isinstance(threshold.test, Compare)
        and threshold.sense is not None
    ):
        old, new = _view(explorer.base, threshold.policy), _view(decision, threshold.policy)
        if old is not None and new is not None:
            # the side that moved: the deal's value, or the limit it is held to
            side = threshold.test.left
            if evaluate(side, old) == evaluate(side, new):
                side = threshold.test.right
            subject = (format_expr(side), evaluate(side, old), evaluate(side, new))
    note = REMOVABLE.get(".".join(map(str, knob.keys)), "")
    return Change(
        knob.path,
        knob.value,
        value,
        outcome,
        (_plain(knob, knob.value, explorer.currency), _plain(knob, value, explorer.currency)),
        crosses="" if threshold is None else threshold.text,
        subject=subject,
        note=note if value is REMOVED else "",
        sku=knob.sku,
    )


def _sequence(start: _Explorer, goal: Goal) -> list[Change]:
    """Changes that reach ``goal`` together, empty when none are found within
    :data:`MAX_SEQUENCE` steps. Each step takes the single change that makes the most progress
    (the weight of the goal's obstacles it removes, less what it brings: trading an approver
    for a less senior one is progress), the smallest such; when none makes any, two choices at
    once (an obstacle that two rules require, such as ``deal_desk`` for a risk offer and for its
    requested split). A field changed twice is one step, from its first value to its last."""
    steps: list[Change] = []
    explorer = start
    while len(steps) < MAX_SEQUENCE:
        concerned = [o for o in explorer.obstacles if goal.concerns(o)]
        keys = {o.key for o in concerned}

        def progress(change: Change, keys: set[tuple[str, str, str]] = keys) -> int:
            brought = [o for o in change.outcome.added if goal.concerns(o) or o.kind == "rejection"]
            removed = [o for o in change.outcome.removed if o.key in keys]
            return sum(o.weight for o in removed) - sum(o.weight for o in brought)

        def removes_one(decision: Decision, keys: set[tuple[str, str, str]] = keys) -> bool:
            return bool(keys - _present(decision))

        singles = _search(explorer, concerned, removes_one)
        chosen = [min(singles, key=lambda c: (-progress(c), c.rank()))] if singles else []
        if not chosen or progress(chosen[0]) <= 0:
            chosen = _together(explorer, concerned, removes_one)
        if not chosen or progress(chosen[-1]) <= 0:
            chosen = _pair(explorer, progress)
        if not chosen:
            return []
        current = explorer.raw
        for change in chosen:
            knob = next(k for k in explorer.knobs if k.path == change.path)
            current = _changed(current, [(knob, change.after)])
            earlier = next((s for s in steps if s.path == change.path), None)
            if earlier is not None:
                steps.remove(earlier)
                change.before, change.shown = earlier.before, (earlier.shown[0], change.shown[1])
            steps.append(change)
        explorer = _Explorer(current, explorer.decide, explorer.fact_types, explorer.ranks)
        if goal.met(explorer.base.record, start.base.record):
            return steps
    return []


def _overlap(one: Knob, other: Knob) -> bool:
    """Whether the fields are one and the same, or one holds the other (``partner``)."""
    size = min(len(one.keys), len(other.keys))
    return one.keys[:size] == other.keys[:size]


def _pair(explorer: _Explorer, progress: Callable[[Change], int]) -> list[Change]:
    """The two choices (of different fields) that together make the most ``progress``, as two
    steps; empty when no pair makes any."""
    options = [(k, c) for k in explorer.knobs if k.step is None for c in k.choices]
    best: tuple[int, list[Change]] = (0, [])
    for i, (first, one) in enumerate(options):
        for second, other in options[i + 1 :]:
            if _overlap(first, second):
                continue
            both = explorer.probe_all([(first, one), (second, other)])
            step_two = _change(explorer, second, other, both, None)
            if progress(step_two) > best[0]:
                step_one = _change(explorer, first, one, explorer.probe(first, one), None)
                best = (progress(step_two), [step_one, step_two])
    return best[1]


# ---------------------------------------------------------------------------------------------
# Showing


def as_json(result: WhatIf) -> dict[str, Any]:
    """``dealdesk whatif --format json``: plain JSON data (money as decimal strings, fractions
    to 4 places, as records show them)."""

    def change_json(change: Change) -> dict[str, Any]:
        subject = None
        if change.subject is not None:
            text, old, new = change.subject
            subject = {"expression": text, "from": _fraction(old), "to": _fraction(new)}
        return {
            "path": change.path,
            "from": change.shown[0],
            "to": change.shown[1],
            "removed": change.removed,
            "relative_change": _fraction(change.signed) if change.signed is not None else None,
            "sku": change.sku or None,
            "crosses": change.crosses or None,
            "subject": subject,
            "decision": {"status": change.outcome.status, "approvals": change.outcome.approvals},
            "removes": [o.label for o in change.outcome.removed],
            "adds": [o.label for o in change.outcome.added],
        }

    answers = []
    for answer in result.answers:
        item: dict[str, Any]
        if answer.obstacle is not None:
            obstacle = answer.obstacle
            item = {
                "obstacle": {
                    "kind": obstacle.kind,
                    "name": obstacle.name,
                    "rules": _rule_labels(obstacle),
                }
            }
        else:
            assert answer.goal is not None
            item = {"goal": answer.goal.text, "met": answer.met}
        item["changes"] = [change_json(c) for c in answer.changes]
        item["together"] = [change_json(c) for c in answer.sequence]
        answers.append(item)
    return {
        "deal_id": result.deal_id,
        "status": result.status,
        "approvals": result.approvals,
        "answers": answers,
        "errors": result.errors,
    }


def _fraction(value: Any) -> Any:
    number = to_decimal(value)
    if number is None or not number.is_finite():
        return None if number is None or number.is_nan() else str(number)
    return round_fraction(number)


def _rule_labels(obstacle: Obstacle) -> list[str]:
    return list(dict.fromkeys(rule.label for _, rule in obstacle.rules))


def format_text(result: WhatIf) -> str:
    """The answer for people: per obstacle (or goal), each change, what it crosses and the
    decision it gives."""
    from dealdesk.explain import format_value
    from dealdesk.io.summary import format_message

    approvals = f" (approvals: {', '.join(result.approvals)})" if result.approvals else ""
    lines = [f"{result.deal_id or '(no id)'}: {result.status}{approvals}"]
    if result.status == "invalid":
        lines += [f"  error: {format_message(error)}" for error in result.errors]
        lines.append(
            "  the rules could not decide this deal: fix these first"
            if result.evaluated
            else "  an invalid deal has no decision to change: fix these first"
        )
        return "\n".join(lines) + "\n"
    if not result.answers:
        lines.append("  nothing stands in the way: no rejection, no approver")
    for answer in result.answers:
        lines.append("")
        if answer.obstacle is not None:
            lines.append(
                f"{answer.obstacle.label} (from {', '.join(_rule_labels(answer.obstacle))})"
            )
        else:
            lines.append(f"goal: {answer.goal.text if answer.goal else ''}")
            if answer.met and not answer.changes and not answer.sequence:
                lines.append("  already met")
                continue
        for change in answer.changes:
            lines += _change_lines(change, format_value)
        if answer.sequence:
            lines.append(
                "  or these together, which bring no other:"
                if answer.changes
                else "  no single change; these together do:"
            )
            for number, change in enumerate(answer.sequence, 1):
                lines += _change_lines(change, format_value, f"{number}.")
        elif answer.changes:
            continue
        elif answer.goal is not None:
            lines.append(f"  no change found that reaches it (tried {result.probes} variants)")
        else:
            lines.append("  no single change removes it (try --goal for changes that do together)")
    return "\n".join(lines) + "\n"


def _change_lines(change: Change, show: Callable[[Any], str], bullet: str = "-") -> list[str]:
    if change.removed:
        what = f"remove {change.path}" + (f" ({change.note})" if change.note else "")
    else:
        size = ""
        if change.signed is not None:
            sign = "+" if change.signed >= 0 else "-"
            percent = abs(change.signed) * 100
            size = f" ({sign}{percent:.2f}%)" if percent >= Decimal("0.005") else f" ({sign}<0.01%)"
        line = f" ({change.sku})" if change.sku else ""
        before, after = _shown(change.shown[0], show), _shown(change.shown[1], show)
        what = f"{change.path}{line}: {before} → {after}{size}"
    lines = [f"  {bullet} {what}"]
    if change.crosses:
        subject = ""
        if change.subject is not None:
            text, old, new = change.subject
            subject = f"; {text} {show(old)} → {show(new)}"
        lines.append(f"      crosses {change.crosses}{subject}")
    outcome = change.outcome
    gives = outcome.status + (f" ({', '.join(outcome.approvals)})" if outcome.approvals else "")
    if outcome.added:
        gives += f"; brings {', '.join(o.label for o in outcome.added)}"
    lines.append(f"      gives {gives}")
    return lines


def _shown(value: Any, show: Callable[[Any], str]) -> str:
    return value if isinstance(value, str) and value[:1].isdigit() else show(value)
