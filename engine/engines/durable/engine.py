"""The durable engine: each stratum lowered to durable_rules rulesets, matched on its C core.

Importing this module imports durable_rules, which does not import on Python 3.13: there,
:func:`dealdesk.engines.available_engines` leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dealdesk.engines.base import Engine, Evaluation
from dealdesk.engines.durable.driver import DurableDriver, encode_fact, get_driver
from dealdesk.engines.durable.lowering import ConditionCompiler, FactPlan, definition_digest
from dealdesk.errors import record_error
from dealdesk.evaluate import evaluation_order
from dealdesk.rules.expressions import fields

if TYPE_CHECKING:
    from dealdesk.manager import RegisteredAction
    from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet


@dataclass
class LoweredStratum:
    """A stratum as one durable ruleset (``name``, ``definition``; the driver splits it into
    parts durable can run), the ``plan`` of the one fact it matches, and each durable rule
    name's rule."""

    rules: dict[str, CompiledRule]
    plan: FactPlan
    name: str
    definition: dict[str, Any]
    # the stratum's rules in evaluation order, and each durable rule name's place among them
    ordered: list[CompiledRule] = field(init=False)
    places: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        unique = {rule.key: rule for rule in self.rules.values()}
        self.ordered = sorted(unique.values(), key=evaluation_order)
        place = {rule.key: i for i, rule in enumerate(self.ordered)}
        self.places = {name: place[rule.key] for name, rule in self.rules.items()}

    def fired(self, names: list[str]) -> list[CompiledRule]:
        """The rules whose durable rules are ``names``, each once, in evaluation order."""
        places = self.places
        ordered = self.ordered
        return [ordered[i] for i in sorted({places[name] for name in names})]


def lower_stratum(policy: str, index: int, rules: list[CompiledRule]) -> LoweredStratum:
    """Lower one stratum's conditions to a durable ruleset."""
    compiler = ConditionCompiler()
    definition: dict[str, Any] = {}
    by_name: dict[str, CompiledRule] = {}
    for rule in rules:
        for i, body in enumerate(compiler.compile(rule.condition)):
            # one durable rule per alternative of the condition; any of them fires the rule
            by_name[f"{rule.key}|{i}"] = rule
            definition[f"{rule.key}|{i}"] = body
    name = f"{policy}#{index}@{definition_digest(definition)}"
    return LoweredStratum(by_name, compiler.plan, name, definition)


class DurableEngine(Engine):
    name = "durable"

    def __init__(
        self,
        policy_set: PolicySet,
        actions: Mapping[str, RegisteredAction],
        *,
        driver: DurableDriver | None = None,
        max_actions: int = 10_000,
    ):
        super().__init__(policy_set, actions)
        self.driver = driver or get_driver()
        self.max_actions = max_actions
        self.strata = {
            name: [lower_stratum(name, k, s.rules) for k, s in enumerate(policy.strata)]
            for name, policy in policy_set.policies.items()
        }
        # Every policy's first stratum whose conditions read no output matches on the deal as it
        # is: those strata are matched together, one durable round trip per deal instead of one
        # each (actions and `set` values reading outputs do not matter to matching).
        self.together = [
            name
            for name, policy in policy_set.policies.items()
            if policy.strata and not any(_reads_outputs(r) for r in policy.strata[0].rules)
        ]
        rules = [r for name in self.together for r in policy_set.policies[name].strata[0].rules]
        self.first = lower_stratum("first", 0, rules) if len(self.together) > 1 else None
        self._matched: dict[str, list[CompiledRule]] | None = None
        for strata in self.strata.values():
            for lowered in strata:
                self.driver.register(lowered.name, lowered.definition)
        if self.first is not None:
            self.driver.register(self.first.name, self.first.definition)

    def evaluate_one(self, deal: Mapping[str, Any]) -> Evaluation:
        if self.first is None:
            return super().evaluate_one(deal)
        try:
            found = self._match(self.first, deal)
        except Exception as exc:  # a durable failure costs this deal only
            return Evaluation(error=record_error(exc))
        self._matched = {name: [] for name in self.together}
        for rule in found:
            self._matched[rule.ruleset.policy].append(rule)
        try:
            return super().evaluate_one(deal)
        finally:
            self._matched = None

    def match(self, policy: Policy, stratum: int, view: Mapping[str, Any]) -> list[CompiledRule]:
        if stratum == 0 and self._matched is not None and policy.name in self._matched:
            return self._matched[policy.name]
        return self._match(self.strata[policy.name][stratum], view)

    def _match(self, lowered: LoweredStratum, view: Mapping[str, Any]) -> list[CompiledRule]:
        fact, plain = lowered.plan.build_checked(view)
        try:
            text = encode_fact(fact, plain)
        except (TypeError, ValueError):
            text = None  # the driver says why the fact is not JSON
        # a rule fires once however many of its alternatives (durable rules) matched
        return lowered.fired(
            self.driver.match(lowered.name, fact, max_actions=self.max_actions, text=text)
        )


def _reads_outputs(rule: CompiledRule) -> bool:
    """Whether ``rule``'s condition reads an output (``outputs`` or anything under it)."""
    return any(not f.item and f.path.split(".", 1)[0] == "outputs" for f in fields(rule.condition))


ENGINE = DurableEngine
