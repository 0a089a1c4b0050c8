"""onsite-support actions: the resident engineer (OS-2, OS-3, OS-5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pluggy
import pytest

from dealdesk.actions import ActionContext
from dealdesk.manager import collect_plugins
from dealdesk.plugins.onsite_support import resident_engineer


def run(deal: dict[str, Any], **args: Any) -> dict[str, Any]:
    """Run the action as the runtime does and return the outputs it set."""
    ctx = ActionContext(deal, args, rule="OS-2", policy="onsite-support")
    resident_engineer(ctx)
    return dict(ctx.effects.sets)


ARGS = {"fte": Decimal("1.0"), "months": Decimal("12"), "grade": Decimal("12")}


def test_resident_engineer_defaults_to_the_project_cost_center() -> None:
    assert run({"support": {"model": "proactive"}}, **ARGS) == {
        "resident_engineer": {"fte": 1.0, "months": 12, "grade": 12, "cost_center": "project"}
    }


@pytest.mark.parametrize(
    ("deal", "cost_center"),
    [
        (
            {"support": {"model": "proactive", "resident_cost_to": "product_development"}},
            "product_development",
        ),
        ({"support": {"model": "proactive", "resident_cost_to": "project"}}, "project"),
        ({"support": {"model": "proactive", "resident_cost_to": None}}, "project"),
        ({}, "project"),
    ],
)
def test_cost_center_follows_the_request(deal: dict[str, Any], cost_center: str) -> None:
    assert run(deal, **ARGS)["resident_engineer"]["cost_center"] == cost_center


def test_types_are_json_ready() -> None:
    engineer = run({}, fte=Decimal("0.5"), months=6, grade=Decimal("10"))["resident_engineer"]
    assert (engineer["fte"], engineer["months"], engineer["grade"]) == (0.5, 6, 10)
    assert (type(engineer["fte"]), type(engineer["months"]), type(engineer["grade"])) == (
        float,
        int,
        int,
    )


@pytest.mark.parametrize("field", ["months", "grade"])
def test_a_fractional_month_or_grade_is_an_error_not_truncated(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a whole number"):
        run({}, **{**ARGS, field: Decimal("12.5")})


def test_the_plugin_registers_its_family_and_action(plugin_manager: pluggy.PluginManager) -> None:
    plugins = collect_plugins(plugin_manager)
    family = plugins.policies["onsite-support"]
    assert family.rulesets is not None and family.rulesets.name == "onsite-support.yaml"
    assert family.templates is not None and family.templates.is_dir()
    assert plugins.actions["resident_engineer"].func is resident_engineer
