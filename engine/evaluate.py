"""Prepared deals → policy runs: strata in order, hit policies, actions, outputs (SPEC §3).

What every engine shares. An engine (:mod:`dealdesk.engines`) only answers "which rules of this
stratum match this view of the deal"; :class:`PolicyRunner` does the rest the same way for all
of them, so their records cannot drift apart: it applies each decision table's hit policy,
carries out the rules' ``then`` (and plugin actions) in priority order, and combines the
outputs a later stratum reads. The runs it returns are combined into a record by
:mod:`dealdesk.combine`; nothing here renders messages or clauses, or calls sinks.
"""

from __future__ import annotations

import itertools
from bisect import insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from dealdesk import combine
from dealdesk.actions import ActionContext, Effects, RulesetMessage
from dealdesk.errors import PluginError
from dealdesk.rules.expressions import Expr
from dealdesk.rules.meaning import compile_expr, lookup, to_decimal
from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet

if TYPE_CHECKING:
    from dealdesk.manager import RegisteredAction

#: ``match(policy, stratum_index, view)`` → the rules of that stratum whose condition is true,
#: each once, in evaluation order (:func:`evaluation_order`).
Matcher = Callable[[Policy, int, Mapping[str, Any]], Iterable[CompiledRule]]


_NO_OVERRIDES: dict[str, Any] = {}
_NO_EXTRAS = itertools.repeat(_NO_OVERRIDES)  # what a rule outside a table adds to its sets
_ORDER = itemgetter(0)  # a contribution's (priority, file order, firing)


@dataclass(slots=True)
class Firing:
    """One fired rule (or selected table row) and what it asked for."""

    rule: CompiledRule
    effects: Effects = field(default_factory=Effects)


@dataclass(slots=True)
class PolicyRun:
    """A policy's evaluation of one deal: its firings, in order, and the outputs they set.

    Outputs are combined incrementally: each output keeps its contributions sorted by
    (priority, file order, firing) and its combined value until a new contribution arrives.
    """

    policy: Policy
    firings: list[Firing] = field(default_factory=list)
    contributions: dict[str, list[tuple[tuple[Any, ...], Any]]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    _combined: dict[str, Any] = field(default_factory=dict, repr=False)

    def contribute(self, name: str, key: tuple[Any, ...], value: Any) -> None:
        entries = self.contributions.get(name)
        if entries is None:
            self.contributions[name] = [(key, value)]
        elif entries[-1][0] <= key:
            entries.append((key, value))  # rules mostly fire in this order already
        else:
            insort(entries, (key, value), key=_ORDER)
        self._combined.pop(name, None)

    def output(self, name: str) -> Any:
        """Output ``name`` combined over the values set so far (its default when unset)."""
        if name in self._combined:
            return self._combined[name]
        spec = self.policy.outputs.get(name)
        # an unknown value (a `set` expression with a missing operand) sets nothing
        values = [v for _, v in self.contributions.get(name, ()) if v is not None]
        if not values:
            combined = None if spec is None else spec.default
        elif spec is None or spec.combine == "first":  # undeclared: `first` (SPEC §3)
            combined = values[0]
        else:
            combined = combine.combine_values(spec.combine, values)
            if combined is None:
                combined = spec.default
        self._combined[name] = combined
        return combined

    def outputs(self) -> dict[str, Any]:
        """Every output the policy declares or a rule set, combined (None when unset)."""
        result = dict(self.policy.defaults)
        for name in self.contributions:
            result[name] = self.output(name)
        return result

    def fired_ids(self) -> list[str]:
        return list(dict.fromkeys([f.rule.id for f in self.firings]))


class PolicyRunner:
    """Runs every policy of a set on prepared deals, with the rules an engine matches.

    :param policy_set: a validated set.
    :param actions: the plugin actions by name.
    """

    def __init__(self, policy_set: PolicySet, actions: Mapping[str, RegisteredAction]):
        self.policy_set = policy_set
        self.actions = actions
        policies = policy_set.policies.values()
        self.windowed = {
            p.name: any(r.effective_from or r.effective_to for r in p.rulesets) for p in policies
        }
        # a stratum whose rules (or actions) read no output matches against the deal as it is
        self.reads_outputs = {
            p.name: [any(r.reads() or r.then.action is not None for r in s.rules) for s in p.strata]
            for p in policies
        }
        self.has_tables = {p.name: any(r.table is not None for r in p.rules) for p in policies}
        # what a rule without an action or expressions does is the same on every deal: its
        # firing (and its effects) is built once and shared, read-only, by every run it fires in
        self.static = {
            rule.key: Firing(rule, self._effects(rule))
            for p in policies
            for rule in p.rules
            if rule.then.action is None and not _has_expression(rule.sets)
        }

    @staticmethod
    def _effects(rule: CompiledRule) -> Effects:
        effects = Effects()
        _record_then(rule, effects, {}, _NO_OVERRIDES)
        return effects

    def run(self, data: Mapping[str, Any], match: Matcher) -> dict[str, PolicyRun]:
        """Each policy's run on ``data`` (a deal with its derived facts).

        :raises PluginError: a plugin action failed (the caller makes the deal invalid).
        """
        return {
            name: self.run_policy(policy, data, match)
            for name, policy in self.policy_set.policies.items()
        }

    def run_policy(self, policy: Policy, data: Mapping[str, Any], match: Matcher) -> PolicyRun:
        """Evaluate every stratum of ``policy`` on ``data``, applying actions as rules fire."""
        run = PolicyRun(policy)
        static_firings = self.static
        windowed = self.windowed[policy.name]
        applicable = policy.applicable(lookup(data, "dates.close")) if windowed else None
        for index, reads_outputs in enumerate(self.reads_outputs[policy.name]):
            # the outputs so far, for the strata whose rules read them (and for actions)
            view = {**data, "outputs": run.outputs()} if reads_outputs else data
            matched = match(policy, index, view)
            if applicable is not None:
                matched = [r for r in matched if r.ruleset.name in applicable]
            chosen = (
                self.select_rows(list(matched), view, run)
                if self.has_tables[policy.name]
                else zip(matched, _NO_EXTRAS, strict=False)
            )
            firings = run.firings
            for rule, extra in chosen:
                firing = None if extra else static_firings.get(rule.key)
                if firing is None:
                    firing = Firing(rule)
                    self.apply(rule, firing, view, run, extra)
                if firing.effects.sets:
                    key = (rule.rank, len(firings))
                    for name, value in firing.effects.sets:
                        run.contribute(name, key, value)
                firings.append(firing)  # rules of one stratum never read each other's outputs
        return run

    def select_rows(
        self, matched: list[CompiledRule], data: Mapping[str, Any], run: PolicyRun
    ) -> list[tuple[CompiledRule, dict[str, Any]]]:
        """Apply each decision table's hit policy to its matched rows (DMN semantics)."""
        chosen: list[tuple[CompiledRule, dict[str, Any]]] = []
        tables: dict[str, list[CompiledRule]] = {}
        for rule in matched:
            if rule.table is None:
                chosen.append((rule, {}))
            else:
                tables.setdefault(rule.unit, []).append(rule)
        if not tables:
            return chosen  # already by priority, then file order
        for rows in tables.values():
            rows.sort(key=lambda r: r.row or 0)
            table = rows[0].table
            assert table is not None
            hit = table.hit
            if hit == "first":
                chosen.append((rows[0], {}))
            elif hit == "unique":
                if len(rows) > 1:
                    run.errors.append(
                        _table_error(rows, "hit policy unique, but rows {} all match")
                    )
                else:
                    chosen.append((rows[0], {}))
            elif hit == "any":
                values = {repr(set_values(r, data)) for r in rows}
                if len(values) > 1:
                    run.errors.append(
                        _table_error(
                            rows, "hit policy any, but rows {} match with different outputs"
                        )
                    )
                else:
                    chosen.append((rows[0], {}))
            elif hit in ("priority", "output order"):
                ordered = sorted(rows, key=lambda r: (_rank(r, data), r.row))
                chosen.extend((r, {}) for r in (ordered[:1] if hit == "priority" else ordered))
            elif hit == "collect" and table.aggregation:
                chosen.append(_aggregate(rows, table.aggregation, data))
            else:  # rule order, collect
                chosen.extend((r, {}) for r in rows)
        # rules by priority then file order; a table's rows keep the order its hit policy chose
        return sorted(chosen, key=lambda c: (-c[0].priority, c[0].order[:2]))

    def apply(
        self,
        rule: CompiledRule,
        firing: Firing,
        data: Mapping[str, Any],
        run: PolicyRun,
        overrides: Mapping[str, Any],
    ) -> None:
        """Carry out the rule's ``then`` (and its plugin action), recording the effects."""
        _record_then(rule, firing.effects, data, overrides)
        if rule.then.action is not None:
            self._act(rule, rule.then.action, firing.effects, data, run)

    def _act(
        self,
        rule: CompiledRule,
        action: str,
        effects: Effects,
        data: Mapping[str, Any],
        run: PolicyRun,
    ) -> None:
        registered = self.actions[action]
        ctx = ActionContext(
            data, value_of(rule.args, data), rule.id, run.policy.name, data.get("outputs")
        )
        where = f"action {action!r} (rule {rule.id})"
        try:
            registered.func(ctx)
        except (Exception, SystemExit) as exc:  # sys.exit too: the plugin's failure
            raise PluginError(registered.plugin, where, exc) from exc
        for name, _ in ctx.effects.sets:
            if not isinstance(name, str) or not name:
                message = f"set the output {name!r}; output names are non-empty strings"
                raise PluginError(registered.plugin, where, message)
        ranks = self.policy_set.approvers
        for role in ctx.effects.requires:
            if ranks and role not in ranks:
                raise PluginError(
                    registered.plugin, where, f"required the unknown approver role {role!r}"
                )
        done = ctx.effects
        effects.sets += done.sets
        effects.requires += done.requires
        effects.rejects += done.rejects
        effects.flags += done.flags
        effects.clauses += done.clauses
        effects.reasons += done.reasons


def _record_then(
    rule: CompiledRule, effects: Effects, data: Mapping[str, Any], overrides: Mapping[str, Any]
) -> None:
    """What the rule's ``then`` asks for, without its plugin action."""
    if overrides:
        effects.sets.extend({**set_values(rule, data), **overrides}.items())
    elif rule.sets:
        effects.sets.extend(set_values(rule, data).items())
    effects.requires.extend(rule.then.require)
    effects.clauses.extend(rule.then.clauses)
    for kind, text in rule.messages:
        getattr(effects, kind).append(RulesetMessage(text))


def _has_expression(value: Any) -> bool:
    if isinstance(value, Expr):
        return True
    if isinstance(value, list):
        return any(_has_expression(v) for v in value)
    if isinstance(value, dict):
        return any(_has_expression(v) for v in value.values())
    return False


def evaluation_order(rule: CompiledRule) -> tuple[int, tuple[int, int, int]]:
    """Rules fire by priority (higher first), then ruleset and file order, then table row."""
    return (-rule.priority, rule.order)


def set_values(rule: CompiledRule, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values ``rule`` sets on ``data`` (``=`` expressions evaluated)."""
    result: dict[str, Any] = value_of(rule.sets, data)
    return result


def value_of(value: Any, data: Mapping[str, Any]) -> Any:
    """A ``set``/``with`` value on ``data``: expressions evaluated, literals as written (lists
    and mappings as fresh copies)."""
    found = _VALUERS.get(id(value))
    if found is None:
        found = _VALUERS[id(value)] = (value, _valuer(value))
    return found[1](data)


#: ``fn(data)``: a ``set``/``with`` value on one deal.
Valuer = Callable[[Mapping[str, Any]], Any]

# built once per value object (a policy set's values live as long as the process uses them;
# the value is kept beside its valuer so its id is never reused meanwhile)
_VALUERS: dict[int, tuple[Any, Valuer]] = {}


def _valuer(value: Any) -> Valuer:
    if isinstance(value, Expr):
        compiled = compile_expr(value)
        return lambda data: compiled(data, None)
    if isinstance(value, list):
        items = [_valuer(v) for v in value]
        return lambda data: [item(data) for item in items]
    if isinstance(value, dict):
        entries = [(k, _valuer(v)) for k, v in value.items()]
        return lambda data: {k: entry(data) for k, entry in entries}
    return lambda data: value


def _rank(rule: CompiledRule, data: Mapping[str, Any]) -> int:
    table = rule.table
    assert table is not None
    values = set_values(rule, data)
    for output, order in table.value_order.items():
        if output in values:
            value = values[output]
            number = to_decimal(value)  # 0.4 in the order matches a Decimal("0.40") value
            matches = [
                i
                for i, v in enumerate(order)
                if v == value or (number is not None and to_decimal(v) == number)
            ]
            return matches[0] if matches else len(order)
    return 1 << 30


def _aggregate(
    rows: list[CompiledRule], aggregation: str, data: Mapping[str, Any]
) -> tuple[CompiledRule, dict[str, Any]]:
    # validation made every row set the same single output
    (name,) = rows[0].sets
    if aggregation == "count":
        total: Any = Decimal(len(rows))
    else:  # sum, min and max are combine modes too
        total = combine.combine_values(aggregation, [set_values(r, data)[name] for r in rows])
    return rows[0], {name: total}


def _table_error(rows: list[CompiledRule], message: str) -> dict[str, Any]:
    numbers = ", ".join(str((r.row or 0) + 1) for r in rows)
    rule = rows[0]
    return {
        "path": "",
        "message": f"{rule.location}: table {rule.id!r}: " + message.format(numbers),
        "rule": rule.id,
    }
