"""The derived facts of SPEC §2 (``totals``, ``margin``, ``lines[].amount`` ...), in exact decimals.

:func:`derive_facts` computes them for a validated (or hand-written) deal: sums and products are
exact (a list price of 100 sold at 70 is a discount of exactly ``0.30``); quotients have Python's
standard 28 digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, localcontext
from typing import Any

from dealdesk.money import parse_decimal

__all__ = ["RISK_OFFER_TYPES", "derive_facts"]

RISK_OFFER_TYPES = frozenset({"new_market", "advanced_technology"})
_PRODUCT = frozenset({"hardware", "software"})
_SERVICES = frozenset({"labor", "support"})

# Enough digits that sums and products are exact: validated numbers have at most 27 digits
# (MAX_MAGNITUDE, MAX_PLACES), so a product has at most 54 and a sum a few more.
_EXACT = Context(prec=80)
# Quotients round to Python's standard 28 digits, whatever context the caller has set, so a
# plugin or a test computing 1 - cost / price the usual way gets the same Decimal.
_QUOTIENT = Context(prec=28)


def _one_minus(numerator: Decimal, denominator: Decimal) -> Decimal:
    """``1 - numerator / denominator`` with the standard 28-digit quotient."""
    return _QUOTIENT.subtract(Decimal(1), _QUOTIENT.divide(numerator, denominator))


def _number(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else parse_decimal(value)


def derive_facts(deal: Mapping[str, Any]) -> dict[str, Any]:
    """Return the derived facts of SPEC §2 for a validated deal, in exact decimal arithmetic.

    Keys: ``totals`` (``product``, ``services``, ``support``, ``subscription``, ``contract``,
    ``cost``), ``margin`` (absent when the contract is 0 or a costed line lacks ``unit_cost``),
    ``services_ratio`` (absent when the contract is 0), ``max_line_discount`` (0 when no line
    has a non-zero list price), ``risk_offer`` (bool), ``labor_margin`` (absent without labor
    lines, when their price is 0 or one lacks a cost) and ``lines``: new copies of the lines,
    each with ``amount`` and, when ``unit_price`` is not 0 and the line has a cost, ``margin``.
    The caller merges these keys into the deal; the deal itself is not changed. Numbers that are
    not yet ``Decimal`` are parsed, so a hand-written deal works too.
    """
    totals = dict.fromkeys(
        ("product", "services", "support", "subscription", "contract", "cost"), Decimal(0)
    )
    lines: list[dict[str, Any]] = []
    costed_complete = True
    labor_price = labor_cost = Decimal(0)
    labor_lines = 0
    labor_complete = True
    discounts: list[Decimal] = []
    with localcontext(_EXACT):
        for line in deal.get("lines") or ():
            category = line.get("category")
            price = _number(line.get("unit_price", 0))
            quantity = _number(line.get("quantity", 0))
            amount = quantity * price
            copy = {**line, "amount": amount}
            cost = None if line.get("unit_cost") is None else _number(line["unit_cost"])
            if cost is not None:
                totals["cost"] += quantity * cost
                if price != 0:
                    copy["margin"] = _one_minus(cost, price)
            elif category != "subscription":
                costed_complete = False
            lines.append(copy)

            totals["contract"] += amount
            if category in _PRODUCT:
                totals["product"] += amount
            elif category in _SERVICES:
                totals["services"] += amount
                if category == "support":
                    totals["support"] += amount
            elif category == "subscription":
                totals["subscription"] += amount
            if category == "labor":
                labor_lines += 1
                labor_price += amount
                if cost is None:
                    labor_complete = False
                else:
                    labor_cost += quantity * cost

            list_price = line.get("list_price")
            if list_price is not None and _number(list_price) != 0:
                discounts.append(_one_minus(price, _number(list_price)))

        facts: dict[str, Any] = {"totals": totals}
        contract = totals["contract"]
        if contract != 0 and costed_complete:
            facts["margin"] = _one_minus(totals["cost"], contract)
        if contract != 0:
            facts["services_ratio"] = _QUOTIENT.divide(totals["services"], contract)
        facts["max_line_discount"] = max(discounts) if discounts else Decimal(0)
        offer = deal.get("offer")
        facts["risk_offer"] = isinstance(offer, Mapping) and offer.get("type") in RISK_OFFER_TYPES
        if labor_lines and labor_price != 0 and labor_complete:
            facts["labor_margin"] = _one_minus(labor_cost, labor_price)
    facts["lines"] = lines
    return facts
