"""billing-milestone actions: milestone amounts (BM-5) and invoice models (BM-4)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.actions import ActionContext
from dealdesk.manager import collect_plugins
from dealdesk.money import minor_units, quantize_money
from dealdesk.plugins.billing_milestone import invoice_models, milestones

HOUSE_SPLIT = [
    {"name": "signature", "percent": Decimal("30")},
    {"name": "delivery", "percent": Decimal("30")},
    {"name": "installation", "percent": Decimal("30")},
    {"name": "final_acceptance", "percent": Decimal("10")},
]


def run(action: Any, deal: dict[str, Any], **args: Any) -> dict[str, Any]:
    """Run an action as the runtime does and return the outputs it set."""
    ctx = ActionContext(deal, args, rule="BM-1", policy="billing-milestone")
    action(ctx)
    return dict(ctx.effects.sets)


def amounts(deal: dict[str, Any], base: Decimal, split: list[dict[str, Any]]) -> list[str]:
    return [m["amount"] for m in run(milestones, deal, base=base, split=split)["milestones"]]


def test_milestones_on_the_house_split() -> None:
    outputs = run(milestones, {"currency": "USD"}, base=Decimal("600000"), split=HOUSE_SPLIT)
    assert outputs == {
        "milestones": [
            {"name": "signature", "percent": 30, "amount": "180000.00"},
            {"name": "delivery", "percent": 30, "amount": "180000.00"},
            {"name": "installation", "percent": 30, "amount": "180000.00"},
            {"name": "final_acceptance", "percent": 10, "amount": "60000.00"},
        ]
    }
    assert all(type(m["percent"]) is int for m in outputs["milestones"])


def test_the_last_milestone_takes_the_remainder() -> None:
    # 30% of 1000000.01 is 300000.003: three of those round to .00, the cent lands last
    assert amounts({"currency": "USD"}, Decimal("1000000.01"), HOUSE_SPLIT) == [
        "300000.00",
        "300000.00",
        "300000.00",
        "100000.01",
    ]


def test_zero_minor_units_round_half_up_and_sum_to_the_rounded_base() -> None:
    # JPY has no minor units: the base rounds to 333, 30% of 333.33 = 99.999 rounds up to 100
    assert amounts({"currency": "JPY"}, Decimal("333.33"), HOUSE_SPLIT) == [
        "100",
        "100",
        "100",
        "33",
    ]


def test_rounding_is_half_up_not_half_even() -> None:
    split = [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]
    # 0.125 is exactly half a cent: half-up gives .13 (banker's rounding would give .12)
    assert amounts({"currency": "USD"}, Decimal("0.25"), split) == ["0.13", "0.12"]


def test_three_minor_units() -> None:
    split = [
        {"name": "a", "percent": 30},
        {"name": "b", "percent": 30},
        {"name": "c", "percent": 40},
    ]
    assert amounts({"currency": "KWD"}, Decimal("1.0005"), split) == ["0.300", "0.300", "0.401"]


def test_a_fractional_percent_is_kept_as_a_number() -> None:
    split = [{"name": "a", "percent": Decimal("12.5")}, {"name": "b", "percent": Decimal("87.5")}]
    result = run(milestones, {"currency": "USD"}, base=Decimal("1000"), split=split)["milestones"]
    assert [(m["percent"], m["amount"]) for m in result] == [(12.5, "125.00"), (87.5, "875.00")]


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ([{"name": "a", "percent": 60}, {"name": "b", "percent": 30}], "sums to 90, not 100"),
        ([], "non-empty list"),
        ([{"percent": 100}], "needs a name and a percent"),
        ("30/70", "non-empty list"),
    ],
)
def test_a_bad_split_is_an_error(split: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(milestones, {"currency": "USD"}, base=Decimal("100"), split=split)


@st.composite
def splits(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Positive integer percentages summing to 100, cut at random points."""
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=99), max_size=6)))
    bounds = [0, *cuts, 100]
    return [
        {"name": f"m{i}", "percent": Decimal(b - a)}
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


@given(
    base=st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
    currency=st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
    split=splits(),
)
def test_amounts_always_sum_to_the_rounded_base(
    base: Decimal, currency: str, split: list[dict[str, Any]]
) -> None:
    result = run(milestones, {"currency": currency}, base=base, split=split)["milestones"]
    values = [Decimal(m["amount"]) for m in result]
    assert sum(values) == quantize_money(base, currency)
    # every milestone but the last is its own share, rounded half-up
    for part, value in zip(split[:-1], values[:-1], strict=True):
        assert value == quantize_money(base * part["percent"] / 100, currency)
    places = minor_units(currency)
    for m in result:
        assert len(m["amount"].partition(".")[2]) == places


def deal_with(*categories: str, pricing: str = "fixed") -> dict[str, Any]:
    return {"offer": {"pricing": pricing}, "lines": [{"category": c} for c in categories]}


def test_invoice_models_per_category_present_sorted() -> None:
    deal = deal_with("support", "labor", "hardware", "software", "subscription", "hardware")
    assert run(invoice_models, deal) == {
        "invoice_models": {
            "hardware": "milestone",
            "labor": "monthly_in_arrears",
            "software": "milestone",
            "subscription": "annual_in_advance",
            "support": "annual_in_advance",
        }
    }
    assert list(run(invoice_models, deal)["invoice_models"]) == sorted(
        run(invoice_models, deal)["invoice_models"]
    )


def test_consumption_pricing_bills_subscriptions_monthly_by_usage() -> None:
    outputs = run(invoice_models, deal_with("subscription", "support", pricing="consumption"))
    assert outputs == {
        "invoice_models": {
            "subscription": "usage_monthly_in_arrears",
            "support": "annual_in_advance",
        }
    }


def test_only_categories_present_get_a_model() -> None:
    assert run(invoice_models, deal_with("labor")) == {
        "invoice_models": {"labor": "monthly_in_arrears"}
    }


def test_an_unknown_category_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown line category 'cloud'"):
        run(invoice_models, deal_with("cloud"))


def test_the_plugin_registers_its_family_and_actions(plugin_manager: pluggy.PluginManager) -> None:
    plugins = collect_plugins(plugin_manager)
    family = plugins.policies["billing-milestone"]
    assert family.rulesets is not None and family.rulesets.name == "billing-milestone.yaml"
    assert family.templates is not None and family.templates.is_dir()
    assert plugins.actions["milestones"].func is milestones
    assert plugins.actions["invoice_models"].func is invoice_models
