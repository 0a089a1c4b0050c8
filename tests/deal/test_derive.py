"""Tests for dealdesk.deal.derive: the derived facts of SPEC §2, in exact decimals."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from deal_samples import load_example, minimal_deal
from hypothesis import given
from hypothesis import strategies as st

from dealdesk.deal.derive import derive_facts
from dealdesk.deal.schema import CATEGORIES
from dealdesk.deal.validate import validate_deal

# -- derive_facts -------------------------------------------------------------------------------


def validated(raw: dict[str, Any]) -> dict[str, Any]:
    deal, errors = validate_deal(raw)
    assert errors == [], errors
    assert deal is not None
    return deal


def test_derive_facts_of_the_spec_deal() -> None:
    deal = validated(load_example("acme-risk.yaml"))
    before = copy.deepcopy(deal)
    facts = derive_facts(deal)
    assert deal == before  # the caller merges; the deal is not changed
    assert list(facts) == [
        "totals",
        "margin",
        "services_ratio",
        "max_line_discount",
        "risk_offer",
        "labor_margin",
        "lines",
    ]
    assert facts["totals"] == {
        "product": Decimal(1_000_000),
        "services": Decimal(389_600),
        "support": Decimal(300_000),
        "subscription": Decimal(0),
        "contract": Decimal(1_389_600),
        "cost": Decimal(697_200),
    }
    assert facts["margin"] == 1 - Decimal(697_200) / Decimal(1_389_600)
    assert facts["services_ratio"] == Decimal(389_600) / Decimal(1_389_600)
    assert facts["max_line_discount"] == 1 - Decimal(150_000) / Decimal(175_000)
    assert facts["labor_margin"] == Decimal("0.25")
    assert facts["risk_offer"] is True
    assert [line["amount"] for line in facts["lines"]] == [
        Decimal(600_000),
        Decimal(400_000),
        Decimal(89_600),
        Decimal(300_000),
    ]
    assert facts["lines"][0]["margin"] == Decimal("0.35")
    assert facts["lines"][0]["sku"] == "EDGE-APL"  # copies keep the input fields
    assert "amount" not in deal["lines"][0]


def test_discount_is_exact() -> None:
    raw = minimal_deal(
        lines=[
            {
                "category": "software",
                "quantity": 1,
                "unit_price": 70,
                "list_price": 100,
                "unit_cost": 7,
            }
        ]
    )
    facts = derive_facts(validated(raw))
    assert facts["max_line_discount"] == Decimal("0.30")
    assert str(facts["max_line_discount"]) == "0.3"
    assert facts["lines"][0]["margin"] == Decimal("0.9")


def test_optional_facts_are_absent_when_undefined() -> None:
    raw = minimal_deal(
        offer={"type": "standard"},
        lines=[
            {"category": "hardware", "quantity": 1, "unit_price": 100, "unit_cost": 60},
            {"category": "support", "quantity": 1, "unit_price": 0, "unit_cost": 10},
            {"category": "subscription", "quantity": 2, "unit_price": 25},
        ],
    )
    facts = derive_facts(validated(raw))
    assert facts["max_line_discount"] == 0  # no list prices
    assert "labor_margin" not in facts  # no labor lines
    assert facts["risk_offer"] is False
    assert "margin" not in facts["lines"][1]  # unit_price 0
    assert "margin" not in facts["lines"][2]  # subscription without cost
    assert facts["lines"][2]["amount"] == Decimal(50)
    # A subscription line without cost is not a costed line: the deal margin exists.
    assert facts["margin"] == 1 - Decimal(70) / Decimal(150)
    assert facts["totals"]["subscription"] == Decimal(50)
    assert facts["totals"]["support"] == Decimal(0)


def test_margin_is_absent_when_a_costed_line_lacks_cost() -> None:
    # validate_deal refuses such deals; derive_facts still never treats a missing cost as zero.
    deal = {
        "lines": [
            {"category": "hardware", "quantity": 1, "unit_price": 10},
            {"category": "labor", "quantity": 1, "unit_price": 10},
        ]
    }
    facts = derive_facts(deal)
    assert "margin" not in facts
    assert "labor_margin" not in facts
    assert facts["totals"]["contract"] == Decimal(20)


def test_derive_facts_accepts_plain_numbers() -> None:
    facts = derive_facts(
        {
            "offer": {"type": "advanced_technology"},
            "lines": [{"category": "labor", "quantity": 2, "unit_price": 0.1, "unit_cost": "0.05"}],
        }
    )
    assert facts["totals"]["services"] == Decimal("0.2")
    assert facts["labor_margin"] == Decimal("0.5")
    assert facts["risk_offer"] is True


amounts = st.decimals(
    min_value=0, max_value=Decimal("1e9"), places=2, allow_nan=False, allow_infinity=False
)
quantities = st.decimals(
    min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False
)
line_strategy = st.fixed_dictionaries(
    {
        "category": st.sampled_from(CATEGORIES),
        "quantity": quantities,
        "unit_price": amounts,
        "unit_cost": amounts,
    },
    optional={"list_price": amounts},
)


@given(st.lists(line_strategy, min_size=1, max_size=12))
def test_totals_equal_the_sum_of_line_amounts(lines: list[dict[str, Any]]) -> None:
    facts = derive_facts({"id": "P", "lines": lines})
    totals = facts["totals"]
    line_amounts = [line["amount"] for line in facts["lines"]]
    assert line_amounts == [line["quantity"] * line["unit_price"] for line in lines]
    assert totals["contract"] == sum(line_amounts, Decimal(0))
    assert totals["product"] + totals["services"] + totals["subscription"] == totals["contract"]
    assert totals["support"] == sum(
        (a for a, line in zip(line_amounts, lines, strict=True) if line["category"] == "support"),
        Decimal(0),
    )
    assert totals["cost"] == sum(
        (line["quantity"] * line["unit_cost"] for line in lines), Decimal(0)
    )
    if totals["contract"] != 0:
        assert facts["margin"] == 1 - totals["cost"] / totals["contract"]
        assert 0 <= facts["services_ratio"] <= 1
    else:
        assert "margin" not in facts and "services_ratio" not in facts
