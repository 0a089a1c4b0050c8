"""The house billing-milestone policy (SPEC §5, BM-1..BM-8) through the real engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

BILLING = "billing-milestone"

HOUSE_SPLIT = ["signature", "delivery", "installation", "final_acceptance"]


def milestones(decision: Any) -> list[tuple[str, int | float, str]]:
    return [(m["name"], m["percent"], m["amount"]) for m in decision.outputs(BILLING)["milestones"]]


def risk_product(
    make: Any, product: str | int, offer_type: str = "new_market", **patch: Any
) -> dict[str, Any]:
    """A direct risk offer whose only line is ``product`` of hardware."""
    return make.risk(offer_type, **{"lines": [make.line("hardware", product)], **patch})


# -- BM-1 / BM-2: risk offers on either side of 500,000 of product -------------------------------


@pytest.mark.parametrize("offer_type", ["new_market", "advanced_technology"])
def test_bm1_at_500000_bills_30_30_30_10_on_product(make, evaluate, offer_type):
    decision = evaluate(risk_product(make, "500000", offer_type))
    assert milestones(decision) == [
        ("signature", 30, "150000.00"),
        ("delivery", 30, "150000.00"),
        ("installation", 30, "150000.00"),
        ("final_acceptance", 10, "50000.00"),
    ]
    fired = decision.fired(BILLING)
    assert "BM-1" in fired
    assert "BM-2" not in fired and "BM-3" not in fired
    assert decision.clauses(BILLING) == ["billing/milestones"]


def test_bm1_just_above_500000(make, evaluate):
    decision = evaluate(risk_product(make, "500000.01"))
    assert "BM-1" in decision.fired(BILLING)
    assert milestones(decision) == [
        ("signature", 30, "150000.00"),
        ("delivery", 30, "150000.00"),
        ("installation", 30, "150000.00"),
        ("final_acceptance", 10, "50000.01"),
    ]


def test_bm1_bills_on_product_not_on_contract(make, evaluate):
    deal = make.risk(
        lines=[
            make.line("hardware", 600000),
            make.line("software", 400000),
            make.line("support", 300000),
            make.line("labor", 100000),
        ]
    )
    decision = evaluate(deal)
    assert [m[2] for m in milestones(decision)] == [
        "300000.00",
        "300000.00",
        "300000.00",
        "100000.00",
    ]


def test_bm2_just_below_500000_bills_50_50(make, evaluate):
    decision = evaluate(risk_product(make, "499999.99"))
    assert milestones(decision) == [
        ("signature", 50, "250000.00"),
        ("final_acceptance", 50, "249999.99"),
    ]
    fired = decision.fired(BILLING)
    assert "BM-2" in fired
    assert "BM-1" not in fired and "BM-3" not in fired
    assert decision.clauses(BILLING) == ["billing/milestones"]


# -- BM-3: standard offers --------------------------------------------------------------------


@pytest.mark.parametrize("product", ["400000", "500000", "2000000"])
def test_bm3_standard_offer_bills_100_on_delivery(make, evaluate, product):
    decision = evaluate(make.product(product, support=Decimal(product) * Decimal("0.15")))
    assert milestones(decision) == [("delivery", 100, f"{Decimal(product):.2f}")]
    fired = decision.fired(BILLING)
    assert "BM-3" in fired
    assert "BM-1" not in fired and "BM-2" not in fired
    assert decision.clauses(BILLING) == ["billing/standard"]
    assert decision.status == "approved"


# -- BM-4: invoice models, payment terms, the effort clause ------------------------------------


def every_category(make: Any) -> list[dict[str, Any]]:
    return [
        make.line("hardware", 600000),
        make.line("software", 100000, cost=10000),
        make.line("labor", 100000, cost=60000, resource="implementation"),
        make.line("support", 100000),
        make.line("subscription", 50000),
    ]


def test_bm4_invoice_model_per_category(make, evaluate):
    decision = evaluate(make(lines=every_category(make)))
    assert decision.outputs(BILLING)["invoice_models"] == {
        "hardware": "milestone",
        "labor": "monthly_in_arrears",
        "software": "milestone",
        "subscription": "annual_in_advance",
        "support": "annual_in_advance",
    }
    assert "BM-4" in decision.fired(BILLING)
    assert decision.clauses(BILLING) == ["billing/standard", "billing/effort"]


def test_bm4_subscription_under_consumption_is_usage_in_arrears(make, evaluate):
    decision = evaluate(make(lines=every_category(make), offer={"pricing": "consumption"}))
    models = decision.outputs(BILLING)["invoice_models"]
    assert models["subscription"] == "usage_monthly_in_arrears"
    assert models["support"] == "annual_in_advance"


def test_bm4_only_the_categories_present(make, evaluate):
    decision = evaluate(
        make(lines=[make.line("software", 700000, cost=70000), make.line("support", 150000)])
    )
    assert decision.outputs(BILLING)["invoice_models"] == {
        "software": "milestone",
        "support": "annual_in_advance",
    }
    # no labor line: no effort clause
    assert "billing/effort" not in decision.clauses(BILLING)
    assert "BM-4-effort" not in decision.fired(BILLING)


def test_bm4_payment_terms_are_the_deals(make, evaluate):
    assert (
        evaluate(make(billing={"payment_terms_days": 45})).outputs(BILLING)["payment_terms_days"]
        == 45
    )


def test_bm4_payment_terms_default_to_30(make, evaluate):
    decision = evaluate(make(billing=None))
    assert decision.outputs(BILLING)["payment_terms_days"] == 30
    assert decision.status == "approved"


def test_outputs_are_exactly_the_specs(make, evaluate):
    assert set(evaluate(make()).outputs(BILLING)) == {
        "milestones",
        "invoice_models",
        "payment_terms_days",
    }


# -- BM-5: rounding half-up, remainder to the last milestone -----------------------------------


@pytest.mark.parametrize(
    ("currency", "product", "amounts"),
    [
        # 30% of 1,000,000.01 is 300,000.003: a fraction of a cent, the cent lands last
        ("USD", "1000000.01", ["300000.00", "300000.00", "300000.00", "100000.01"]),
        # 30% of 500,000.15 is 150,000.045: half-up gives .05 (half-even would give .04)
        ("USD", "500000.15", ["150000.05", "150000.05", "150000.05", "50000.00"]),
        # yen have no minor unit: 30% of 500,015 is 150,004.5 -> 150,005
        ("JPY", "500015", ["150005", "150005", "150005", "50000"]),
        ("JPY", "1000001", ["300000", "300000", "300000", "100001"]),
        # three minor units (Kuwaiti dinar)
        ("KWD", "1000000.001", ["300000.000", "300000.000", "300000.000", "100000.001"]),
    ],
)
def test_bm5_amounts_round_half_up_and_sum_to_the_base(make, evaluate, currency, product, amounts):
    decision = evaluate(risk_product(make, product, currency=currency))
    assert [m[0] for m in milestones(decision)] == HOUSE_SPLIT
    assert [m[2] for m in milestones(decision)] == amounts
    assert sum(Decimal(a) for a in amounts) == Decimal(product)


def test_bm5_on_the_50_50_split(make, evaluate):
    # 50% of 400,000.01 is 200,000.005 -> 200,000.01 half-up; the last takes 200,000.00
    decision = evaluate(risk_product(make, "400000.01"))
    assert milestones(decision) == [
        ("signature", 50, "200000.01"),
        ("final_acceptance", 50, "200000.00"),
    ]


# -- BM-6: requested splits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "split"),
    [
        ("600000", [30, 30, 30, 10]),
        ("600000", [30, "30.0", 30, 10]),
        ("500000", [30, 30, 30, 10]),
        ("499999.99", [50, 50]),
    ],
)
def test_bm6_the_policys_split_is_silent(make, evaluate, product, split):
    decision = evaluate(risk_product(make, product, billing={"requested_split": split}))
    assert "BM-6" not in decision.fired(BILLING)
    assert decision.policy(BILLING)["status"] == "approved"


@pytest.mark.parametrize(
    ("product", "split"),
    [
        ("600000", [10, 30, 30, 30]),  # the same parts in another order
        ("600000", [50, 50]),
        ("500000", [100]),
        ("499999.99", [30, 30, 30, 10]),
        ("499999.99", [40, 60]),
    ],
)
def test_bm6_a_different_split_on_a_risk_offer_needs_the_deal_desk(make, evaluate, product, split):
    decision = evaluate(risk_product(make, product, billing={"requested_split": split}))
    assert "BM-6" in decision.fired(BILLING)
    assert decision.policy(BILLING)["status"] == "needs_approval"
    assert "deal_desk" in decision.approvals
    assert len(decision.reasons("BM-6")) == 1


def test_bm6_the_standard_split_is_100(make, evaluate):
    assert evaluate(make(billing={"requested_split": [100]})).status == "approved"


def test_bm6_a_different_split_on_a_standard_offer_needs_only_the_deal_desk(make, evaluate):
    decision = evaluate(make(billing={"requested_split": [50, 50]}))
    assert decision.status == "needs_approval"
    assert decision.approvals == ["deal_desk"]
    assert "BM-6" in decision.fired(BILLING)
    assert decision.reasons("BM-6") == [
        "The requested split 50/50 differs from the policy's 100% on delivery."
    ]


@pytest.mark.parametrize(
    "split",
    [
        [30, 30, 30],  # 90
        [30, 30, 30, 11],  # 101
        [30, 30, 30, "9.99"],  # 99.99
        [50, 50, 0],  # sums to 100, a zero part
        [60, 50, -10],  # sums to 100, a negative part
        [],  # a requested split of no parts sums to 0: not the same as no requested split
    ],
)
def test_bm6_a_split_that_is_not_100_or_has_a_non_positive_part_is_rejected(make, evaluate, split):
    decision = evaluate(make(billing={"requested_split": split}))
    assert decision.status == "rejected"
    assert decision.policy(BILLING)["status"] == "rejected"
    assert "BM-6" in decision.fired(BILLING)
    assert decision.approvals == []  # rejected, not also sent to the deal desk
    assert len(decision.reasons("BM-6")) == 1


def test_bm6_an_empty_split_is_rejected_as_summing_to_0(make, evaluate):
    decision = evaluate(make(billing={"requested_split": []}))
    assert decision.reasons("BM-6") == ["The requested split (empty) sums to 0, not 100."]


def test_bm6_a_bad_split_on_a_risk_offer_is_rejected_too(make, evaluate):
    decision = evaluate(risk_product(make, "600000", billing={"requested_split": [30, 30, 30]}))
    assert decision.status == "rejected"
    assert decision.policy(BILLING)["status"] == "rejected"


# -- BM-7: payment terms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "approvals"),
    [
        (30, []),
        (60, []),
        (61, ["vp_finance"]),
        (120, ["vp_finance"]),
        # the terms the record shows are the ones BM-7 compared, whole or not
        (45.5, []),
        (60.4, ["vp_finance"]),
    ],
)
def test_bm7_payment_terms_above_60_days_need_the_vp_of_finance(make, evaluate, days, approvals):
    decision = evaluate(make(billing={"payment_terms_days": days}))
    assert decision.approvals == approvals
    assert ("BM-7" in decision.fired(BILLING)) is bool(approvals)
    assert decision.outputs(BILLING)["payment_terms_days"] == days
    if approvals:
        assert decision.reasons("BM-7") == [f"Payment terms of {days} days exceed 60 days."]


# -- BM-8: outcome-based pricing ---------------------------------------------------------------


def test_bm8_consumption_bills_usage_monthly_in_arrears(make, evaluate):
    deal = make(
        offer={"pricing": "consumption"}, lines=[*make()["lines"], make.line("subscription", 50000)]
    )
    decision = evaluate(deal)
    assert "BM-8" in decision.fired(BILLING)
    assert decision.reasons("BM-8") == ["Consumption pricing: usage is billed monthly in arrears."]
    assert decision.flags() == []
    assert decision.status == "approved"


def test_bm8_consumption_without_a_subscription_line_is_flagged(make, evaluate):
    decision = evaluate(make(offer={"pricing": "consumption"}))
    assert decision.flags("BM-8") == [
        "Consumption pricing, but the deal has no subscription line to bill usage against."
    ]
    assert decision.status == "approved"  # a flag does not change the status


@pytest.mark.parametrize(
    ("at_risk", "cfo"),
    [
        ("0", False),
        ("139999.99", False),
        ("140000", False),  # exactly 20% of the 700,000 contract
        ("140000.01", True),
    ],
)
def test_bm8_kpi_at_risk_above_20_percent_of_contract_needs_the_cfo(make, evaluate, at_risk, cfo):
    decision = evaluate(make(offer={"pricing": "kpi", "kpi_at_risk": at_risk}))
    assert decision.approvals == (["cfo"] if cfo else [])
    assert "KPI pricing: the at-risk fee is billed after the KPI measurement." in decision.reasons(
        "BM-8"
    )
    assert len(decision.reasons("BM-8")) == (2 if cfo else 1)


def test_bm8_financial_improvement_needs_the_cfo_and_legal(make, evaluate):
    decision = evaluate(make(offer={"pricing": "financial_improvement"}))
    assert decision.status == "needs_approval"
    assert decision.approvals == ["legal", "cfo"]
    assert "billing/gain-share" in decision.clauses(BILLING)
    assert "BM-8" in decision.fired(BILLING)


def test_bm8_fixed_pricing_is_silent(make, evaluate):
    decision = evaluate(make(offer={"pricing": "fixed", "kpi_at_risk": 500000}))
    assert "BM-8" not in decision.fired(BILLING)
    assert decision.approvals == []
