"""What a plugin action sees when a rule with ``then.action`` fires (SPEC §7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class RulesetMessage(str):
    """A message written in a ruleset (rendered with Jinja), as opposed to an action's text."""


@dataclass
class Effects:
    """Everything one fired rule (or the action it named) asks for, in the order asked."""

    sets: list[tuple[str, Any]] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


class ActionContext:
    """Handed to ``func(ctx)`` of an action registered with ``dealdesk_actions``.

    ``deal`` is a read-only view of the deal with its derived facts (money as ``Decimal``),
    ``args`` the rule's ``with:`` mapping (``=`` expressions already evaluated), ``rule`` the id
    of the rule that fired, ``policy`` its policy family and ``outputs`` the policy's outputs
    combined so far (read-only).
    """

    def __init__(
        self,
        deal: Mapping[str, Any],
        args: Mapping[str, Any],
        rule: str,
        policy: str,
        outputs: Mapping[str, Any] | None = None,
    ):
        # read-only views, not copies: an action runs for every firing of its rule
        self.deal = MappingProxyType(deal if isinstance(deal, dict) else dict(deal))
        self.args = MappingProxyType(dict(args))
        self.rule = rule
        self.policy = policy
        self.outputs = MappingProxyType(dict(outputs or {}))
        self.effects = Effects()

    def set(self, key: str, value: Any) -> None:
        """Set output ``key`` of the rule's policy (combined like any ``set``)."""
        self.effects.sets.append((key, value))

    def require(self, role: str) -> None:
        """Require approval by ``role`` (a name from ``rulesets/approvers.yaml``)."""
        self.effects.requires.append(role)

    def reject(self, message: str) -> None:
        """Reject the deal with ``message``."""
        self.effects.rejects.append(message)

    def flag(self, message: str) -> None:
        """Add a warning that does not change the status."""
        self.effects.flags.append(message)

    def clause(self, template_id: str) -> None:
        """Ask for the clause template ``template_id`` (``billing/milestones``)."""
        self.effects.clauses.append(template_id)

    def reason(self, message: str) -> None:
        """Explain the decision with ``message``."""
        self.effects.reasons.append(message)
