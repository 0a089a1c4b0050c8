"""The house partner-margin policy (SPEC §5, PM-1..PM-13) through the real engine, and the
decision record the three house policies make together (status precedence, approval order)."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib.resources import files
from typing import Any

import pytest
import yaml

MARGIN = "partner-margin"
BILLING = "billing-milestone"
SUPPORT = "onsite-support"
OUTPUTS = {"margin", "margin_floor", "max_extra_discount", "partner_discount_cap", "labor_margin"}


def risk_deal(make: Any, **patch: Any) -> dict[str, Any]:
    """A direct new-market offer that only PM-13 sends to anyone: 600,000 of hardware and
    180,000 of support (exactly OS-4's 30%), both at 50% margin, floor 0.35 (ratio 0.2308)."""
    lines = [make.line("hardware", 600000), make.line("support", 180000)]
    return make.risk(**{"lines": lines, **patch})


def partner(
    tier: str, discount: str | int = "0.05", kind: str = "system_integrator"
) -> dict[str, Any]:
    return {"name": "Delta Systems Integration", "kind": kind, "tier": tier, "discount": discount}


def test_outputs_are_exactly_the_specs(make, evaluate):
    assert set(evaluate(make()).outputs(MARGIN)) == OUTPUTS


def test_base_deal_outputs(make, evaluate):
    decision = evaluate(make())
    # cost 350,000 on 700,000; services 100,000 / 700,000 = 0.1429 -> floor 0.40
    assert decision.outputs(MARGIN) == {
        "margin": 0.5,
        "margin_floor": 0.4,
        "max_extra_discount": 0.1667,  # 1 - 350,000 / (0.60 x 700,000)
        "partner_discount_cap": None,  # direct deal
        "labor_margin": None,  # no labor lines
    }
    assert decision.status == "approved"
    assert decision.approvals == []


def test_fractions_are_rounded_to_4_places(make, evaluate):
    deal = make(
        lines=[
            make.line("hardware", 600000, cost=300000),
            make.line("support", 100000, cost="50150"),
            make.line("labor", 300000, cost="200000.30", resource="architect"),
        ]
    )
    outputs = evaluate(deal).outputs(MARGIN)
    assert outputs["margin"] == 0.4498  # 1 - 550,150.30 / 1,000,000 = 0.44984970
    assert outputs["labor_margin"] == 0.3333  # 1 - 200,000.30 / 300,000
    assert outputs["margin_floor"] == 0.35  # services 400,000 / 1,000,000 = 0.40 exactly


# -- PM-1: risk offers only through SELECT partners --------------------------------------------


@pytest.mark.parametrize("tier", ["gold", "silver", "registered"])
@pytest.mark.parametrize("offer_type", ["new_market", "advanced_technology"])
def test_pm1_risk_offer_through_a_non_select_partner_is_rejected(make, evaluate, offer_type, tier):
    decision = evaluate(risk_deal(make, offer={"type": offer_type}, partner=partner(tier)))
    assert decision.status == "rejected"
    assert decision.policy(MARGIN)["status"] == "rejected"
    assert "PM-1" in decision.fired(MARGIN)
    assert decision.reasons("PM-1") == [
        f"Risk-model offers are sold only through SELECT partners; Delta Systems Integration is {tier}."
    ]


def test_pm1_a_partner_without_a_tier_is_not_select(make, evaluate):
    decision = evaluate(risk_deal(make, partner={"kind": "reseller", "discount": "0.05"}))
    assert decision.status == "rejected"
    assert decision.reasons("PM-1") == [
        "Risk-model offers are sold only through SELECT partners; the partner is not in a partner tier."
    ]


@pytest.mark.parametrize(
    ("offer_type", "deal_partner"),
    [("new_market", partner("select")), ("new_market", None), ("standard", partner("gold"))],
)
def test_pm1_select_direct_and_standard_are_not_rejected(make, evaluate, offer_type, deal_partner):
    decision = evaluate(risk_deal(make, offer={"type": offer_type}, partner=deal_partner))
    assert "PM-1" not in decision.fired(MARGIN)
    assert decision.policy(MARGIN)["status"] != "rejected"


# -- PM-2: the margin floor by services mix ---------------------------------------------------


@pytest.mark.parametrize(
    ("product", "labor", "support", "floor"),
    [
        # services_ratio = (labor + support) / (product + labor + support)
        ("800000", "79999.99", "120000", 0.40),  # 0.19999999
        ("800000", "80000", "120000", 0.35),  # exactly 0.20
        ("800000", "80000.01", "120000", 0.35),  # 0.20000001
        ("600000", "309999.99", "90000", 0.35),  # 0.39999999
        ("600000", "310000", "90000", 0.35),  # exactly 0.40
        ("600000", "310000.01", "90000", 0.30),  # 0.40000001
    ],
)
def test_pm2_margin_floor_by_services_ratio(make, evaluate, product, labor, support, floor):
    decision = evaluate(make.mix(product=product, labor=labor, support=support))
    assert decision.outputs(MARGIN)["margin_floor"] == floor
    assert "PM-2" in decision.fired(MARGIN)
    assert decision.approvals == []  # margin 0.50 is above every floor


# -- PM-3: margin below the floor -------------------------------------------------------------

FLOOR_MIXES = {
    # floor: (product, labor, support) with services_ratio 0.15, 0.30 and 0.50
    0.40: ("850000", "0", "150000"),
    0.35: ("700000", "195000", "105000"),
    0.30: ("500000", "425000", "75000"),
}


@pytest.mark.parametrize(
    ("floor", "margin", "approvals"),
    [
        (0.40, "0.40", []),
        (0.40, "0.39999999", ["vp_finance"]),
        (0.40, "0.35", ["vp_finance"]),  # exactly 0.05 below
        (0.40, "0.34999999", ["vp_finance", "cfo"]),
        (0.35, "0.35", []),
        (0.35, "0.34999999", ["vp_finance"]),
        (0.35, "0.30", ["vp_finance"]),
        (0.35, "0.29999999", ["vp_finance", "cfo"]),
        (0.30, "0.30", []),
        (0.30, "0.29999999", ["vp_finance"]),
        (0.30, "0.25", ["vp_finance"]),
        (0.30, "0.24999999", ["vp_finance", "cfo"]),
    ],
)
def test_pm3_margin_below_the_floor(make, evaluate, floor, margin, approvals):
    product, labor, support = FLOOR_MIXES[floor]
    decision = evaluate(make.mix(product=product, labor=labor, support=support, margin=margin))
    outputs = decision.outputs(MARGIN)
    assert outputs["margin_floor"] == floor
    assert outputs["margin"] == float(round(Decimal(margin), 4))
    assert decision.approvals == approvals
    assert ("PM-3" in decision.fired(MARGIN)) is bool(approvals)
    assert decision.status == ("needs_approval" if approvals else "approved")


def test_pm3_reasons(make, evaluate):
    decision = evaluate(make.mix(product="850000", support="150000", margin="0.30"))
    assert decision.reasons("PM-3") == ["Margin 30% is below the floor of 40%."]
    assert len(decision.reasons("PM-3-cfo")) == 1


# -- PM-4: max_extra_discount -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "labor", "support", "margin", "expected"),
    [
        ("850000", "0", "150000", "0.5", 0.1667),  # 1 - 500,000 / (0.60 x 1,000,000)
        ("700000", "195000", "105000", "0.5", 0.2308),  # 1 - 500,000 / (0.65 x 1,000,000)
        ("500000", "425000", "75000", "0.5", 0.2857),  # 1 - 500,000 / (0.70 x 1,000,000)
        ("850000", "0", "150000", "0.40", 0),  # at the floor: nothing more
        ("850000", "0", "150000", "0.30", 0),  # below it: 0, never negative
    ],
)
def test_pm4_max_extra_discount(make, evaluate, product, labor, support, margin, expected):
    decision = evaluate(make.mix(product=product, labor=labor, support=support, margin=margin))
    assert decision.outputs(MARGIN)["max_extra_discount"] == expected
    assert "PM-4" in decision.fired(MARGIN)


# -- PM-5: discount authority -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("discount", "approvals"),
    [
        ("0", []),
        ("0.10", []),
        ("0.10001", ["sales_manager"]),
        ("0.20", ["sales_manager"]),
        ("0.20001", ["sales_director"]),
        ("0.30", ["sales_director"]),
        ("0.30001", ["vp_sales"]),
        ("0.40", ["vp_sales"]),
        ("0.40001", ["cfo"]),
        ("0.5", ["cfo"]),
    ],
)
def test_pm5_discount_authority(make, evaluate, discount, approvals):
    decision = evaluate(make.discounted(discount))
    assert decision.approvals == approvals
    assert "PM-5" in decision.fired(MARGIN)
    assert len(decision.reasons("PM-5")) == len(approvals)


def test_pm5_no_list_price_is_no_discount(make, evaluate):
    decision = evaluate(make())
    assert "PM-5" in decision.fired(MARGIN)
    assert decision.reasons("PM-5") == []
    assert decision.approvals == []


@pytest.mark.parametrize(("hardware", "approvals"), [("4249999.99", []), ("4250000", ["cfo"])])
def test_pm5_contract_of_5000000_needs_the_cfo(make, evaluate, hardware, approvals):
    deal = make(lines=[make.line("hardware", hardware), make.line("support", 750000)])
    decision = evaluate(deal)
    assert decision.approvals == approvals
    if approvals:
        assert decision.reasons("PM-5") == ["A contract of 5,000,000.00 USD needs the CFO."]


def test_pm5_contract_of_5000000_with_a_discount_needs_only_the_cfo(make, evaluate):
    # the first row that applies: the CFO's authority covers any discount
    hardware = make.line("hardware", 750, cost=200, list_price=1000, quantity=5500)
    decision = evaluate(make(lines=[hardware, make.line("support", 875000)]))
    assert decision.approvals == ["cfo"]


# -- PM-6: partner discount caps ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "cap", "at_cap", "above_cap"),
    [
        ("select", 0.25, "0.25", "0.2501"),
        ("gold", 0.15, "0.15", "0.1501"),
        ("silver", 0.10, "0.10", "0.1001"),
        ("registered", 0.05, "0.05", "0.0501"),
    ],
)
def test_pm6_partner_discount_cap_by_tier(make, evaluate, tier, cap, at_cap, above_cap):
    at = evaluate(make(partner=partner(tier, at_cap)))
    assert at.outputs(MARGIN)["partner_discount_cap"] == cap
    assert at.approvals == []
    assert "PM-6" in at.fired(MARGIN)
    above = evaluate(make(partner=partner(tier, above_cap)))
    assert above.outputs(MARGIN)["partner_discount_cap"] == cap
    assert above.approvals == ["vp_channels"]
    assert len(above.reasons("PM-6-over")) == 1
    below = evaluate(make(partner=partner(tier, "0")))
    assert below.approvals == []


def test_pm6_direct_deal_has_no_cap(make, evaluate):
    decision = evaluate(make(partner=None))
    assert decision.outputs(MARGIN)["partner_discount_cap"] is None
    assert "PM-6" not in decision.fired(MARGIN)


def test_pm6_on_a_risk_offer_through_select(make, evaluate):
    decision = evaluate(risk_deal(make, partner=partner("select", "0.26")))
    assert decision.approvals == ["deal_desk", "vp_channels"]


# -- PM-7: us-west ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "discount", "approvals"),
    [
        ("us-west", "0.20", ["sales_manager"]),
        ("us-west", "0.20001", ["sales_director", "regional_vp"]),
        ("us-west", "0.35", ["regional_vp", "vp_sales"]),
        ("us-central", "0.20001", ["sales_director"]),
        ("us-east", "0.35", ["vp_sales"]),
    ],
)
def test_pm7_deep_discounts_in_us_west_need_the_regional_vp(
    make, evaluate, region, discount, approvals
):
    decision = evaluate(make.discounted(discount, customer={"region": region}))
    assert decision.approvals == approvals
    assert ("PM-7" in decision.fired(MARGIN)) is ("regional_vp" in approvals)


# -- PM-8: risk offers by account size ---------------------------------------------------------


def test_pm8_risk_offer_to_a_rabbit_is_rejected(make, evaluate):
    decision = evaluate(risk_deal(make, customer={"segment": "rabbit"}))
    assert decision.status == "rejected"
    assert "PM-8" in decision.fired(MARGIN)
    assert decision.reasons("PM-8") == [
        "Risk-model offers are not sold to small (rabbit) accounts."
    ]


def test_pm8_risk_offer_to_a_deer_needs_the_vp_of_sales(make, evaluate):
    decision = evaluate(risk_deal(make, customer={"segment": "deer"}))
    assert decision.status == "needs_approval"
    assert decision.approvals == ["deal_desk", "vp_sales"]
    assert "PM-8" in decision.fired(MARGIN)


def test_pm8_risk_offer_to_an_elephant(make, evaluate):
    decision = evaluate(risk_deal(make, customer={"segment": "elephant"}))
    assert decision.approvals == ["deal_desk"]
    assert "PM-8" not in decision.fired(MARGIN)


@pytest.mark.parametrize("segment", ["rabbit", "deer"])
def test_pm8_standard_offers_to_any_segment(make, evaluate, segment):
    decision = evaluate(make(customer={"segment": segment}))
    assert decision.status == "approved"
    assert "PM-8" not in decision.fired(MARGIN)


# -- PM-9: labor margin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labor_cost", "labor_margin", "services_finance"),
    [
        ("70000", 0.3, False),  # exactly 0.30
        ("70000.01", 0.3, True),  # 0.2999999: compared in full precision, shown rounded
        ("69999.99", 0.3, False),
        ("75000", 0.25, True),
    ],
)
def test_pm9_labor_margin_below_30_percent_needs_services_finance(
    make, evaluate, labor_cost, labor_margin, services_finance
):
    labor = make.line("labor", 100000, cost=labor_cost, resource="implementation")
    decision = evaluate(make(lines=[*make()["lines"], labor]))
    assert decision.outputs(MARGIN)["labor_margin"] == labor_margin
    assert decision.approvals == (["services_finance"] if services_finance else [])
    assert ("PM-9" in decision.fired(MARGIN)) is services_finance


# -- PM-10: product lines below their expected margins -----------------------------------------

PM10_FLAG = "A hardware line below 30% margin or a software line below 80% margin."


@pytest.mark.parametrize(
    ("category", "cost", "flagged"),
    [
        ("hardware", "70000", False),  # exactly 0.30
        ("hardware", "70000.01", True),
        ("software", "20000", False),  # exactly 0.80
        ("software", "20000.01", True),
        ("labor", "90000", False),  # PM-10 is about product lines only
    ],
)
def test_pm10_low_margin_product_lines_are_flagged(make, evaluate, category, cost, flagged):
    lines = [
        make.line("hardware", 600000),
        make.line("support", 120000),
        make.line(category, 100000, cost=cost, sku="LOW-1"),
    ]
    decision = evaluate(make(lines=lines))
    assert decision.flags("PM-10") == ([PM10_FLAG] if flagged else [])
    assert ("PM-10" in decision.fired(MARGIN)) is flagged
    if category != "labor":
        assert decision.status == "approved"  # a flag does not change the status


def test_pm10_one_flag_for_several_lines(make, evaluate):
    lines = [
        make.line("hardware", 600000, cost=500000),
        make.line("software", 400000, cost=200000),
        make.line("support", 300000, cost=100000),
    ]
    assert evaluate(make(lines=lines)).flags("PM-10") == [PM10_FLAG]


# -- PM-11: a costed line without unit_cost -----------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_pm11_a_costed_line_without_unit_cost_makes_the_deal_invalid(make, evaluate, index):
    lines = [
        make.line("hardware", 600000),
        make.line("software", 100000, cost=10000),
        make.line("labor", 100000, cost=50000, resource="implementation"),
        make.line("support", 100000),
    ]
    lines[index] = make.without_cost(lines[index])
    decision = evaluate(make.risk(lines=lines, customer={"segment": "rabbit"}))
    assert decision.status == "invalid"
    assert [e["path"] for e in decision.record["errors"]] == [f"lines[{index}].unit_cost"]
    assert decision.approvals == []
    assert decision.record["policies"] == {}


def test_pm11_every_missing_cost_is_named(make, evaluate):
    lines = [
        make.without_cost(make.line("hardware", 600000)),
        make.line("support", 100000),
        make.without_cost(make.line("software", 1000)),
    ]
    decision = evaluate(make(lines=lines))
    assert decision.status == "invalid"
    assert [e["path"] for e in decision.record["errors"]] == [
        "lines[0].unit_cost",
        "lines[2].unit_cost",
    ]


def test_pm11_a_subscription_line_needs_no_cost(make, evaluate):
    deal = make(lines=[*make()["lines"], make.line("subscription", 50000)])
    assert "unit_cost" not in deal["lines"][-1]
    decision = evaluate(deal)
    assert decision.status == "approved"
    # cost 350,000 on 750,000: the subscription is not treated as costing anything
    assert decision.outputs(MARGIN)["margin"] == 0.5333


def test_pm11_a_zero_cost_is_a_cost(make, evaluate):
    deal = make(lines=[make.line("software", 700000, cost=0), make.line("support", 150000)])
    decision = evaluate(deal)
    assert decision.status == "approved"
    assert decision.outputs(MARGIN)["margin"] == 0.9118  # 1 - 75,000 / 850,000


# -- PM-12: platinum club ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platinum", "discount", "approvals", "flagged"),
    [
        (True, "0.20", ["sales_manager"], False),
        (True, "0.20001", ["deal_desk", "sales_director"], True),
        (False, "0.20001", ["sales_director"], False),
    ],
)
def test_pm12_platinum_club_deep_discount_is_flagged_for_the_deal_desk(
    make, evaluate, platinum, discount, approvals, flagged
):
    decision = evaluate(make.discounted(discount, customer={"platinum_club": platinum}))
    assert decision.approvals == approvals
    assert ("PM-12" in decision.fired(MARGIN)) is flagged
    assert len(decision.flags("PM-12")) == int(flagged)


# -- PM-13: every risk offer goes to the deal desk ---------------------------------------------


@pytest.mark.parametrize("offer_type", ["new_market", "advanced_technology"])
def test_pm13_every_risk_offer_needs_the_deal_desk(make, evaluate, offer_type):
    decision = evaluate(risk_deal(make, offer={"type": offer_type}))
    assert decision.status == "needs_approval"
    assert decision.approvals == ["deal_desk"]
    assert "PM-13" in decision.fired(MARGIN)
    assert decision.reasons("PM-13") == [
        f"Every risk-model deal ({offer_type}) needs deal-desk review."
    ]


def test_pm13_not_for_standard_offers(make, evaluate):
    assert "PM-13" not in evaluate(make()).fired(MARGIN)


# -- the decision record: status precedence and approval order ---------------------------------


def everything(make: Any, segment: str = "deer") -> dict[str, Any]:
    """A risk offer that sends the deal to eleven approvers across the three policies."""
    lines = [
        make.line("hardware", 750, cost=200, list_price=1000, quantity=1000),  # discount 0.25
        make.line("labor", 200000, cost=150000, resource="architect"),  # labor margin 0.25
        make.line("support", 225000, cost=100000),  # 30% of product
    ]
    return make.risk(
        lines=lines,
        customer={"segment": segment, "region": "us-west", "government": True},
        partner=partner("select", "0.30"),
        offer={"pricing": "financial_improvement"},
        billing={"payment_terms_days": 61},
        support={"resident_cost_to": "product_development"},
    )


EVERY_ROLE = [
    "deal_desk",  # PM-13
    "sales_director",  # PM-5, discount 0.25
    "regional_vp",  # PM-7
    "vp_sales",  # PM-8, deer
    "vp_channels",  # PM-6, 0.30 above the select cap
    "services_finance",  # PM-9
    "vp_finance",  # BM-7
    "controller",  # OS-5
    "public_sector_legal",  # OS-7
    "legal",  # BM-8
    "cfo",  # BM-8
]


def approver_ranks() -> list[str]:
    return yaml.safe_load((files("dealdesk.rulesets") / "approvers.yaml").read_text())["approvers"]


def test_approvals_are_unique_and_ordered_by_rank(make, evaluate):
    decision = evaluate(everything(make))
    assert decision.status == "needs_approval"
    assert decision.approvals == EVERY_ROLE
    ranks = approver_ranks()
    assert decision.approvals == sorted(decision.approvals, key=ranks.index)
    # several rules ask for the deal desk (PM-13, OS-4); it is listed once
    assert decision.approvals.count("deal_desk") == 1
    assert {name: p["status"] for name, p in decision.record["policies"].items()} == {
        BILLING: "needs_approval",
        SUPPORT: "needs_approval",
        MARGIN: "needs_approval",
    }


def test_rejected_beats_needs_approval_and_keeps_the_approvals(make, evaluate):
    decision = evaluate(everything(make, segment="rabbit"))
    assert decision.status == "rejected"
    assert decision.approvals == [r for r in EVERY_ROLE if r != "vp_sales"]
    assert {name: p["status"] for name, p in decision.record["policies"].items()} == {
        BILLING: "needs_approval",
        SUPPORT: "needs_approval",
        MARGIN: "rejected",
    }


def test_a_rejection_in_one_policy_rejects_the_deal(make, evaluate):
    decision = evaluate(make(billing={"requested_split": [60, 60]}))
    assert decision.status == "rejected"
    assert {name: p["status"] for name, p in decision.record["policies"].items()} == {
        BILLING: "rejected",
        SUPPORT: "approved",
        MARGIN: "approved",
    }


def test_invalid_beats_rejected(make, evaluate):
    deal = everything(make, segment="rabbit")
    deal["lines"][0] = make.without_cost(deal["lines"][0])
    decision = evaluate(deal)
    assert decision.status == "invalid"
    assert decision.approvals == []
    assert [e["path"] for e in decision.record["errors"]] == ["lines[0].unit_cost"]


def test_approved_when_nothing_asks(make, evaluate):
    decision = evaluate(make())
    assert decision.status == "approved"
    assert decision.approvals == []
    assert decision.record["reasons"] == []
    assert decision.record["flags"] == []
    assert all(p["status"] == "approved" for p in decision.record["policies"].values())


def test_json_floats_are_exact_at_the_boundaries(make, evaluate):
    # a JSON reader hands over floats: 1 - 70.0 / 100.0 must be 0.30 (SPEC §2), not 0.3000...04,
    # and a silver partner's 0.1 must sit exactly at its cap
    deal = make(
        lines=[
            {
                "sku": "HW",
                "category": "hardware",
                "quantity": 6000,
                "unit_price": 70.0,
                "list_price": 100.0,
                "unit_cost": 10.0,
            },
            {
                "sku": "SUP",
                "category": "support",
                "quantity": 1,
                "unit_price": 63000.0,
                "unit_cost": 1.0,
            },
        ],
        partner=partner("silver", 0.1),
    )
    deal = json.loads(json.dumps(deal))
    decision = evaluate(deal)
    assert decision.approvals == ["sales_director"]  # <= 0.30, not vp_sales
    assert decision.outputs(MARGIN)["partner_discount_cap"] == 0.1
    assert "PM-6-over" not in decision.fired(MARGIN)
