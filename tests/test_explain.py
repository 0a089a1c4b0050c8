"""dealdesk.explain: why each rule fired or not, as data, on the real engine."""

from __future__ import annotations

import copy
import re
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from dealdesk import app as dealdesk_app
from dealdesk.deal.schema import FIELDS
from dealdesk.explain import (
    DealExplanation,
    RuleExplanation,
    explain_deal,
    format_expr,
    format_value,
    truth,
)
from dealdesk.rules.expressions import FieldType, Scope, parse_expression

ROOT = Path(__file__).resolve().parents[1]
ACME = yaml.safe_load((ROOT / "examples" / "deals" / "acme-risk.yaml").read_text())


@pytest.fixture(scope="module")
def house() -> dealdesk_app.App:
    return dealdesk_app.build(autoload=False)


def explain(
    application: dealdesk_app.App, deal: dict, rule_id: str | None = None
) -> DealExplanation:
    decision = application.decide(deal)
    return explain_deal(decision.record, decision.runs, decision.data, rule_id=rule_id)


def rule(explanation: DealExplanation, label: str) -> RuleExplanation:
    [found] = [r for r in explanation.rules() if r.label == label]
    return found


def test_a_fired_rule_and_its_effects(house) -> None:
    pm13 = rule(explain(house, ACME), "PM-13")
    assert (pm13.fired, pm13.value, pm13.why) == (True, True, "its condition is true")
    assert pm13.when == "risk_offer"
    assert [(c.text, c.value, c.detail) for c in pm13.conjuncts] == [
        ("risk_offer", True, "risk_offer = true")
    ]
    assert pm13.effects == ["require deal_desk"]
    assert pm13.policy == "partner-margin"
    assert re.fullmatch(r".*partner-margin\.yaml:\d+:\d+", pm13.location)


def test_a_rule_that_did_not_fire_names_the_false_conjunct(house) -> None:
    bm2 = rule(explain(house, ACME), "BM-2")
    assert (bm2.fired, bm2.value) == (False, False)
    assert [(c.text, c.value) for c in bm2.conjuncts] == [
        ("risk_offer", True),
        ("totals.product < 500000", False),
    ]
    assert bm2.conjuncts[1].detail == "totals.product = 1000000 (< 500000: false)"
    assert [(r.path, r.value) for r in bm2.conjuncts[1].reads] == [
        ("totals.product", Decimal("1000000"))
    ]
    assert bm2.why == "totals.product < 500000 is false"


def test_rules_come_in_priority_order_then_file_order(tmp_path: Path) -> None:
    (tmp_path / "order.yaml").write_text(
        textwrap.dedent(
            """\
            ruleset: order
            policy: partner-margin
            rules:
              - {id: A, when: risk_offer, then: {flag: a}}
              - {id: B, priority: 10, when: risk_offer, then: {flag: b}}
              - {id: C, priority: 10, when: customer.government, then: {flag: c}}
            tables:
              - id: T
                priority: 5
                hit: collect
                inputs: [risk_offer]
                rows:
                  - {when: [true], then: {flag: t1}}
                  - {when: [false], then: {flag: t2}}
            """
        )
    )
    application = dealdesk_app.build([tmp_path / "order.yaml"], autoload=False)
    [policy] = explain(application, ACME).policies
    assert [r.label for r in policy.rules] == ["B", "C", "T row 1", "T row 2", "A"]
    assert [r.fired for r in policy.rules] == [True, False, True, False, True]


def test_a_missing_value_makes_the_condition_unknown(house) -> None:
    direct = copy.deepcopy(ACME)
    del direct["partner"]
    over = rule(explain(house, direct), "PM-6-over")
    assert (over.fired, over.value) == (False, None)
    assert over.why.endswith(
        "is unknown (outputs.partner_discount_cap, partner.discount are missing)"
    )
    assert over.conjuncts[0].reads[0].value is None
    assert "partner.discount = missing" in over.conjuncts[0].detail


def test_table_rows_explain_their_cells_and_the_hit_policy(house) -> None:
    explanation = explain(house, ACME)
    row3, row4 = rule(explanation, "PM-5 row 3"), rule(explanation, "PM-5 row 4")
    assert row3.fired and not row4.fired
    assert row4.value is True
    assert row4.why == "the row matches, but hit policy first chose row 3"
    assert row3.when == "max_line_discount: <= 0.20"
    [cell] = row3.conjuncts
    assert (cell.text, cell.value, cell.detail) == (
        "max_line_discount: <= 0.20",
        True,
        "max_line_discount = ~0.142857 (<= 0.20: true)",
    )
    assert (
        rule(explanation, "PM-2 row 2").conjuncts[0].detail
        == "services_ratio = ~0.280368 ([0.20..0.40]: true)"
    )


def test_rule_id_limits_the_explanation(house) -> None:
    explanation = explain(house, ACME, rule_id="PM-5")
    assert [p.name for p in explanation.policies] == ["partner-margin"]
    assert [r.label for r in explanation.rules()] == [f"PM-5 row {n}" for n in range(1, 7)]


def test_an_invalid_deal_has_errors_and_no_rules(house) -> None:
    broken = copy.deepcopy(ACME)
    del broken["lines"][0]["unit_cost"]
    explanation = explain(house, broken)
    assert explanation.status == "invalid"
    assert explanation.policies == []
    assert [e["path"] for e in explanation.errors] == ["lines[0].unit_cost"]


def test_a_ruleset_out_of_its_effective_window(tmp_path: Path) -> None:
    (tmp_path / "late.yaml").write_text(
        "ruleset: late\npolicy: partner-margin\neffective: {from: 2030-01-01}\n"
        "rules:\n  - id: L-1\n    when: risk_offer\n    then: {require: deal_desk}\n"
    )
    application = dealdesk_app.build([tmp_path / "late.yaml"], autoload=False)
    late = rule(explain(application, ACME), "L-1")
    assert (late.fired, late.value) == (False, True)
    assert (
        late.why
        == "its condition is true, but ruleset 'late' is in effect 2030-01-01 to ..., not on 2026-12-15"
    )


SCOPE = Scope(
    {path: FieldType(f.type, f.enum) for path, f in FIELDS.items()}
    | {"outputs.floor": FieldType("number")}
)


@pytest.mark.parametrize(
    "text",
    [
        "totals.product >= 500000",
        "risk_offer and totals.product < 500000",
        'customer.region == "us-west" and max_line_discount > 0.2',
        'risk_offer and (support.model == "none" or not exists(partner))',
        'support.model in ["break_fix", "none"]',
        'partner.tier not in ["gold"]',
        'any(line.category == "labor" for line in lines)',
        "margin < outputs.floor - 0.05",
        "(totals.cost + totals.services) * 2 > totals.contract / (1 - margin)",
        'matches(customer.name, "^Acme")',
        "not (risk_offer and customer.government)",
    ],
)
def test_format_expr_gives_back_an_equivalent_condition(text: str) -> None:
    parsed = parse_expression(text, SCOPE)
    assert format_expr(parsed) == text
    assert parse_expression(format_expr(parsed), SCOPE) == parsed


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "missing"),
        (True, "true"),
        (Decimal("1000000.00"), "1000000"),
        (Decimal("0.25"), "0.25"),
        (Decimal(1) / Decimal(7), "~0.142857"),
        ("select", '"select"'),
        ([{"sku": "A"}, {"sku": "B"}], "[2 items]"),
        ([Decimal(30), Decimal(70)], "[30, 70]"),
    ],
)
def test_format_value(value: object, shown: str) -> None:
    assert format_value(value) == shown


def test_truth() -> None:
    assert [truth(v) for v in (True, False, None)] == ["true", "false", "unknown"]
