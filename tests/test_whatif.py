"""dealdesk.whatif: the smallest changes that remove an obstacle, each checked here again by
evaluating the changed deal — and one step (a cent, a unit) less, which must not do it."""

from __future__ import annotations

import copy
import json
import re
import shlex
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from docblocks import blocks
from helpers import BASE_DEAL, evaluator, write_rulesets

from dealdesk import app as dealdesk_app
from dealdesk.engines import available_engines
from dealdesk.errors import UsageError
from dealdesk.whatif import (
    REMOVED,
    Change,
    WhatIf,
    as_json,
    knobs,
    obstacles,
    parse_goal,
    thresholds,
    what_if,
)

ROOT = Path(__file__).resolve().parents[1]
DEALS = ROOT / "examples" / "deals"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEALS / f"{name}.yaml").read_text())


@pytest.fixture(scope="module")
def house() -> dealdesk_app.App:
    return dealdesk_app.build(autoload=False)


def ask(application: dealdesk_app.App, deal: dict[str, Any], *goals: str) -> WhatIf:
    wanted = [parse_goal(g, application.policy_set.approvers) for g in goals]
    return what_if(
        deal,
        application.decide,
        application.plugins.fact_types,
        ranks=application.policy_set.approvers,
        goals=wanted,
    )


def answer_for(result: WhatIf, label: str) -> list[Change]:
    [answer] = [a for a in result.answers if a.title == label]
    return answer.changes


def change_to(changes: list[Change], path: str) -> Change:
    [found] = [c for c in changes if c.path == path]
    return found


def set_path(deal: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``deal`` with ``path`` (``lines[0].unit_price``) set to ``value`` (REMOVED removes it)."""
    changed = copy.deepcopy(deal)
    node: Any = changed
    keys: list[Any] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    for key in keys[:-1]:
        node = node[key]
    if value is REMOVED:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return changed


def approvals(application: dealdesk_app.App, deal: dict[str, Any]) -> list[str]:
    return application.decide(deal).record["approvals"]


# -- single changes, checked at the boundary --------------------------------------------------


def test_a_line_price_through_max_line_discount_lands_exactly_on_the_earlier_row(house) -> None:
    acme = load("acme-risk")
    result = ask(house, acme)
    change = change_to(answer_for(result, "sales_manager"), "lines[0].unit_price")
    # PM-5 row 2 (<= 0.10) takes the hit first: 1 - p / 175000 <= 0.10 from p = 157500.00
    assert change.after == Decimal("157500.00")
    assert change.shown == ("150000.00", "157500.00")
    assert change.crosses == "PM-5 row 2: max_line_discount <= 0.1"
    assert "sales_manager" not in approvals(house, set_path(acme, change.path, change.after))
    one_cent_less = set_path(acme, change.path, Decimal("157499.99"))
    assert "sales_manager" in approvals(house, one_cent_less)
    assert change.outcome.approvals == ["deal_desk", "services_finance"]
    assert [o.label for o in change.outcome.removed] == ["sales_manager"]
    # a dearer product needs a larger service contract (OS-4): deal_desk for one more reason
    assert [o.label for o in change.outcome.added] == ["deal_desk (also from OS-4-support)"]


def test_a_labor_cost_through_labor_margin_stops_at_the_floor(house) -> None:
    acme = load("acme-risk")
    changes = answer_for(ask(house, acme), "services_finance")
    cost = change_to(changes, "lines[2].unit_cost")
    # labor_margin < 0.30 (PM-9): 1 - c / 89600 >= 0.30 from c = 62720.00, exactly on the floor
    assert cost.after == Decimal("62720.00")
    assert "services_finance" not in approvals(house, set_path(acme, cost.path, cost.after))
    assert "services_finance" in approvals(house, set_path(acme, cost.path, Decimal("62720.01")))
    price = change_to(changes, "lines[2].unit_price")
    assert price.after == Decimal("96000.00")  # 1 - 67200 / 96000 = 0.30 exactly
    assert "services_finance" in approvals(house, set_path(acme, price.path, Decimal("95999.99")))
    # the smallest first: 6.67% down on the cost before 7.14% up on the price
    assert changes.index(cost) < changes.index(price)


def test_a_margin_below_the_floor_is_lifted_through_cost_and_price(house) -> None:
    deal = load("acme-risk")
    deal["lines"][0]["unit_cost"] = 150000  # margin ~0.32 under the 0.35 floor: vp_finance
    assert "vp_finance" in approvals(house, deal)
    changes = answer_for(ask(house, deal), "vp_finance")
    for path in ("lines[0].unit_cost", "lines[3].unit_price"):
        change = change_to(changes, path)
        assert "vp_finance" not in approvals(house, set_path(deal, path, change.after))
        step = Decimal("0.01") if path.endswith("unit_cost") else Decimal("-0.01")
        assert "vp_finance" in approvals(house, set_path(deal, path, change.after + step))


def test_money_at_risk_is_cut_to_exactly_twenty_percent(house) -> None:
    kpi = load("kpi-at-risk-cfo")
    changes = answer_for(ask(house, kpi), "cfo")
    change = change_to(changes, "offer.kpi_at_risk")
    contract = house.decide(kpi).data["totals"]["contract"]
    assert change.after == contract * Decimal("0.20")  # > 0.20 is the cfo's, = 0.20 is not
    assert change.subject == (
        "offer.kpi_at_risk / totals.contract",
        Decimal(120000) / contract,
        Decimal("0.2"),
    )
    over = set_path(kpi, "offer.kpi_at_risk", change.after + Decimal("0.01"))
    assert "cfo" in approvals(house, over)
    # a choice is an answer too: another pricing model
    assert {"fixed", "consumption"} <= {c.after for c in changes if c.path == "offer.pricing"}


def test_a_rejection_is_lifted_by_the_choices_its_rule_tests(house) -> None:
    deal = load("risk-break-fix-rejected")
    changes = answer_for(ask(house, deal), "rejection by OS-1")
    by_path = {(c.path, c.after): c for c in changes}
    assert by_path[("support.model", "proactive")].outcome.status == "needs_approval"
    assert by_path[("offer.type", "standard")].outcome.status == "approved"
    assert ("support.model", "none") not in by_path  # none is rejected by OS-1 too
    for (path, value), change in by_path.items():
        record = house.decide(set_path(deal, path, value)).record
        assert record["status"] == change.outcome.status
        assert not any(r["rule"] == "OS-1" for r in record["reasons"])


def test_changes_that_bring_nothing_come_first_and_none_brings_a_more_senior_approver(
    house,
) -> None:
    changes = answer_for(ask(house, load("acme-risk")), "sales_manager")
    brought = [sum(o.weight for o in c.outcome.added) for c in changes]
    assert brought == sorted(brought) and brought[0] == 0
    weight = {role: i + 1 for i, role in enumerate(house.policy_set.approvers)}
    assert all(b < weight["sales_manager"] for b in brought)
    # raising the discount past 0.20 would swap sales_manager for sales_director: not listed
    assert all(c.after > c.before for c in changes if c.path == "lines[0].unit_price")


def test_a_change_that_needs_a_senior_approver_already_there_for_more_is_no_answer(
    house,
) -> None:
    deal = load("acme-risk")
    deal["customer"]["segment"] = "deer"  # PM-8: a risk offer to a deer needs vp_sales
    deal["lines"][0]["unit_price"] = 122500  # discount 0.30: sales_director (PM-5 row 4)
    changes = answer_for(ask(house, deal), "sales_director")
    # deepening the discount into vp_sales' band (row 5) would drop sales_director only
    # because vp_sales, needed anyway, covers it: never offered
    assert changes and all(
        not (c.path == "lines[0].unit_price" and c.after < c.before) for c in changes
    )
    assert not any(o.name == "vp_sales" for c in changes for o in c.outcome.added)


def test_no_single_change_is_said_when_two_rules_hold_the_approver(house) -> None:
    result = ask(house, load("acme-risk"))
    assert answer_for(result, "deal_desk") == []  # PM-13 and, as a standard offer, BM-6


# -- goals ------------------------------------------------------------------------------------


def test_a_goal_no_single_change_reaches_gets_a_verified_sequence(house) -> None:
    acme = load("acme-risk")
    [answer] = ask(house, acme, "approved").answers
    assert answer.changes == [] and answer.met
    deal = acme
    for change in answer.sequence:
        deal = set_path(deal, change.path, change.after)
    assert house.decide(deal).record["status"] == "approved"
    assert answer.sequence[-1].outcome.status == "approved"
    assert {c.path for c in answer.sequence} >= {"offer.type", "billing.requested_split"}


def test_a_goal_reached_by_one_change_lists_those_changes(house) -> None:
    [answer] = ask(house, load("financial-improvement"), "no cfo", "no legal").answers
    assert answer.met and answer.sequence == []
    assert {(c.path, c.after) for c in answer.changes} >= {("offer.pricing", "fixed")}
    for change in answer.changes:
        assert not {"cfo", "legal"} & set(change.outcome.approvals)


def test_a_goal_already_met_needs_nothing(house) -> None:
    [answer] = ask(house, load("acme-risk"), "no cfo").answers
    assert answer.met and answer.changes == [] and answer.sequence == []


@pytest.mark.parametrize(
    ("text", "status", "roles"),
    [
        ("approved", "approved", set()),
        ("not rejected", "not rejected", set()),
        ("not-rejected", "not rejected", set()),
        ("no cfo", None, {"cfo"}),
        ("no-vp_finance", None, {"vp_finance"}),
        ("without:legal", None, {"legal"}),
    ],
)
def test_goals_are_read_in_several_spellings(text: str, status: str | None, roles: set) -> None:
    goal = parse_goal(text, ["cfo", "vp_finance", "legal"])
    assert (goal.status, set(goal.roles)) == (status, roles)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no cfoo", "no approver role 'cfoo' (did you mean 'no cfo'?)"),
        ("cheap", "expected 'approved', 'not rejected' or 'no ROLE'"),
    ],
)
def test_a_goal_that_cannot_be_read_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("?)", r"\?\)")):
        parse_goal(text, ["cfo"])


# -- the pieces ---------------------------------------------------------------------------------


def test_knobs_are_the_deal_inputs_a_change_may_set(house) -> None:
    found = {k.path: k for k in knobs(load("acme-risk"), {})}
    assert found["lines[0].unit_price"].step == Decimal("0.01")  # a cent of USD
    assert found["lines[0].quantity"].step == Decimal(1)
    assert found["partner.discount"].step == Decimal("0.0001")
    assert found["offer.type"].choices == ("advanced_technology", "standard")
    assert found["partner.tier"].choices == ("gold", "silver", "registered")
    assert found["partner"].choices == (REMOVED,)
    # never the deal's identity, its currency, who the customer is, or what a line is
    assert not {"id", "currency", "lines[0].category", "lines[0].sku"} & set(found)
    assert not any(path.startswith("customer.") for path in found)
    # a line keeps a quantity and a price: it is changed, never removed
    assert found["lines[0].quantity"].family == "lines[].quantity"
    jpy = {k.path: k for k in knobs({**load("acme-risk"), "currency": "JPY"}, {}, "JPY")}
    assert jpy["lines[0].unit_price"].step == Decimal(1)


def test_a_first_table_row_is_held_by_the_earlier_rows_that_do_not_match(house) -> None:
    decision = house.decide(load("acme-risk"))
    run = decision.runs["partner-margin"]
    [row] = [f.rule for f in run.firings if f.rule.id == "PM-5"]
    view = {**decision.data, "outputs": run.outputs()}
    found = [(t.rule.row, t.need, t.sense) for t in thresholds(run.policy, row, view)]
    # its own cell must stop being true (up); row 2's (<= 0.10) must stop being false (down);
    # row 1 (contract >= 5000000) must stop being false (up)
    assert (2, "not true", 1) in found
    assert (1, "not false", -1) in found
    assert (0, "not false", 1) in found


def test_obstacles_are_rejections_then_approvers_in_rank_order(house) -> None:
    found = obstacles(house.decide(load("risk-break-fix-rejected")))
    assert [o.label for o in found] == ["rejection by OS-1", "deal_desk"]


# -- plugins and engines ----------------------------------------------------------------------


def test_an_input_a_plugin_declares_is_changed_too(tmp_path: Path) -> None:
    write_rulesets(
        tmp_path,
        credit="""
        ruleset: credit
        policy: test
        version: "1"
        rules:
          - id: CR-1
            when: offer.term_months < 36
            then: {require: [cfo]}
        """,
    )
    pipeline = evaluator(tmp_path, facts={"offer.term_months": "number"})
    deal = copy.deepcopy(BASE_DEAL)
    deal["offer"]["term_months"] = 24
    result = what_if(deal, pipeline.decide_one, pipeline.fact_types)
    [change] = answer_for(result, "cfo")
    assert (change.path, change.after) == ("offer.term_months", 36)


@pytest.mark.parametrize("engine", available_engines())
def test_every_engine_gives_the_same_answers(engine: str) -> None:
    application = dealdesk_app.build(autoload=False, engine=engine)
    reference = dealdesk_app.build(autoload=False, engine="native")
    for name in ("acme-risk", "kpi-at-risk-cfo", "risk-break-fix-rejected"):
        deal = load(name)
        assert as_json(ask(application, deal)) == as_json(ask(reference, deal))


# -- the command ------------------------------------------------------------------------------


def test_the_command_says_each_change_what_it_crosses_and_what_it_gives(cli_runner) -> None:
    result = cli_runner.run("whatif", str(DEALS / "acme-risk.yaml"))
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith(
        "D-1001: needs_approval (approvals: deal_desk, sales_manager, services_finance)\n"
    )
    assert (
        "sales_manager (from PM-5 row 3)\n"
        "  - lines[0].list_price (EDGE-APL): 175000.00 → 166666.66 (-4.76%)\n"
        "      crosses PM-5 row 2: max_line_discount <= 0.1; max_line_discount ~0.142857 → ~0.1\n"
        "      gives needs_approval (deal_desk, services_finance)\n"
        "  - lines[0].unit_price (EDGE-APL): 150000.00 → 157500.00 (+5.00%)\n"
    ) in text
    assert "deal_desk (from PM-13)\n  no single change removes it" in text


def test_the_command_as_json(cli_runner) -> None:
    result = cli_runner.run(
        "whatif", str(DEALS / "kpi-at-risk-cfo.yaml"), "--goal", "no cfo", "-f", "json"
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    [answer] = data["answers"]
    first = answer["changes"][0]
    assert (answer["goal"], answer["met"]) == ("no cfo", True)
    assert first["path"] == "offer.kpi_at_risk" and first["from"] == "120000.00"
    assert first["decision"] == {"status": "approved", "approvals": []}
    assert first["removes"] == ["cfo"] and first["adds"] == []


def test_an_unreachable_goal_and_an_invalid_deal_exit_1(cli_runner, tmp_path: Path) -> None:
    write_rulesets(
        tmp_path,
        always="""
        ruleset: always
        policy: partner-margin
        version: "1"
        rules:
          - id: AL-1
            when: totals.contract > 0
            then: {require: [cfo]}
        """,
    )
    deal = DEALS / "standard-approved.yaml"
    result = cli_runner.run("whatif", str(deal), "-r", str(tmp_path), "--goal", "no cfo")
    assert result.exit_code == 1, result.stdout
    assert "no change found that reaches it" in result.stdout
    invalid = cli_runner.run("whatif", str(DEALS / "invalid-missing-cost.yaml"))
    assert invalid.exit_code == 1
    assert "lines[0].unit_cost: missing" in invalid.stdout
    bad_goal = cli_runner.run("whatif", str(deal), "--goal", "no cfoo")
    assert bad_goal.exit_code == 2
    assert "did you mean 'no cfo'?" in bad_goal.stderr


def test_when_every_change_brings_an_approver_the_least_senior_comes_first(house) -> None:
    deal = load("acme-risk")
    deal["lines"][0]["unit_price"] = 113750  # discount 0.35: vp_sales (PM-5 row 5)
    deal["lines"][1]["list_price"] = 125000  # 100000 of 125000: 0.20 on another line
    changes = answer_for(ask(house, deal), "vp_sales")
    prices = [c for c in changes if c.path == "lines[0].unit_price"]
    # no price of line 0 alone clears PM-5 (line 1 stays at 0.20): up to row 3 brings
    # sales_manager, to row 4 (a smaller change) the more senior sales_director; down past 0.40
    # would trade vp_sales for the cfo, which is no answer
    assert [(c.after, [o.name for o in c.outcome.added]) for c in prices] == [
        (Decimal("140000.00"), ["sales_manager"]),
        (Decimal("122500.00"), ["sales_director"]),
    ]
    assert all(c.outcome.added for c in changes)
    # asked only to avoid vp_sales, the cfo's price is an answer too
    [answer] = ask(house, deal, "no vp_sales").answers
    assert [c.after for c in answer.changes if c.path == "lines[0].unit_price"] == [
        *(c.after for c in prices),
        Decimal("104999.99"),
    ]


def test_two_lines_sharing_the_discount_are_repriced_together(house) -> None:
    deal = load("acme-risk")
    deal["lines"][0]["unit_price"] = 113750  # discount 0.35: vp_sales
    deal["lines"][1]["list_price"] = 125000  # 0.20 on the software line
    [answer] = [a for a in ask(house, deal).answers if a.title == "vp_sales"]
    together = answer.sequence
    assert len(together) == 2 and {c.path.split(".")[0] for c in together} == {
        "lines[0]",
        "lines[1]",
    }
    changed = deal
    for change in together:
        changed = set_path(changed, change.path, change.after)
    before = approvals(house, deal)
    after = approvals(house, changed)
    assert "vp_sales" not in after and set(after) <= set(before)
    # each line moved no further than it must: a cent (or a unit) less brings an approver back
    for change in together:
        step = Decimal("0.01") if change.after > change.before else Decimal("-0.01")
        short = set_path(changed, change.path, change.after - step)
        assert set(approvals(house, short)) - set(after)


# -- docs/whatif.md ---------------------------------------------------------------------------

DOC = (ROOT / "docs" / "whatif.md").read_text(encoding="utf-8")


def doc_blocks(language: str) -> list[str]:
    return [b.text for b in blocks(DOC) if b.language == language]


@pytest.mark.parametrize("block", doc_blocks("console"), ids=lambda b: b.split("\n")[0][2:60])
def test_the_docs_console_sessions_are_what_the_command_prints(block: str, cli_runner) -> None:
    command, _, shown = block.partition("\n")
    args = shlex.split(command.removeprefix("$ "))
    assert args[0] == "dealdesk"
    result = cli_runner.run(*[str(ROOT / a) if a.startswith("examples/") else a for a in args[1:]])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == shown


def test_the_docs_json_is_what_the_command_prints(cli_runner) -> None:
    [block] = doc_blocks("json")
    shown = json.loads(block)
    command = re.search(r"`(dealdesk whatif [^`]*-f json)`", DOC)
    assert command is not None
    args = shlex.split(command.group(1))[1:]
    result = cli_runner.run(*[str(ROOT / a) if a.startswith("examples/") else a for a in args])
    actual = json.loads(result.stdout)
    [answer], [shown_answer] = actual["answers"], shown["answers"]
    # the doc shows the first change of the list
    assert answer["changes"][: len(shown_answer["changes"])] == shown_answer["changes"]
    assert {**actual, "answers": []} == {**shown, "answers": []}
    assert {**answer, "changes": []} == {**shown_answer, "changes": []}
