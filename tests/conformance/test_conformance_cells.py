"""List cells of decision tables (SPEC §3, DMN S-FEEL): a list of unary tests — comparisons,
ranges, literals — matches when any of them does, and ``not(...)`` of such a list when none
does. Every engine runs the condition tree the cells compile to: on deals whose inputs sit on
the cells' own bounds, each engine gives the REFERENCE's records byte for byte, and on a deal
worked out by hand, exactly the rows that should match do.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from conformance_support import assert_identical, generated_app, reference_of

#: A deal whose inputs are round: totals.contract 100, margin 0.3, max_line_discount 0.2.
ROUND_DEAL: dict[str, Any] = {
    "id": "L-1",
    "customer": {"segment": "deer", "region": "emea"},
    "offer": {"type": "standard"},
    "partner": {"kind": "reseller", "tier": "gold", "discount": "0.1"},
    "lines": [
        {
            "sku": "HW-1",
            "category": "hardware",
            "quantity": 1,
            "unit_price": 100,
            "list_price": 125,
            "unit_cost": 70,
        }
    ],
}

#: (cells on totals.contract, margin, partner.tier; whether each matches ROUND_DEAL).
ROWS: list[tuple[list[Any], bool]] = [
    (["< 100, > 100", "-", "-"], False),
    (["[50..100], 200", "-", "-"], True),
    (["]100..200[, 5", "-", "-"], False),  # 100 is outside ]100..200[
    (["(99..100], > 1000", "-", "-"], True),
    (["-", "< 0.3, [0.4..0.5]", "-"], False),
    (["-", "not (< 0.3, > 0.3)", "-"], True),
    (["-", "not(< 0.3), 0.1", "-"], True),
    (["100, > 1000", "0.3, 0.5", "-"], True),
    (["not(100, 200)", "-", "-"], False),
    (["-", "-", "select, silver"], False),
    (["-", "-", "silver, gold"], True),
    (["-", "-", 'not("select", silver)'], True),
    (["<= 99.99, >= 100.01", "-", "gold"], False),
]


def table_ruleset(rows: list[tuple[list[Any], bool]]) -> dict[str, Any]:
    """A collect table whose row N adds N to the output ``hits``."""
    return {
        "ruleset": "cells",
        "policy": "partner-margin",
        "version": "1",
        "outputs": {"hits": {"combine": "list"}},
        "tables": [
            {
                "id": "L",
                "hit": "collect",
                "inputs": ["totals.contract", "margin", "partner.tier"],
                "rows": [
                    {"when": cells, "then": {"set": {"hits": number}}}
                    for number, (cells, _) in enumerate(rows, 1)
                ],
            }
        ],
    }


def test_list_cells_match_the_rows_worked_out_by_hand(engine: str, tmp_path: Path) -> None:
    (tmp_path / "cells.yaml").write_text(yaml.safe_dump(table_ruleset(ROWS)), encoding="utf-8")
    application = generated_app(engine, [tmp_path])
    record = application.pipeline.evaluate(copy.deepcopy(ROUND_DEAL))
    assert record["status"] != "invalid", record["errors"]
    hits = record["policies"]["partner-margin"]["outputs"]["hits"]
    assert hits == [number for number, (_, matches) in enumerate(ROWS, 1) if matches]


def bound_deals() -> list[dict[str, Any]]:
    """ROUND_DEAL with the price on, just below and just above each bound of the cells below,
    and with another partner tier, and with none."""
    deals = []
    for price in ("4.99", "5", "5.01", "49.99", "50", "50.01", "99.99", "100", "100.01", "200"):
        deal = copy.deepcopy(ROUND_DEAL)
        deal["id"] = f"L-{price}"
        deal["lines"][0]["unit_price"] = price
        deal["lines"][0]["list_price"] = "200"
        deals.append(deal)
    silver = copy.deepcopy(ROUND_DEAL)
    silver["id"], silver["partner"]["tier"] = "L-silver", "silver"
    direct = copy.deepcopy(ROUND_DEAL)
    direct["id"] = "L-direct"
    del direct["partner"]  # partner.tier is missing: matched only by '-'
    return [*deals, silver, direct]


BOUND_ROWS: list[list[Any]] = [
    ["< 5, > 100", "-", "-"],
    ["[5..50), 100, ]100..200]", "-", "-"],
    ["(5..50], [99.99..100.01]", "-", "-"],
    ["not(< 50, > 100)", "-", "-"],
    ["not (5, [50..100))", "-", "-"],
    ["-", "< 0.3, > 0.9", "-"],
    ["-", "[0.3..0.5), not(< 0.9)", "-"],
    ["< 100, 200", "-", "gold, select"],
    ["-", "-", "not(gold, select)"],
    [5, "-", "-"],
]


@pytest.mark.parametrize("row", range(len(BOUND_ROWS)))
def test_list_cells_at_their_bounds_on_every_engine(engine: str, tmp_path: Path, row: int) -> None:
    """Each row alone (so that one failing row is named), on deals at its cells' bounds."""
    rows = [(BOUND_ROWS[row], True)]
    (tmp_path / "cells.yaml").write_text(yaml.safe_dump(table_ruleset(rows)), encoding="utf-8")
    application = generated_app(engine, [tmp_path])
    reference = reference_of(application).pipeline
    deals = bound_deals()
    got = [application.pipeline.evaluate(copy.deepcopy(d)) for d in deals]
    want = [reference.evaluate(copy.deepcopy(d)) for d in deals]
    assert all(r["status"] != "invalid" for r in want), [r["errors"] for r in want]
    # the row is no dead letter: some deal matches it and some does not (each cell is tested)
    outputs = [r["policies"]["partner-margin"]["outputs"]["hits"] for r in want]
    assert [1] in outputs and None in outputs, outputs
    assert_identical(got, want, engine=engine, deals=deals, context=str(BOUND_ROWS[row]))
