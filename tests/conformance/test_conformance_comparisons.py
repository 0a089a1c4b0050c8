"""Every comparison at its exact boundary, not left to chance: for each numeric path, each value
it takes in a set of deals becomes a literal, and every operator is tested with it, as written
and negated (SPEC §3: a comparison with a missing value is unknown, and so is its negation).

One ruleset per path; of a comparison and its negation at most one is true, so no more than 60
distinct conditions match one deal (durable_rules fails from 65): 10 values for a path, and 5
for a field of a list's elements, whose negated quantifier may match by two alternatives (an
element without the field, or one failing the comparison).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conformance_strategies import LISTS, NUMERIC
from conformance_support import (
    EXAMPLE_DEALS,
    REFERENCE,
    assert_identical,
    generated_app,
    reference_of,
)

from dealdesk.rules.meaning import lookup

OPS = ("==", "!=", "<", "<=", ">", ">=")
MAX_VALUES = 10
MAX_ITEM_VALUES = 5


def line(category: str, price: Any, cost: Any = None, **extra: Any) -> dict[str, Any]:
    result = {"sku": f"{category[:3].upper()}-1", "category": category, "quantity": 1}
    result["unit_price"] = price
    if cost is not None:
        result["unit_cost"] = cost
    return {**result, **extra}


#: Deals whose derived facts sit on round values, with every optional part present or missing.
CRAFTED = [
    {
        "id": "B-1",
        "lines": [line("hardware", 100, 70), line("support", 25, 25, quantity=0)],
        "extras": [],
    },
    {
        "id": "B-2",
        "lines": [line("hardware", 80, 40, list_price=100), line("labor", 20, 14)],
        "partner": {"tier": "gold", "discount": "0.15"},
        "billing": {"payment_terms_days": 60, "requested_split": [50, 50]},
        "extras": [{"k": "p", "v": 0}, {"k": "q"}],
    },
    {
        "id": "B-3",
        "lines": [line("subscription", 100), line("support", 100, 50)],
        "offer": {"type": "new_market", "pricing": "kpi", "kpi_at_risk": 20},
        "extras": [{"k": "p", "v": 1}],
    },
    {
        "id": "B-4",
        "lines": [line("labor", 200, 200, quantity=2, list_price=200, hours=8)],
        "billing": {"requested_split": [100, 0]},
    },
]


def deals() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EXAMPLE_DEALS.glob("*.yaml")):
        if "invalid" not in path.name:
            found.append(yaml.safe_load(path.read_text(encoding="utf-8")))
    for deal in CRAFTED:
        found.append(
            {"customer": {"segment": "deer"}, "offer": {"type": "standard"}, **copy.deepcopy(deal)}
        )
    return found


DEALS = deals()
ITEM_PATHS = [
    f"{quantifier} {items.list}[].{field}"
    for items in LISTS
    for field in items.numeric
    for quantifier in ("any", "all")
]


def short(value: Any) -> str | None:
    """``value`` as a literal when it has few enough digits for a double to hold exactly."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = Decimal(str(value)).normalize()
    text = format(number, "f")
    return text if len(number.as_tuple().digits) <= 15 else None


def literals(prepared: list[dict[str, Any]], path: str) -> list[str]:
    """The values ``path`` takes in the deals (each line's, for a list field), at most
    MAX_VALUES (MAX_ITEM_VALUES for a list field), smallest first."""
    values: set[str] = set()
    for data in prepared:
        if "[]." in path:
            head, field = path.split("[].")
            items = lookup(data, head) or []
            candidates = [lookup(item, field) for item in items if isinstance(item, dict)]
        else:
            candidates = [lookup(data, path)]
        values.update(text for text in map(short, candidates) if text is not None)
    return sorted(values, key=Decimal)[: MAX_ITEM_VALUES if "[]." in path else MAX_VALUES]


def condition_form(path: str) -> str:
    """``{op}``/``{value}`` template of a comparison of ``path``; ``lines[].margin`` is compared
    inside ``any(...)`` (the first word of ``path`` may name ``all`` instead)."""
    quantifier, _, path = path.rpartition(" ")
    if "[]." not in path:
        return f"{path} {{op}} {{value}}"
    head, field = path.split("[].")
    var = next(items.var for items in LISTS if items.list == head)
    return f"{quantifier or 'any'}({var}.{field} {{op}} {{value}} for {var} in {head})"


def ruleset(path: str, values: list[str]) -> dict[str, Any]:
    form = condition_form(path)
    rules = []
    for value in values:
        for op in OPS:
            condition = form.format(op=op, value=value)
            for when in (condition, f"not ({condition})"):
                rules.append({"id": f"C{len(rules)}", "when": when, "then": {"flag": "x"}})
    return {"ruleset": "boundaries", "policy": "partner-margin", "version": "1", "rules": rules}


@pytest.fixture(scope="module")
def prepared() -> list[dict[str, Any]]:
    """DEALS with their derived facts (the conformance plugin's ``extras_count`` too)."""
    application = generated_app(REFERENCE, [])
    found = [application.pipeline.prepare(copy.deepcopy(d)).data for d in DEALS]
    assert all(p is not None for p in found)
    return found  # type: ignore[return-value]


@pytest.mark.parametrize("path", NUMERIC + ITEM_PATHS)
def test_every_operator_at_every_value(
    engine: str, prepared: list[dict[str, Any]], tmp_path: Path, path: str
) -> None:
    """``PATH OP VALUE`` and ``not (PATH OP VALUE)`` for every value PATH takes in DEALS."""
    values = literals(prepared, path.rpartition(" ")[2])
    assert values, f"no deal gives {path} a value"
    (tmp_path / "boundaries.yaml").write_text(yaml.safe_dump(ruleset(path, values)))
    application = generated_app(engine, [tmp_path])
    reference = reference_of(application).pipeline
    got = [application.pipeline.evaluate(copy.deepcopy(d)) for d in DEALS]
    want = [reference.evaluate(copy.deepcopy(d)) for d in DEALS]
    assert_identical(got, want, engine=engine, deals=DEALS, context=f"{path} at {values}")
