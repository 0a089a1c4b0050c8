"""The house onsite-support policy (SPEC §5, OS-1..OS-8) through the real engine."""

from __future__ import annotations

from typing import Any

import pytest

from dealdesk.app import build

SUPPORT = "onsite-support"
OUTPUTS = {"support_model", "resident_engineer", "service_contract_value", "integration_owner"}


def risk_product(
    make: Any, product: str | int, *, support_line: str | int | None = None, **patch: Any
) -> dict[str, Any]:
    """A direct new-market offer with ``product`` of hardware and optionally a support line."""
    lines = [make.line("hardware", product)]
    if support_line is not None:
        lines.append(make.line("support", support_line))
    return make.risk(**{"lines": lines, **patch})


def resident(grade: int, cost_center: str = "project") -> dict[str, Any]:
    return {"fte": 1.0, "months": 12, "grade": grade, "cost_center": cost_center}


def test_outputs_are_exactly_the_specs(make, evaluate):
    assert set(evaluate(make()).outputs(SUPPORT)) == OUTPUTS
    assert set(evaluate(make.risk()).outputs(SUPPORT)) == OUTPUTS


# -- support_model and OS-1 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer_type", "support", "expected"),
    [
        ("standard", {"model": "break_fix"}, "break_fix"),
        ("standard", {"model": "proactive"}, "proactive"),
        ("standard", {"model": "none"}, "none"),
        ("standard", None, "none"),  # absent
        ("new_market", {"model": "proactive"}, "proactive"),
        ("advanced_technology", None, "proactive"),  # risk offers are always proactive
    ],
)
def test_support_model(make, evaluate, offer_type, support, expected):
    deal = make(offer={"type": offer_type}, support=support)
    assert evaluate(deal).outputs(SUPPORT)["support_model"] == expected


@pytest.mark.parametrize("model", ["break_fix", "none"])
@pytest.mark.parametrize("offer_type", ["new_market", "advanced_technology"])
def test_os1_break_fix_or_none_on_a_risk_offer_is_rejected(make, evaluate, offer_type, model):
    decision = evaluate(make.risk(offer_type, support={"model": model}))
    assert decision.status == "rejected"
    assert decision.policy(SUPPORT)["status"] == "rejected"
    assert "OS-1" in decision.fired(SUPPORT)
    assert decision.reasons("OS-1") == [
        "Break-fix support does not apply to risk categories; proactive support is required "
        f"(the deal asks for {model})."
    ]
    assert decision.outputs(SUPPORT)["support_model"] == "proactive"


def test_os1_a_risk_offer_that_names_no_support_model_gets_proactive(make, evaluate):
    decision = evaluate(make.risk(support=None))
    assert "OS-1" not in decision.fired(SUPPORT)
    assert decision.policy(SUPPORT)["status"] != "rejected"
    assert decision.outputs(SUPPORT)["support_model"] == "proactive"


@pytest.mark.parametrize("model", ["break_fix", "none"])
def test_os1_break_fix_on_a_standard_offer_is_fine(make, evaluate, model):
    decision = evaluate(make(support={"model": model}))
    assert "OS-1" not in decision.fired(SUPPORT)
    assert decision.status == "approved"


# -- OS-2 / OS-3: the resident engineer and its grade -----------------------------------------


def test_os2_no_resident_engineer_just_below_500000(make, evaluate):
    decision = evaluate(risk_product(make, "499999.99"))
    assert decision.outputs(SUPPORT)["resident_engineer"] is None
    assert "OS-2" not in decision.fired(SUPPORT)
    assert "OS-3" not in decision.fired(SUPPORT)
    assert "support/resident-engineer" not in decision.clauses(SUPPORT)


def test_os2_resident_engineer_at_500000(make, evaluate):
    decision = evaluate(risk_product(make, "500000"))
    assert decision.outputs(SUPPORT)["resident_engineer"] == resident(10)
    assert {"OS-2", "OS-3"} <= set(decision.fired(SUPPORT))
    assert "support/resident-engineer" in decision.clauses(SUPPORT)


def test_os2_no_resident_engineer_on_a_standard_offer(make, evaluate):
    decision = evaluate(make.product("2000000", support="300000"))
    assert decision.outputs(SUPPORT)["resident_engineer"] is None
    assert "OS-2" not in decision.fired(SUPPORT)


@pytest.mark.parametrize(
    ("product", "customer", "grade"),
    [
        ("500000", {}, 10),
        ("749999.99", {}, 10),
        ("750000", {}, 11),
        ("750000.01", {}, 11),
        ("5000000", {}, 11),
        # 12 comes first, whatever the product value
        ("500000", {"government": True}, 12),
        ("900000", {"government": True}, 12),
        ("500000", {"region": "us-east"}, 12),
        ("900000", {"region": "us-east"}, 12),
        ("600000", {"government": True, "region": "us-east"}, 12),
        ("600000", {"region": "us-west"}, 10),
    ],
)
def test_os3_resident_grade_first_that_applies(make, evaluate, product, customer, grade):
    decision = evaluate(risk_product(make, product, customer=customer))
    assert decision.outputs(SUPPORT)["resident_engineer"]["grade"] == grade


# -- OS-4: the service contract value and the support lines ------------------------------------


@pytest.mark.parametrize(
    ("offer_type", "product", "value"),
    [
        ("new_market", "1000000", "300000.00"),
        ("advanced_technology", "400000", "120000.00"),
        ("standard", "1000000", "150000.00"),
        ("standard", "600000", "90000.00"),
        # 30% of 500,000.15 is 150,000.045, shown half-up
        ("new_market", "500000.15", "150000.05"),
        # 15% of 333,333.33 is 49,999.9995
        ("standard", "333333.33", "50000.00"),
    ],
)
def test_os4_service_contract_value(make, evaluate, offer_type, product, value):
    deal = make(
        offer={"type": offer_type},
        support={"model": "proactive"},
        lines=[make.line("hardware", product)],
    )
    decision = evaluate(deal)
    assert decision.outputs(SUPPORT)["service_contract_value"] == value
    assert "OS-4" in decision.fired(SUPPORT)
    assert "support/service-contract" in decision.clauses(SUPPORT)


def test_os4_service_contract_value_in_yen(make, evaluate):
    decision = evaluate(risk_product(make, "500015", currency="JPY"))
    assert decision.outputs(SUPPORT)["service_contract_value"] == "150005"


@pytest.mark.parametrize(
    ("support", "deal_desk"),
    [("89999.99", True), ("90000", False), ("90000.01", False)],
)
def test_os4_support_below_15_percent_on_a_standard_offer_needs_the_deal_desk(
    make, evaluate, support, deal_desk
):
    decision = evaluate(make.product("600000", support=support))
    assert decision.outputs(SUPPORT)["service_contract_value"] == "90000.00"
    assert decision.approvals == (["deal_desk"] if deal_desk else [])
    assert decision.policy(SUPPORT)["status"] == ("needs_approval" if deal_desk else "approved")
    assert ("OS-4-support" in decision.fired(SUPPORT)) is deal_desk


@pytest.mark.parametrize(
    ("support", "deal_desk"),
    [(None, True), ("299999.99", True), ("300000", False), ("300000.01", False)],
)
def test_os4_support_below_30_percent_on_a_risk_offer_needs_the_deal_desk(
    make, evaluate, support, deal_desk
):
    decision = evaluate(risk_product(make, "1000000", support_line=support))
    assert decision.outputs(SUPPORT)["service_contract_value"] == "300000.00"
    assert decision.policy(SUPPORT)["status"] == ("needs_approval" if deal_desk else "approved")
    assert ("OS-4-support" in decision.fired(SUPPORT)) is deal_desk


@pytest.mark.parametrize(("support", "deal_desk"), [("150000.04", True), ("150000.05", False)])
def test_os4_compares_with_the_exact_value(make, evaluate, support, deal_desk):
    # 30% of 500,000.15 is 150,000.045 (shown 150,000.05): the same answer either way
    decision = evaluate(risk_product(make, "500000.15", support_line=support))
    assert decision.outputs(SUPPORT)["service_contract_value"] == "150000.05"
    assert ("OS-4-support" in decision.fired(SUPPORT)) is deal_desk


def test_os4_no_product_no_service_contract_clause(make, evaluate):
    deal = make(lines=[make.line("labor", 200000, cost=100000, resource="implementation")])
    decision = evaluate(deal)
    assert decision.outputs(SUPPORT)["service_contract_value"] == "0.00"
    assert "support/service-contract" not in decision.clauses(SUPPORT)
    assert "OS-4-support" not in decision.fired(SUPPORT)  # 0 of support is not below 0
    assert decision.status == "approved"


# -- OS-5: who bears the resident engineer's cost ----------------------------------------------


def test_os5_resident_charged_to_product_development_needs_the_controller(make, evaluate):
    deal = risk_product(
        make, "1000000", support_line="300000", support={"resident_cost_to": "product_development"}
    )
    decision = evaluate(deal)
    assert decision.outputs(SUPPORT)["resident_engineer"] == resident(11, "product_development")
    assert "OS-5" in decision.fired(SUPPORT)
    assert decision.approvals == ["deal_desk", "controller"]


@pytest.mark.parametrize(
    "support", [{"model": "proactive", "resident_cost_to": "project"}, {"model": "proactive"}]
)
def test_os5_cost_center_project_by_default(make, evaluate, support):
    decision = evaluate(risk_product(make, "1000000", support_line="300000", support=support))
    assert decision.outputs(SUPPORT)["resident_engineer"]["cost_center"] == "project"
    assert "OS-5" not in decision.fired(SUPPORT)
    assert "controller" not in decision.approvals


def test_os5_needs_a_resident_engineer(make, evaluate):
    deal = make(support={"model": "proactive", "resident_cost_to": "product_development"})
    decision = evaluate(deal)
    assert "OS-5" not in decision.fired(SUPPORT)
    assert decision.approvals == []
    small = evaluate(
        risk_product(
            make,
            "499999.99",
            support={"model": "proactive", "resident_cost_to": "product_development"},
        )
    )
    assert "controller" not in small.approvals


# -- OS-6: integration ownership ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("presales", "owner", "clause"),
    [
        (True, "vendor", "support/integration-vendor"),
        (False, "customer", "support/integration-customer"),
        (None, "customer", "support/integration-customer"),  # absent
    ],
)
def test_os6_integration_owner(make, evaluate, presales, owner, clause):
    decision = evaluate(make(customer={"presales_consulting": presales}))
    assert decision.outputs(SUPPORT)["integration_owner"] == owner
    assert "OS-6" in decision.fired(SUPPORT)
    integration = [c for c in decision.clauses(SUPPORT) if c.startswith("support/integration-")]
    assert integration == [clause]


# -- OS-7: government customers with a resident engineer ---------------------------------------


def test_os7_government_with_a_resident_engineer_needs_public_sector_legal(make, evaluate):
    decision = evaluate(
        risk_product(make, "500000", support_line="150000", customer={"government": True})
    )
    assert decision.approvals == ["deal_desk", "public_sector_legal"]
    assert "OS-7" in decision.fired(SUPPORT)
    assert "support/personnel-security" in decision.clauses(SUPPORT)
    assert decision.outputs(SUPPORT)["resident_engineer"] == resident(12)


def test_os7_government_without_a_resident_engineer(make, evaluate):
    decision = evaluate(
        risk_product(make, "499999.99", support_line="150000", customer={"government": True})
    )
    assert "OS-7" not in decision.fired(SUPPORT)
    assert "public_sector_legal" not in decision.approvals
    assert "support/personnel-security" not in decision.clauses(SUPPORT)
    standard = evaluate(make(customer={"government": True}))
    assert "OS-7" not in standard.fired(SUPPORT)
    assert standard.approvals == []


def test_os7_not_government(make, evaluate):
    decision = evaluate(
        risk_product(make, "900000", support_line="270000", customer={"region": "us-east"})
    )
    assert "OS-7" not in decision.fired(SUPPORT)
    assert decision.approvals == ["deal_desk"]


# -- OS-8: the proactive schedule --------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer_type", "model", "clause"),
    [
        ("standard", "proactive", True),
        ("standard", "break_fix", False),
        ("standard", "none", False),
        ("new_market", "proactive", True),
    ],
)
def test_os8_proactive_support_gets_the_schedule_clause(make, evaluate, offer_type, model, clause):
    decision = evaluate(make(offer={"type": offer_type}, support={"model": model}))
    assert ("OS-8" in decision.fired(SUPPORT)) is clause
    assert ("support/proactive-schedule" in decision.clauses(SUPPORT)) is clause


# -- the clauses, rendered -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendering():
    """The house policy with clause rendering on (SPEC §4: only when asked for)."""
    return build(autoload=False, clauses=True).pipeline


def test_resident_engineer_clause_renders_the_output(make, rendering):
    deal = risk_product(
        make, "750000", support_line="225000", support={"resident_cost_to": "product_development"}
    )
    record = rendering.evaluate(deal)
    clauses = {c["id"]: c for c in record["clauses"] if c["policy"] == SUPPORT}
    assert set(clauses) == {
        "support/resident-engineer",
        "support/service-contract",
        "support/integration-customer",
        "support/proactive-schedule",
    }
    resident_clause = clauses["support/resident-engineer"]
    assert resident_clause["rule"] == "OS-2"
    assert (
        "1.0 FTE" in resident_clause["text"] and "engineering grade 11" in resident_clause["text"]
    )
    assert "product development cost center" in resident_clause["text"]
