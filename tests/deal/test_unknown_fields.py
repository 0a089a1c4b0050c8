"""Unknown keys inside a deal's objects and lines are flags naming the path, never a decision."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from dealdesk.app import App, build
from dealdesk.deal.unknown import UnknownField, unknown_fields

ROOT = Path(__file__).resolve().parents[2]
DEAL = yaml.safe_load((ROOT / "examples" / "deals" / "acme-risk.yaml").read_text())


@pytest.fixture(scope="module")
def app() -> App:
    return build(autoload=False)


def test_a_typo_inside_an_object_is_a_flag_and_the_decision_stays(app: App) -> None:
    typo = copy.deepcopy(DEAL)
    typo["partner"]["teir"] = typo["partner"].pop("tier")
    right, wrong = app.pipeline.evaluate(DEAL), app.pipeline.evaluate(typo)
    assert wrong["flags"][-1] == {
        "policy": "",
        "rule": "",
        "path": "partner.teir",
        "message": "unknown field; did you mean partner.tier?",
    }
    assert wrong["flags"][:-1] == right["flags"]
    # the flag changes nothing decided; the missing tier may (PM-1 reads it), as it would anyway
    without = copy.deepcopy(DEAL)
    del without["partner"]["tier"]
    expected = app.pipeline.evaluate(without)
    for key in ("status", "approvals", "policies", "reasons"):
        assert wrong[key] == expected[key]


def test_which_keys_are_flagged() -> None:
    deal = {
        "id": "D-1",
        "owner": "kim",  # the deal's own: kept quietly (SPEC §2)
        "custmer": {},  # a near miss of a known top-level field
        "customer": {"name": "A", "regoin": "emea", "account_manager": "lee"},
        "lines": [{"sku": "A", "unit_cots": 5}, {"sku": "B", "warranty": "2y"}],
    }
    assert unknown_fields(deal) == [
        UnknownField("custmer", "customer"),
        UnknownField("customer.regoin", "customer.region"),
        UnknownField("customer.account_manager", None),
        UnknownField("lines[0].unit_cots", "lines[0].unit_cost"),
        UnknownField("lines[1].warranty", None),
    ]
    # what a plugin declares is known
    assert unknown_fields(deal, ("lines[].warranty", "customer.account_manager")) == [
        UnknownField("custmer", "customer"),
        UnknownField("customer.regoin", "customer.region"),
        UnknownField("lines[0].unit_cots", "lines[0].unit_cost"),
    ]
    assert unknown_fields(DEAL) == []
    assert unknown_fields(["not", "a", "deal"]) == []


def test_an_invalid_deal_gets_the_flag_that_explains_it(app: App) -> None:
    typo = copy.deepcopy(DEAL)
    typo["lines"][0]["unit_cots"] = typo["lines"][0].pop("unit_cost")
    record = app.pipeline.evaluate(typo)
    assert record["status"] == "invalid"
    assert record["errors"][0]["path"] == "lines[0].unit_cost"
    assert record["flags"] == [
        {
            "policy": "",
            "rule": "",
            "path": "lines[0].unit_cots",
            "message": "unknown field; did you mean lines[0].unit_cost?",
        }
    ]
