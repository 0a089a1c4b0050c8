"""The onsite-support policy family: support model, resident engineer, service contract (SPEC §5).

Its rules live in ``dealdesk/rulesets/onsite-support.yaml``; this plugin declares the family and
provides the ``resident_engineer`` action (OS-2, OS-3, OS-5).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dealdesk import hookimpl
from dealdesk.money import parse_decimal
from dealdesk.rules.policyset import house_rulesets

if TYPE_CHECKING:
    from dealdesk.actions import ActionContext
    from dealdesk.manager import RegisterFunction, RegisterPolicy

POLICY = "onsite-support"


@hookimpl
def dealdesk_policies(register: RegisterPolicy) -> None:
    """Declare the onsite-support family with its house ruleset and clause templates."""
    register(
        POLICY,
        description="Support model, resident engineers, service contract value and integration ownership.",
        rulesets=house_rulesets() / f"{POLICY}.yaml",
        templates=Path(__file__).parent / "templates",
    )


@hookimpl
def dealdesk_actions(register: RegisterFunction) -> None:
    """Provide the ``resident_engineer`` action."""
    register("resident_engineer", resident_engineer)


def resident_engineer(ctx: ActionContext) -> None:
    """Set output ``resident_engineer``: ``with: {fte, months, grade}``.

    ``cost_center`` follows the deal's ``support.resident_cost_to`` (OS-5), ``project`` when the
    deal does not say.
    """
    support = ctx.deal.get("support") or {}
    ctx.set(
        "resident_engineer",
        {
            "fte": float(parse_decimal(ctx.args["fte"])),
            "months": _whole(ctx.args["months"], "months"),
            "grade": _whole(ctx.args["grade"], "grade"),
            "cost_center": support.get("resident_cost_to") or "project",
        },
    )


def _whole(value: object, name: str) -> int:
    """An integral number as ``int``; 12.5 months is a ruleset mistake, not something to truncate."""
    number = parse_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(number)
