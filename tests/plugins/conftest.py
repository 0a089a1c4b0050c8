"""Fixtures for the house-policy tests: one evaluator per session, and a deal factory.

The evaluator is the real thing — built-in plugins, the house rulesets shipped in
``dealdesk.rulesets`` — built once per engine, and every house test runs on every engine that
imports here (SPEC §9: the records must be identical).

The factory's base deal is a plain one that every policy approves: a standard, fixed-price,
direct deal to a large us-central account, 600,000 of hardware at 50% margin and 100,000 of
support at 50% margin, no list prices, 45-day terms, no requested split. Tests change only what
they are about, with amounts chosen so derived facts land exactly on SPEC §5's thresholds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from dealdesk.app import build
from dealdesk.engines import available_engines
from dealdesk.pipeline import Pipeline, requested_clauses

Number = int | str | Decimal

BILLING = "billing-milestone"
SUPPORT = "onsite-support"
MARGIN = "partner-margin"


def money(value: Number) -> str:
    """A money value as the decimal string a deal file would carry (exact, never a float)."""
    return str(Decimal(str(value)))


def line(
    category: str,
    amount: Number,
    *,
    cost: Number | None = None,
    list_price: Number | None = None,
    quantity: Number = 1,
    sku: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One deal line; ``amount`` and ``cost`` are per unit (``unit_price``, ``unit_cost``).

    ``cost`` defaults to half the price, except on subscription lines, which carry no cost;
    :func:`without_cost` drops it from any line.
    """
    price = Decimal(str(amount))
    result: dict[str, Any] = {
        "sku": sku or f"{category.upper()}-1",
        "category": category,
        "quantity": money(quantity),
        "unit_price": money(price),
    }
    if list_price is not None:
        result["list_price"] = money(list_price)
    if category != "subscription" or cost is not None:
        result["unit_cost"] = money(price / 2 if cost is None else cost)
    result.update(extra)
    return result


def without_cost(item: Mapping[str, Any]) -> dict[str, Any]:
    """The same line without ``unit_cost``."""
    return {k: v for k, v in item.items() if k != "unit_cost"}


BASE_DEAL: dict[str, Any] = {
    "id": "T-1",
    "currency": "USD",
    "customer": {
        "name": "Plain Industries",
        "segment": "elephant",
        "region": "us-central",
        "hq_country": "US",
        "government": False,
        "platinum_club": False,
        "presales_consulting": False,
    },
    "offer": {"type": "standard", "pricing": "fixed"},
    "support": {"model": "break_fix"},
    "billing": {"payment_terms_days": 45},
    "lines": [
        line("hardware", 600000, cost=300000, sku="HW-1"),
        line("support", 100000, cost=50000, sku="SUP-1"),
    ],
    "dates": {"close": "2026-12-15", "start": "2027-01-15"},
}


def merge(base: Any, patch: Any) -> Any:
    """``patch`` merged into ``base``: mappings merge, anything else (lists too) replaces.

    A ``None`` in the patch removes the key, so ``partner=None`` makes a direct deal.
    """
    if isinstance(base, Mapping) and isinstance(patch, Mapping):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = merge(base.get(key), value)
        return merged
    return copy.deepcopy(patch)


class DealFactory:
    """Builds deals from :data:`BASE_DEAL`; every call returns a fresh, independent dict."""

    line = staticmethod(line)
    without_cost = staticmethod(without_cost)

    def __call__(self, **patch: Any) -> dict[str, Any]:
        """The base deal with ``patch`` merged in (``lines=[...]`` replaces the lines)."""
        return merge(copy.deepcopy(BASE_DEAL), patch)

    def risk(self, offer_type: str = "new_market", **patch: Any) -> dict[str, Any]:
        """A risk offer sold direct with proactive support (what OS-1 asks of it)."""
        return merge(self(offer={"type": offer_type}, support={"model": "proactive"}), patch)

    def product(
        self, product: Number, *, support: Number | None = None, **patch: Any
    ) -> dict[str, Any]:
        """One hardware line worth ``product`` (50% cost) and, optionally, a support line."""
        lines = [line("hardware", product, sku="HW-1")]
        if support is not None:
            lines.append(line("support", support, sku="SUP-1"))
        return merge(self(lines=lines), patch)

    def mix(
        self,
        *,
        product: Number,
        labor: Number = 0,
        support: Number = 0,
        margin: Number = "0.5",
        **patch: Any,
    ) -> dict[str, Any]:
        """A hardware line of ``product`` and optional labor and support lines; the deal margin
        is exactly ``margin``.

        Labor and support cost 70% of their price (a labor margin of exactly 0.30, at PM-9's
        floor but not below it); the hardware line carries the rest of the cost.
        """
        product_d, labor_d, support_d, margin_d = (
            Decimal(str(v)) for v in (product, labor, support, margin)
        )
        cost = (product_d + labor_d + support_d) * (1 - margin_d)
        services_cost = (labor_d + support_d) * Decimal("0.7")
        lines = [line("hardware", product_d, cost=cost - services_cost, sku="HW-1")]
        if labor_d:
            lines.append(
                line(
                    "labor",
                    labor_d,
                    cost=labor_d * Decimal("0.7"),
                    sku="LAB-1",
                    resource="architect",
                )
            )
        if support_d:
            lines.append(line("support", support_d, cost=support_d * Decimal("0.7"), sku="SUP-1"))
        return merge(self(lines=lines), patch)

    def discounted(self, discount: Number, **patch: Any) -> dict[str, Any]:
        """The base deal with its hardware sold ``discount`` below a list price of 1,000 a unit.

        600 units at a cost of 200 each keep every margin far above the floors, whatever the
        discount up to 0.50, so only the discount rules are in play.
        """
        fraction = Decimal(str(discount))
        hardware = line(
            "hardware", 1000 * (1 - fraction), cost=200, list_price=1000, quantity=600, sku="HW-1"
        )
        return merge(self(lines=[hardware, *BASE_DEAL["lines"][1:]]), patch)


@dataclass
class Decision:
    """A decision record with the clause ids the fired rules asked for (no rendering needed)."""

    record: dict[str, Any]
    clause_ids: dict[str, list[str]]

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def approvals(self) -> list[str]:
        return self.record["approvals"]

    def policy(self, name: str) -> dict[str, Any]:
        return self.record["policies"][name]

    def fired(self, name: str) -> list[str]:
        return self.policy(name)["fired"]

    def outputs(self, name: str) -> dict[str, Any]:
        return self.policy(name)["outputs"]

    def clauses(self, name: str) -> list[str]:
        return self.clause_ids.get(name, [])

    def reasons(self, rule: str) -> list[str]:
        return [r["message"] for r in self.record["reasons"] if r["rule"] == rule]

    def flags(self, rule: str | None = None) -> list[str]:
        return [f["message"] for f in self.record["flags"] if rule is None or f["rule"] == rule]


@pytest.fixture(scope="session", params=available_engines())
def evaluator(request: pytest.FixtureRequest) -> Pipeline:
    """The house policy on the built-in plugins only (no entry points), once per engine."""
    return build(autoload=False, engine=request.param).pipeline


@pytest.fixture(scope="session")
def evaluate(evaluator: Pipeline) -> Callable[[Mapping[str, Any]], Decision]:
    """``evaluate(deal) -> Decision`` through the real engine."""

    def run(deal: Mapping[str, Any]) -> Decision:
        decision = evaluator.decide_one(copy.deepcopy(dict(deal)))
        record, runs = decision.record, decision.runs
        clause_ids: dict[str, list[str]] = {}
        for clause in requested_clauses(runs):
            clause_ids.setdefault(clause["policy"], []).append(clause["id"])
        return Decision(record, clause_ids)

    return run


@pytest.fixture(scope="session")
def make() -> DealFactory:
    """The deal factory (see :class:`DealFactory`)."""
    return DealFactory()
