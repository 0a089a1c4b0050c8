"""The native engine: each stratum's conditions compiled once into Python closures.

No code is generated from ruleset text: :func:`~dealdesk.rules.meaning.compile_expr` builds
closures over the checked condition tree, with literals held as values. It runs on every
Python dealdesk supports and has no limits of its own beyond memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dealdesk.engines.base import Engine
from dealdesk.evaluate import evaluation_order
from dealdesk.rules.meaning import Compiled, compile_expr

if TYPE_CHECKING:
    from dealdesk.manager import RegisteredAction
    from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet


class NativeEngine(Engine):
    name = "native"

    def __init__(self, policy_set: PolicySet, actions: Mapping[str, RegisteredAction]):
        super().__init__(policy_set, actions)
        # each stratum's conditions once, in evaluation order: matching keeps that order
        self.strata: dict[str, list[list[tuple[Compiled, CompiledRule]]]] = {
            name: [
                [(compile_expr(r.condition), r) for r in sorted(s.rules, key=evaluation_order)]
                for s in policy.strata
            ]
            for name, policy in policy_set.policies.items()
        }

    def match(self, policy: Policy, stratum: int, view: Mapping[str, Any]) -> list[CompiledRule]:
        return [
            rule for test, rule in self.strata[policy.name][stratum] if test(view, None) is True
        ]


ENGINE = NativeEngine
