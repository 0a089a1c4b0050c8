"""The derived facts of SPEC §2 (``totals``, ``margin``, ``lines[].amount`` ...), in exact decimals.

:func:`derive_facts` computes them for a deal that is already validated (or hand-written);
:class:`Ledger` does the arithmetic, from lines handed to it one by one, which is how
:func:`~dealdesk.deal.validate.prepare_deal` feeds it while it validates, so a deal is walked
once. Sums and products are exact (a list price of 100 sold at 70 is a discount of exactly
``0.30``); quotients have Python's standard 28 digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, getcontext, setcontext
from typing import Any

from dealdesk.money import parse_decimal

__all__ = ["EXACT", "RISK_OFFER_TYPES", "Ledger", "derive_facts"]

RISK_OFFER_TYPES = frozenset({"new_market", "advanced_technology"})
_PRODUCT = frozenset({"hardware", "software"})
_SERVICES = frozenset({"labor", "support"})

# Enough digits that sums and products are exact: validated numbers have at most 27 digits
# (MAX_MAGNITUDE, MAX_PLACES), so a product has at most 54 and a sum a few more.
EXACT = Context(prec=80)
# Quotients round to Python's standard 28 digits, whatever context the caller has set, so a
# plugin or a test computing 1 - cost / price the usual way gets the same Decimal.
_QUOTIENT = Context(prec=28)
_ZERO = Decimal(0)
_ONE = Decimal(1)

_Line = tuple[dict[str, Any], object, Decimal, Decimal, Decimal | None, Decimal | None]


class Ledger:
    """A deal's lines with their numbers, gathered one by one; :meth:`facts` derives from them.

    :func:`~dealdesk.deal.validate.prepare_deal` adds each line as its walk normalizes it, so
    the deal is not walked again, and nothing is computed for a deal that turns out invalid.
    """

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[_Line] = []

    def add(
        self,
        line: dict[str, Any],
        category: object,
        quantity: Decimal,
        price: Decimal,
        cost: Decimal | None,
        list_price: Decimal | None,
    ) -> None:
        """Add a line; :meth:`facts` sets its ``amount`` (and ``margin``) in ``line``.

        ``cost`` and ``list_price`` are ``None`` when the line has none.
        """
        self.lines.append((line, category, quantity, price, cost, list_price))

    def facts(self, offer: object) -> dict[str, Any]:
        """The derived facts but ``lines``, in SPEC §2 order; ``offer`` is the deal's.

        Each line added gets its ``amount`` and, when it has a cost and a non-zero
        ``unit_price``, its ``margin``. The caller's decimal context is given back as it was.
        """
        # Operators under a context set once, not the contexts' methods, which cost several times
        # as much per operation; setcontext() installs the context as it is, where localcontext()
        # would copy it for every deal. Nothing but this arithmetic runs until it is given back.
        caller = getcontext()
        try:
            setcontext(EXACT)
            return self.facts_exact(offer)
        finally:
            setcontext(caller)

    def facts_exact(self, offer: object) -> dict[str, Any]:
        """:meth:`facts`, for a caller that has set :data:`EXACT` as the decimal context.

        It is left set to the quotients' context; the caller gives its own back.
        """
        product = services = support = subscription = contract = cost_total = _ZERO
        labor_price = labor_cost = _ZERO
        labor_lines = 0
        costed_complete = labor_complete = True  # no costed (labor) line lacks unit_cost
        max_discount: Decimal | None = None  # the first largest, as max() picks it
        labor_margin: Decimal | None = None
        for line, category, quantity, price, cost, _ in self.lines:
            amount = quantity * price
            line["amount"] = amount
            contract += amount
            if cost is not None:
                cost_amount = quantity * cost
                cost_total += cost_amount
            elif category != "subscription":
                costed_complete = False
            if category in _PRODUCT:
                product += amount
            elif category in _SERVICES:
                services += amount
                if category == "support":
                    support += amount
            elif category == "subscription":
                subscription += amount
            if category == "labor":
                labor_lines += 1
                labor_price += amount
                if cost is None:
                    labor_complete = False
                else:
                    labor_cost += cost_amount

        setcontext(_QUOTIENT)
        for line, _, _, price, cost, list_price in self.lines:
            if cost is not None and price:  # price is not zero
                line["margin"] = _ONE - cost / price
            if list_price:  # present and not zero
                discount = _ONE - price / list_price
                if max_discount is None or discount > max_discount:
                    max_discount = discount
        facts: dict[str, Any] = {
            "totals": {
                "product": product,
                "services": services,
                "support": support,
                "subscription": subscription,
                "contract": contract,
                "cost": cost_total,
            }
        }
        if contract:  # not zero
            if costed_complete:
                facts["margin"] = _ONE - cost_total / contract
            facts["services_ratio"] = services / contract
        facts["max_line_discount"] = _ZERO if max_discount is None else max_discount
        if labor_lines and labor_price and labor_complete:
            labor_margin = _ONE - labor_cost / labor_price
        facts["risk_offer"] = (type(offer) is dict or isinstance(offer, Mapping)) and offer.get(
            "type"
        ) in RISK_OFFER_TYPES
        if labor_margin is not None:
            facts["labor_margin"] = labor_margin
        return facts


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

    To validate a raw deal and derive its facts in one walk, use
    :func:`~dealdesk.deal.validate.prepare_deal`.
    """
    ledger = Ledger()
    lines: list[dict[str, Any]] = []
    for line in deal.get("lines") or ():
        price = _number(line.get("unit_price", 0))
        quantity = _number(line.get("quantity", 0))
        cost = line.get("unit_cost")
        list_price = line.get("list_price")
        copy = {**line}
        ledger.add(
            copy,
            line.get("category"),
            quantity,
            price,
            None if cost is None else _number(cost),
            None if list_price is None else _number(list_price),
        )
        lines.append(copy)
    facts = ledger.facts(deal.get("offer"))
    facts["lines"] = lines
    return facts
