"""Policy runs → one decision record per deal (SPEC §4).

Status precedence, approval order, output combination and formatting are pure functions over
plain data, so they can be tested (and property-tested) without an engine; :class:`Combiner`
assembles a deal's record from its policy runs, rendering ruleset messages (only those that
need Jinja) and asking the ``dealdesk_combine`` plugins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from dealdesk import __version__
from dealdesk.actions import RulesetMessage
from dealdesk.errors import DealdeskError
from dealdesk.messages import template_context
from dealdesk.money import money_string, round_fraction
from dealdesk.record import STATUS_ORDER, DecisionRecord, record_dict
from dealdesk.rules.meaning import to_decimal

if TYPE_CHECKING:
    from dealdesk.evaluate import Firing, PolicyRun
    from dealdesk.rules.model import OutputSpec


def worst(statuses: Iterable[str]) -> str:
    """The status that wins: invalid > rejected > needs_approval > approved."""
    return max(statuses, key=STATUS_ORDER.index, default="approved")


def policy_status(rejects: int, requires: int) -> str:
    return "rejected" if rejects else "needs_approval" if requires else "approved"


def order_roles(roles: Iterable[str], ranks: Sequence[str] | Mapping[str, int]) -> list[str]:
    """Unique roles, by their rank in approvers.yaml; unranked roles last, by name.

    :param ranks: the roles in rank order, or each role's rank (built once by a caller that
        orders the roles of many deals).
    """
    rank = ranks if isinstance(ranks, Mapping) else {role: i for i, role in enumerate(ranks)}
    return sorted(set(roles), key=lambda r: (rank.get(r, len(rank)), r))


def combine_values(mode: str, values: Sequence[Any]) -> Any:
    """Combine the values several rules set for one output; ``values`` are in priority order."""
    if not values:
        return None
    if mode == "list":
        return list(values)
    if mode == "first":
        return values[0]
    numbers = [to_decimal(v) for v in values]
    present = [n for n in numbers if n is not None]
    if not present:
        return values[0]
    if mode == "max":
        return max(present)
    if mode == "min":
        return min(present)
    return sum(present, Decimal(0))


def format_output(value: Any, kind: str, currency: str) -> Any:
    """An output value as the record shows it: money as a decimal string in the currency's
    minor units, fractions rounded to 4 places, integral numbers as integers."""
    if value is None:
        return None
    if kind in _NUMERIC_KINDS:
        number = to_decimal(value)
        if number is not None:
            if kind == "money":
                return money_string(number, currency)
            if kind == "fraction":
                return round_fraction(number)
            return int(number.to_integral_value(rounding=ROUND_HALF_UP))
    return plain(value)


_NUMERIC_KINDS = frozenset(("money", "fraction", "integer"))
_AS_IS = frozenset((str, bool, int))  # what plain() returns unchanged (not its subclasses)


def format_value(policy: str, key: str, value: Any, spec: OutputSpec | None, currency: str) -> Any:
    """Output ``key`` of ``policy`` as the record shows it (:func:`format_output` by its
    declared type, else :func:`plain`).

    :raises DealdeskError: the value is not finite (records are strict JSON).
    """
    kind = spec.type if spec is not None and spec.type in _NUMERIC_KINDS else ""
    if value is None or (not kind and type(value) in _AS_IS):
        return value
    try:
        return format_output(value, kind, currency) if kind else plain(value)
    except NotFinite as exc:
        raise DealdeskError(
            f"policies.{policy}.outputs.{key} is {exc.what}; records are strict JSON "
            "(no NaN or Infinity)"
        ) from None


class NotFinite(DealdeskError):
    """A value that strict JSON cannot hold (NaN, an infinity, a number past float range)."""

    def __init__(self, value: Any):
        number = Decimal(value) if isinstance(value, float) else value
        if number.is_nan():
            self.what = "NaN"
        elif number.is_infinite():
            self.what = "-Infinity" if number < 0 else "Infinity"
        else:
            self.what = f"{number:.3E}, past the range of a JSON number"
        super().__init__(self.what)


def plain(value: Any) -> Any:
    """JSON-ready data: Decimals become ints when integral, else floats.

    :raises NotFinite: for NaN, infinities and numbers past the float range.
    """
    kind = type(value)
    if kind in _AS_IS or value is None:
        return value
    # the containers of most outputs (split lists, milestone tables) element by element
    if kind is list:
        return [v if type(v) in _AS_IS else plain(v) for v in value]
    if kind is dict:
        return {str(k): v if type(v) in _AS_IS else plain(v) for k, v in value.items()}
    # what follows serves everything else, subclasses of the types above included
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise NotFinite(value)
        integral = value == value.to_integral_value() and abs(value) < 10**15
        number = int(value) if integral else float(value)
        if isinstance(number, float) and math.isinf(number):
            raise NotFinite(value)
        return number
    if isinstance(value, float) and not math.isfinite(value):
        raise NotFinite(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def provenance(versions: Mapping[str, str], digest: str) -> dict[str, Any]:
    return {"rulesets": dict(versions), "digest": digest, "dealdesk": __version__}


def decision_record(
    deal_id: Any,
    policies: Mapping[str, Mapping[str, Any]],
    *,
    approvals: Sequence[str],
    reasons: Sequence[Mapping[str, Any]],
    flags: Sequence[Mapping[str, Any]],
    clauses: Sequence[Mapping[str, Any]] = (),
    errors: Sequence[Mapping[str, Any]] = (),
    provenance: Mapping[str, Any],
    status: str | None = None,
) -> dict[str, Any]:
    """The record, keys in SPEC §4's order; ``status`` defaults to the worst policy status."""
    if status is None:
        status = "invalid" if errors else worst(p["status"] for p in policies.values())
    return DecisionRecord(
        deal_id,
        status,
        list(approvals),
        {name: dict(result) for name, result in policies.items()},
        [dict(r) for r in reasons],
        [dict(f) for f in flags],
        [dict(c) for c in clauses],
        [dict(e) for e in errors],
        dict(provenance),
    ).to_dict()


def invalid_record(
    deal_id: Any, errors: Sequence[Mapping[str, Any]], prov: Mapping[str, Any]
) -> dict[str, Any]:
    """The record of a deal that could not be evaluated."""
    return DecisionRecord.invalid(deal_id, [dict(e) for e in errors], dict(prov)).to_dict()


def derived_reason(firing: Firing) -> str:
    """The reason of a firing that requires approval but gives no ``reason`` or ``reject``: the
    rule's (or decision table's) description, else ``"RULE requires ROLE"`` (roles in the order
    required, ``"PM-5 requires legal and cfo"``)."""
    rule = firing.rule
    if rule.description.strip():
        return " ".join(rule.description.split())
    roles = list(dict.fromkeys(firing.effects.requires))
    listed = roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} and {roles[-1]}"
    return f"{rule.id} requires {listed}"


#: ``render(message, context, origin)``: a ruleset message rendered with Jinja.
RenderMessage = Callable[[str, Mapping[str, Any], str], str]
#: ``combine(record)``: the ``dealdesk_combine`` plugins' decision, or None.
CombineHook = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class PolicyPart:
    """One policy's share of a record: its entry in ``policies`` (status, fired rules,
    formatted outputs), the roles it requires (in order), its reasons, flags and errors."""

    result: dict[str, Any]
    requires: list[str]
    reasons: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


class Combiner:
    """Assembles a deal's record from its policy runs.

    :param approvers: role ranks, for the order of ``approvals``.
    :param provenance: the rulesets' provenance, the same in every record.
    :param render_message: renders a ruleset message that holds Jinja (``{``).
    :param combine_hook: the ``dealdesk_combine`` plugins.
    """

    def __init__(
        self,
        approvers: Sequence[str],
        provenance: Mapping[str, Any],
        render_message: RenderMessage,
        combine_hook: CombineHook,
    ):
        self.approvers = approvers
        self.rank = {role: i for i, role in enumerate(approvers)}
        self.provenance = provenance
        self.render_message = render_message
        self.combine_hook = combine_hook

    def record(
        self, deal_id: Any, data: Mapping[str, Any], runs: Mapping[str, PolicyRun]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The record and each policy's formatted outputs (what clause templates see).

        :raises DealdeskError: a message that cannot render, an output that is not finite.
        """
        currency = data.get("currency") or "USD"
        parts: dict[str, PolicyPart] = {}
        earlier: list[dict[str, Any]] = []  # the reasons of the policies so far
        for name, run in runs.items():
            part = parts[name] = self.part(name, run, data, currency, earlier)
            earlier = [*earlier, *part.reasons]
        record = self.assemble(deal_id, parts)
        override = self.combine_hook(record)
        if override is not None:
            record = decision_record(
                deal_id,
                record["policies"],
                approvals=override.get("approvals", record["approvals"]),
                reasons=override.get("reasons", record["reasons"]),
                flags=record["flags"],
                errors=record["errors"],
                provenance=self.provenance,
                status=override.get("status", record["status"]),
            )
        return record, {name: part.result["outputs"] for name, part in parts.items()}

    def part(
        self,
        name: str,
        run: PolicyRun,
        data: Mapping[str, Any],
        currency: str,
        earlier: Sequence[Mapping[str, Any]],
    ) -> PolicyPart:
        """Policy ``name``'s share of the record, from its run.

        :param earlier: the reasons of the policies before it (what its messages see).
        """
        outputs = self.outputs(name, run, currency)
        rejects = 0
        requires: list[str] = []
        talking = []  # firings with messages
        for firing in run.firings:
            effects = firing.effects
            if effects.requires:
                requires.extend(effects.requires)
            if effects.rejects or effects.reasons or effects.flags or effects.requires:
                rejects += len(effects.rejects)
                talking.append(firing)
        own = "invalid" if run.errors else policy_status(rejects, len(requires))
        part = PolicyPart(
            {"status": own, "fired": run.fired_ids(), "outputs": outputs},
            requires,
            errors=list(run.errors),
        )
        if talking:
            decision = {
                "status": own,
                "approvals": order_roles(requires, self.rank),
                "reasons": list(earlier),
            }
            context = None  # what the policy's messages see, built for the first one
            for firing in talking:
                context = self.messages(
                    name, firing, data, outputs, decision, part.reasons, part.flags, context
                )
        return part

    def assemble(self, deal_id: Any, parts: Mapping[str, PolicyPart]) -> dict[str, Any]:
        """The record of the policies' ``parts`` (before any ``dealdesk_combine`` plugin)."""
        roles = [role for part in parts.values() for role in part.requires]
        errors = [error for part in parts.values() for error in part.errors]
        policies = {name: part.result for name, part in parts.items()}
        return record_dict(
            deal_id,
            "invalid" if errors else worst(p["status"] for p in policies.values()),
            order_roles(roles, self.rank) if roles else [],
            policies,
            [reason for part in parts.values() for reason in part.reasons],
            [flag for part in parts.values() for flag in part.flags],
            [],
            errors,
            dict(self.provenance),
        )

    @staticmethod
    def outputs(name: str, run: PolicyRun, currency: str) -> dict[str, Any]:
        specs = run.policy.outputs
        return {
            key: format_value(name, key, value, specs.get(key), currency)
            for key, value in run.outputs().items()
        }

    def messages(
        self,
        name: str,
        firing: Firing,
        data: Mapping[str, Any],
        outputs: Mapping[str, Any],
        decision: dict[str, Any],
        reasons: list[dict[str, Any]],
        flags: list[dict[str, Any]],
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Add a firing's messages; a ruleset's message is Jinja (most are plain text), an
        action's is text.

        :param context: the template context of the policy's earlier messages, if one was
            built (renders copy it or only read it, so the policy's messages share it).
        :returns: the template context, once one was needed.
        """
        effects = firing.effects
        rule = firing.rule
        said = effects.rejects + effects.reasons
        if effects.requires and not said:
            # every approval the record asks for is explained, in the rule's own words if it has them
            reasons.append({"policy": name, "rule": rule.id, "message": derived_reason(firing)})
        for bucket, messages in (
            (reasons, said),
            (flags, effects.flags),
        ):
            for message in messages:
                text = str(message)
                if "{" in message and isinstance(message, RulesetMessage):
                    if context is None:
                        context = template_context(data, outputs=outputs, decision=decision)
                    context["rule"] = rule.id
                    text = self.render_message(message, context, f"{rule.location} rule {rule.id}")
                bucket.append({"policy": name, "rule": rule.id, "message": text})
        return context
