"""Property: whatever a deal holds, evaluation gives exactly one record and never raises
(SPEC §2: bad input never stops a batch) — on the real house policy."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk import app

ACME = yaml.safe_load(
    (Path(__file__).parents[1] / "examples" / "deals" / "acme-risk.yaml").read_text()
)
EVALUATOR = app.build(autoload=False).pipeline

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["1e999999", "NaN", "-0", "0.1", "{{ 7*7 }}", "2026-13-01", "us-west"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# (dotted path into the deal, replacement) pairs
paths = st.sampled_from(
    [
        "id", "currency", "customer", "customer.segment", "customer.region", "customer.government",
        "offer", "offer.type", "offer.pricing", "offer.kpi_at_risk", "partner", "partner.tier",
        "partner.discount", "support.model", "billing.requested_split", "billing.payment_terms_days",
        "lines", "lines.0", "lines.0.unit_price", "lines.0.unit_cost", "lines.0.quantity",
        "lines.1.category", "dates.close", "totals", "margin", "outputs",
    ]
)  # fmt: skip


def mutate(deal: Any, path: str, value: Any) -> Any:
    """A copy of ``deal`` with ``value`` at ``path``, where the path still fits the deal."""
    deal = copy.deepcopy(deal)
    *parents, last = path.split(".")
    target: Any = deal
    for part in parents:
        target = _child(target, part)
    if isinstance(target, dict) and not last.isdigit():
        target[last] = value
    elif isinstance(target, list) and last.isdigit() and int(last) < len(target):
        target[int(last)] = value
    return deal


def _child(target: Any, part: str) -> Any:
    if isinstance(target, dict) and not part.isdigit():
        return target.setdefault(part, {})
    if isinstance(target, list) and part.isdigit() and int(part) < len(target):
        return target[int(part)]
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(paths, json_values), min_size=1, max_size=3))
def test_any_deal_gives_one_json_record(changes: list[tuple[str, Any]]) -> None:
    deal = ACME
    for path, value in changes:
        deal = mutate(deal, path, value)
    record = EVALUATOR.evaluate(deal)
    assert record["status"] in ("approved", "needs_approval", "rejected", "invalid")
    assert not any("internal error" in e["message"] for e in record["errors"]), record["errors"]
    json.dumps(record, allow_nan=False)  # JSON-ready: no Decimal, no NaN


@given(json_values)
def test_any_json_value_as_a_deal_gives_one_record(value: Any) -> None:
    record = EVALUATOR.evaluate(value)
    assert record["status"] == "invalid" or isinstance(value, dict)
    json.dumps(record, allow_nan=False)
