"""The billing-milestone policy family: milestone splits, invoice models, payment terms (SPEC §5).

Its rules live in the package data file ``dealdesk/rulesets/billing-milestone.yaml``; this plugin
declares the family and provides the two actions those rules call: ``milestones`` (BM-1, BM-2,
BM-3, BM-5) and ``invoice_models`` (BM-4).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealdesk import hookimpl
from dealdesk.money import money_string, parse_decimal, quantize_money
from dealdesk.rules.policyset import house_rulesets

if TYPE_CHECKING:
    from dealdesk.actions import ActionContext
    from dealdesk.manager import RegisterFunction, RegisterPolicy

POLICY = "billing-milestone"

#: BM-4: how each line category is invoiced.
INVOICE_MODELS: dict[str, str] = {
    "hardware": "milestone",
    "software": "milestone",
    "labor": "monthly_in_arrears",
    "support": "annual_in_advance",
    "subscription": "annual_in_advance",
}


@hookimpl
def dealdesk_policies(register: RegisterPolicy) -> None:
    """Declare the billing-milestone family with its house ruleset and clause templates."""
    register(
        POLICY,
        description="Milestone billing splits, invoice models and payment terms.",
        rulesets=house_rulesets() / f"{POLICY}.yaml",
        templates=Path(__file__).parent / "templates",
        facts={
            "requested_split": "object",
            "requested_split.total": "number",
            "requested_split.min": "number",
            "requested_split.key": "string",
        },
    )


@hookimpl
def dealdesk_enrich(deal: Mapping[str, Any]) -> dict[str, Any] | None:
    """Derive ``requested_split`` from ``billing.requested_split`` for BM-6.

    ``total`` and ``min`` of the parts, and ``key``, the parts written like the policy's splits
    (``"30/30/30/10"``), so a ruleset can compare a requested split with a literal. An empty
    list is a requested split too, of no parts: ``total`` 0 (BM-6 rejects it), no ``min`` and
    no ``key`` (unknown: there is no part). Only a deal without one gets nothing.
    """
    parts = (deal.get("billing") or {}).get("requested_split")
    if parts is None:
        return None
    numbers = [parse_decimal(p) for p in parts]
    split: dict[str, Any] = {"total": sum(numbers, Decimal(0))}
    if numbers:
        split["min"] = min(numbers)
        split["key"] = "/".join(str(_percent(n)) for n in numbers)
    return {"requested_split": split}


@hookimpl
def dealdesk_actions(register: RegisterFunction) -> None:
    """Provide the ``milestones`` and ``invoice_models`` actions."""
    register("milestones", milestones)
    register("invoice_models", invoice_models)


def milestones(ctx: ActionContext) -> None:
    """Set output ``milestones``: ``with: {base, split: [{name, percent}, ...]}`` (BM-5).

    Each amount is ``base × percent / 100`` (on the exact base, so nothing is rounded twice)
    rounded half-up to the deal currency's minor units; the last milestone takes the remainder,
    so the amounts always sum exactly to the base rounded the same way. ``percent`` is shown
    as an int when it is integral.
    """
    currency = ctx.deal["currency"]
    base = parse_decimal(ctx.args["base"])
    split = _split(ctx.args["split"])
    total = sum((percent for _, percent in split), Decimal(0))
    if total != 100:
        # the remainder rule would silently hide a split that does not add up
        raise ValueError(f"milestone split sums to {total}, not 100")
    result: list[dict[str, Any]] = []
    allocated = Decimal(0)
    for index, (name, percent) in enumerate(split):
        if index == len(split) - 1:
            amount = quantize_money(base, currency) - allocated
        else:
            amount = quantize_money(base * percent / 100, currency)
            allocated += amount
        result.append(
            {"name": name, "percent": _percent(percent), "amount": money_string(amount, currency)}
        )
    ctx.set("milestones", result)


def invoice_models(ctx: ActionContext) -> None:
    """Set output ``invoice_models``: the BM-4 model of each line category present, by category."""
    pricing = (ctx.deal.get("offer") or {}).get("pricing")
    models: dict[str, str] = {}
    for line in ctx.deal.get("lines") or ():
        category = line["category"]
        if category not in INVOICE_MODELS:
            raise ValueError(f"unknown line category {category!r}")
        if category == "subscription" and pricing == "consumption":
            models[category] = "usage_monthly_in_arrears"
        else:
            models[category] = INVOICE_MODELS[category]
    ctx.set("invoice_models", dict(sorted(models.items())))


def _split(value: object) -> list[tuple[str, Decimal]]:
    """Check the ``split`` argument: a non-empty list of ``{name, percent}``."""
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"split must be a non-empty list of {{name, percent}}, not {value!r}")
    parts: list[tuple[str, Decimal]] = []
    for part in value:
        if (
            not isinstance(part, Mapping)
            or not isinstance(part.get("name"), str)
            or "percent" not in part
        ):
            raise ValueError(f"each split part needs a name and a percent, not {part!r}")
        parts.append((part["name"], parse_decimal(part["percent"])))
    return parts


def _percent(value: Decimal) -> int | float:
    """30 stays 30, 12.5 stays 12.5: records are JSON."""
    return int(value) if value == value.to_integral_value() else float(value)
