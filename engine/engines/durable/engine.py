"""The durable engine: each stratum lowered to durable_rules rulesets, matched on its C core.

Importing this module imports durable_rules, which does not import on Python 3.13: there,
:func:`dealdesk.engines.available_engines` leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dealdesk.engines.base import Engine, Evaluation
from dealdesk.engines.durable.driver import DurableDriver, get_driver
from dealdesk.engines.durable.lowering import ConditionCompiler, FactPlan, definition_digest
from dealdesk.errors import record_error
from dealdesk.evaluate import evaluation_order

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
        # Every policy's first stratum whose rules read no output sees the deal as it is: those
        # strata are matched together, one durable round trip per deal instead of one each.
        self.together = [
            name for name, reads in self.runner.reads_outputs.items() if reads and not reads[0]
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
        fact = lowered.plan.build(view)
        # a rule fires once however many of its alternatives (durable rules) matched
        matched = {
            lowered.rules[rule].key: lowered.rules[rule]
            for rule in self.driver.match(lowered.name, fact, max_actions=self.max_actions)
        }
        return sorted(matched.values(), key=evaluation_order)


ENGINE = DurableEngine
