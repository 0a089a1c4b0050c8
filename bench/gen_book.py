"""A seeded generator of realistic deal books for the house policy (SPEC §2 deals, JSONL).

    python bench/gen_book.py N [--seed S] [-o FILE]

Writes N deals, one JSON object a line, to standard output (or FILE) as it generates them, so a
million deals can be piped into ``dealdesk evaluate -`` without a file. The same N and seed
always give the same bytes, and the first K deals of a book of N are the book of K.

The book is shaped to exercise the house rulesets (SPEC §5), not to be uniform noise:

- segments rabbit / deer / elephant with contract sizes lognormal around $40k / $250k / $1M;
- 1-8 lines of every category with plausible prices and costs: hardware margins around the
  30% flag line, software around 80%, labor priced as hours x a block rate by resource and
  grade with margins around the 30% block floor, support sized against the service-contract
  value (15% / 30% of product) and sometimes short of it, optional subscriptions with or
  without a cost;
- overall margins near the floors (30/35/40% by services mix), list prices on some lines with
  line discounts clustered at and around the discount-authority thresholds (10/20/30/40%);
- every offer type and pricing model: risk offers mostly to large accounts, through SELECT
  partners, with proactive support and resident-engineer cost centers (and the odd mistake the
  policy rejects), kpi pricing with kpi_at_risk either side of 20%, gain-share deals;
- ~40% partner deals of every tier and kind, discounts either side of the tier's cap;
- government customers, platinum-club customers, payment terms past 60 days, requested
  milestone splits (the policy's, a different one, or a broken one);
- about 0.5% deliberately invalid deals (a missing unit_cost, an unknown enum value, a
  negative quantity, malformed money), as real books have.

Only the standard library: one ``random.Random(seed)`` drives everything. Money is kept in
integer cents and written as a number or a decimal string with at most 2 decimals.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, TextIO

# (segment, share of deals, median contract in dollars, lognormal sigma)
SEGMENTS = (
    ("rabbit", 0.50, 40_000, 0.6),
    ("deer", 0.35, 250_000, 0.6),
    ("elephant", 0.15, 1_000_000, 0.6),
)
# line counts 1..8, weighted by segment: small accounts buy a box or two, large ones a project
LINE_COUNT_WEIGHTS = {
    "rabbit": (30, 30, 20, 10, 5, 3, 1, 1),
    "deer": (8, 17, 25, 20, 14, 8, 5, 3),
    "elephant": (2, 6, 14, 20, 20, 16, 12, 10),
}
# share of risk offers (new_market / advanced_technology) by segment
RISK_SHARE = {"rabbit": 0.03, "deer": 0.15, "elephant": 0.40}
REGIONS = (
    ("us-west", 18, ("US",)),
    ("us-central", 15, ("US",)),
    ("us-east", 17, ("US",)),
    ("emea", 25, ("DE", "FR", "GB", "NL", "NO", "SE", "IT", "ES", "AE", "ZA")),
    ("apac", 15, ("SG", "AU", "JP", "IN", "KR", "NZ")),
    ("latam", 10, ("BR", "MX", "CL", "CO", "AR")),
)
# deal currency by headquarters country (most books are in a handful of currencies)
CURRENCIES = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "IT": "EUR", "ES": "EUR", "GB": "GBP"}
PRICING = (("fixed", 70), ("consumption", 16), ("kpi", 8), ("financial_improvement", 6))
PARTNER_KINDS = (("reseller", 45), ("system_integrator", 30), ("distributor", 25))
PARTNER_TIERS = (("registered", 30), ("silver", 28), ("gold", 27), ("select", 15))
# partner discount caps by tier (PM-6), in hundredths
TIER_CAP = {"select": 25, "gold": 15, "silver": 10, "registered": 5}
CATEGORY_WEIGHTS = (
    ("hardware", 30),
    ("software", 26),
    ("labor", 20),
    ("support", 10),
    ("subscription", 14),
)
# hourly block rates in dollars by resource at grade 10; each grade is ~8% more
BLOCK_RATE = {
    "project_manager": 170,
    "architect": 210,
    "implementation": 150,
    "resident_engineer": 140,
}
RESOURCES = (
    ("implementation", 40),
    ("architect", 25),
    ("project_manager", 25),
    ("resident_engineer", 10),
)
# line discounts in hundredths (1 - unit_price / list_price): the authority thresholds of PM-5
# are 10 / 20 / 30 / 40, so most discounts sit below, at or just above one of them
DISCOUNT_BANDS = ((0, 10, 62), (11, 20, 21), (21, 30, 10), (31, 40, 5), (41, 55, 2))
THRESHOLDS = (10, 20, 30, 40)

SKUS = {
    "hardware": "SRV-1U SRV-4U EDGE-APL EDGE-MINI GPU-RACK SENSOR-HUB PLC-CTRL STOR-ARR".split(),
    "software": "OS-LIC DB-LIC EDGE-OS MES-LIC OPT-SUITE SEC-SUITE ML-PLAT BI-SEATS".split(),
    "labor": "IMPL-BLOCK ARCH-BLOCK PM-BLOCK RES-ENG ONBOARD MIGRATE".split(),
    "support": "SUP-BF PRO-SUP SUP-PREM SUP-24x7".split(),
    "subscription": "CLOUD-OBS CLOUD-SEC IOT-DATA API-GW ML-CREDITS".split(),
}
# (minimum unit price in dollars, maximum quantity) for lines priced per unit
UNIT_SHAPE = {
    "hardware": (800, 60),
    "software": (150, 500),
    "support": (5_000, 3),
    "subscription": (100, 36),
}
NAME_FIRST = (
    "Acme Aster Borealis Cobalt Commonwealth Delta Ferro Harbor Lumen Meridian Northwind Orion "
    "Pioneer Quill Redwood Summit Tidewater Umbra Vertex Willow Zenith Granite Helios Juniper"
).split()
NAME_SECOND = (
    "Robotics, Textiles, Foods, Mining, Transit, Steelworks, Logistics, Analytics, Medical "
    "Devices, Energy, Pharma, Retail, Aerospace, Utilities, Bank, Insurance, Telecom, Chemicals"
).split(", ")
PARTNER_NAMES = {
    "system_integrator": (
        "Delta Systems Integration",
        "Northwind Integration",
        "Keystone Integrators",
        "Apex Solutions",
    ),
    "reseller": ("Gamma Resellers", "Brightline IT", "Corner Office Supply", "Metro Tech Partners"),
    "distributor": (
        "Global Channel Distribution",
        "Pacific Distribution",
        "Atlas Supply Co",
        "Meridian Distribution",
    ),
}
# the policy's own milestone splits (BM-1, BM-2, BM-3), and requested splits that differ
POLICY_SPLIT = {"large_risk": [30, 30, 30, 10], "small_risk": [50, 50], "standard": [100]}
OTHER_SPLITS = (
    [40, 30, 30],
    [50, 50],
    [25, 25, 25, 25],
    [20, 40, 40],
    [30, 30, 30, 10],
    [100],
    [60, 40],
)
BROKEN_SPLITS = ([30, 30, 30], [50, 60], [40, 40, 30], [100, 0], [110, -10])
# kinds of deliberately invalid deal, as real books have them
INVALID_KINDS = ("missing_cost", "unknown_enum", "negative_quantity", "malformed_money")
INVALID_SHARE = 0.005
FIRST_CLOSE = date(2026, 1, 5)


def weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...]) -> Any:
    """One item of ``(item, weight)`` pairs."""
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def money(cents: int, as_text: bool) -> int | float | str:
    """Cents as a JSON value: a whole number, a 2-decimal number, or a decimal string."""
    whole, rest = divmod(cents, 100)
    if as_text:
        return f"{whole}.{rest:02d}"
    return whole if rest == 0 else float(f"{whole}.{rest:02d}")


class BookGenerator:
    """Deals for the house policy, one after the other, from one seeded ``random.Random``."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.seed = seed

    def deals(self, n: int) -> Iterator[dict[str, Any]]:
        """The first ``n`` deals of this seed's book."""
        for index in range(n):
            yield self.deal(index)

    # -- one deal -------------------------------------------------------------------------------

    def deal(self, index: int) -> dict[str, Any]:
        """The deal at ``index`` (deals must be drawn in order: the generator is sequential)."""
        rng = self.rng
        segment, median, sigma = self._segment()
        region, country = self._region()
        risk = rng.random() < RISK_SHARE[segment]
        offer_type = rng.choice(("new_market", "advanced_technology")) if risk else "standard"
        pricing = weighted(rng, PRICING)
        government = rng.random() < (0.18 if region == "us-east" else 0.06)
        as_text = rng.random() < 0.12  # some books come from a CSV export: money as strings

        contract = rng.lognormvariate(math.log(median), sigma) * 100
        lines = self._lines(segment, risk, pricing, contract, as_text)

        deal: dict[str, Any] = {"id": f"G-{index + 1:07d}"}
        if rng.random() < 0.95:  # a home-currency book often leaves the currency out
            deal["currency"] = CURRENCIES.get(country, "USD")
        deal["customer"] = {
            "name": f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND)}",
            "segment": segment,
            "region": region,
            "hq_country": country,
            "government": government,
            "platinum_club": rng.random() < (0.04 if segment == "rabbit" else 0.12),
            "presales_consulting": rng.random() < (0.45 if segment == "elephant" else 0.2),
        }
        offer: dict[str, Any] = {"type": offer_type, "pricing": pricing}
        contract_cents = sum(line["_amount"] for line in lines)
        if pricing == "kpi":
            # at risk either side of the 20% line of BM-8 (exactly 20% now and then)
            share = rng.choice((rng.uniform(0.05, 0.20), rng.uniform(0.20, 0.35), 0.20))
            offer["kpi_at_risk"] = money(int(contract_cents * share) // 100 * 100, as_text)
        elif rng.random() < 0.1:
            offer["kpi_at_risk"] = 0
        deal["offer"] = offer
        partner = self._partner(risk)
        if partner:
            deal["partner"] = partner
        deal["support"] = self._support(risk, segment)
        product_cents = sum(
            line["_amount"] for line in lines if line["category"] in ("hardware", "software")
        )
        billing = self._billing(risk, product_cents)
        if billing:
            deal["billing"] = billing
        deal["lines"] = [{k: v for k, v in line.items() if k != "_amount"} for line in lines]
        deal["dates"] = self._dates()
        if rng.random() < INVALID_SHARE:
            self._spoil(deal)
        return deal

    def _segment(self) -> tuple[str, float, float]:
        row = self.rng.choices(SEGMENTS, weights=[s[1] for s in SEGMENTS])[0]
        return row[0], row[2], row[3]

    def _region(self) -> tuple[str, str]:
        row = self.rng.choices(REGIONS, weights=[r[1] for r in REGIONS])[0]
        return row[0], self.rng.choice(row[2])

    def _categories(self, segment: str, risk: bool, pricing: str) -> list[str]:
        rng = self.rng
        count = rng.choices(range(1, 9), weights=LINE_COUNT_WEIGHTS[segment])[0]
        cats = [weighted(rng, CATEGORY_WEIGHTS) for _ in range(count)]
        # risk offers are product offers: lead with hardware (or software)
        if risk and not any(c in ("hardware", "software") for c in cats):
            cats[0] = "hardware" if rng.random() < 0.75 else "software"
        # consumption pricing is billed on usage: nearly always a subscription line (BM-8 flags
        # the rest)
        if pricing == "consumption" and "subscription" not in cats and rng.random() < 0.9:
            cats[-1] = "subscription"
        # support sold with product most of the time, sized by the service contract (OS-4)
        has_product = any(c in ("hardware", "software") for c in cats)
        if has_product and "support" not in cats and rng.random() < (0.9 if risk else 0.85):
            cats.append("support")
        return cats[:8]

    def _lines(
        self, segment: str, risk: bool, pricing: str, contract: float, as_text: bool
    ) -> list[dict[str, Any]]:
        rng = self.rng
        cats = self._categories(segment, risk, pricing)
        weights = [rng.expovariate(1.0) + 0.15 for _ in cats]
        # product carries most of a product deal's value; support is sized afterwards
        for i, cat in enumerate(cats):
            if cat in ("hardware", "software"):
                weights[i] *= 2.5
            elif cat == "support":
                weights[i] = 0.0
        total = sum(weights) or 1.0
        lines: list[dict[str, Any]] = []
        for cat, weight in zip(cats, weights, strict=True):
            if cat != "support":
                lines.append(self._line(cat, max(int(contract * weight / total), 5_000), as_text))
        product = sum(
            line["_amount"] for line in lines if line["category"] in ("hardware", "software")
        )
        for i, cat in enumerate(cats):
            if cat == "support":
                lines.insert(i, self._support_line(risk, product, contract, as_text))
        skus_used: set[str] = set()
        for line in lines:  # one line per SKU, as a quote tool would merge them
            if line["sku"] in skus_used:
                line["sku"] = f"{line['sku']}-{len(skus_used) + 1}"
            skus_used.add(line["sku"])
        return lines

    def _support_line(
        self, risk: bool, product: int, contract: float, as_text: bool
    ) -> dict[str, Any]:
        """A support line near the service-contract value of OS-4 (30% / 15% of product)."""
        rng = self.rng
        if product <= 0:
            return self._line(
                "support", max(int(contract * rng.uniform(0.05, 0.2)), 5_000), as_text
            )
        value = math.ceil(product * (0.30 if risk else 0.15))
        roll = rng.random()
        if roll < 0.2:
            # exactly the service-contract value, one unit: OS-4's boundary
            line = {"sku": rng.choice(SKUS["support"]), "category": "support", "quantity": 1}
            line["unit_price"] = money(value, as_text)
            line["unit_cost"] = money(round(value * (1 - self._line_margin("support"))), as_text)
            line["_amount"] = value
            return line
        # most deals cover the service contract, some fall short of it (deal_desk)
        factor = rng.uniform(1.0, 1.5) if roll < 0.9 else rng.uniform(0.6, 1.0)
        return self._line("support", max(int(value * factor), 5_000), as_text)

    def _line(self, category: str, cents: int, as_text: bool) -> dict[str, Any]:
        rng = self.rng
        line: dict[str, Any] = {"sku": rng.choice(SKUS[category]), "category": category}
        if category == "labor":
            return self._labor(line, cents, as_text)
        min_unit, max_quantity = UNIT_SHAPE[category]
        quantity = rng.randint(1, max(1, min(max_quantity, cents // (min_unit * 100))))
        if category == "subscription" and rng.random() < 0.6:
            quantity = 12  # monthly units over a year
        unit = max(cents // quantity, 100)
        list_price = None
        if category != "support" and rng.random() < 0.35:
            # round list prices in whole dollars, the net price an exact discount off them
            discount = self._discount()
            list_dollars = max(1, round(unit / 100 / (1 - discount / 100)))
            list_price = list_dollars * 100
            unit = list_dollars * (100 - discount)
        elif unit >= 10_000:
            unit = unit // 100 * 100  # whole dollars, as most price books are
        cost = unit * (1 - self._line_margin(category))
        line["quantity"] = quantity
        line["unit_price"] = money(unit, as_text)
        if list_price is not None:
            line["list_price"] = money(list_price, as_text)
        if category != "subscription" or rng.random() < 0.6:
            line["unit_cost"] = money(max(0, round(cost)), as_text)
        line["_amount"] = unit * quantity
        return line

    def _labor(self, line: dict[str, Any], cents: int, as_text: bool) -> dict[str, Any]:
        """A block of hours: unit_price = hours x the block rate of the resource's grade."""
        rng = self.rng
        resource = weighted(rng, RESOURCES)
        grade = rng.randint(7, 13)
        rate = round(BLOCK_RATE[resource] * 1.08 ** (grade - 10)) * 100
        hours = (
            max(8, round(cents / rate / 40) * 40) if cents >= rate * 40 else 8 * rng.randint(1, 5)
        )
        price = rate * hours
        # labor margins around the 30% block-pricing floor (PM-9); exactly 30% now and then
        margin = 0.30 if rng.random() < 0.05 else self._gauss(0.36, 0.06, 0.05, 0.6)
        line.update(
            resource=resource,
            grade=grade,
            hours=hours,
            quantity=1,
            unit_price=money(price, as_text),
            unit_cost=money(round(price * (1 - margin)), as_text),
            _amount=price,
        )
        return line

    def _line_margin(self, category: str) -> float:
        """Per-line margins: hardware around the 30% flag (PM-10), software around 80%."""
        if category == "hardware":
            return self._gauss(0.40, 0.09, 0.05, 0.65)
        if category == "software":
            return self._gauss(0.84, 0.07, 0.4, 0.97)
        if category == "support":
            return self._gauss(0.45, 0.10, 0.1, 0.7)
        return self._gauss(0.55, 0.12, 0.1, 0.85)

    def _gauss(self, mu: float, sigma: float, low: float, high: float) -> float:
        return min(high, max(low, self.rng.gauss(mu, sigma)))

    def _discount(self) -> int:
        """A line discount in hundredths; a quarter of them exactly on an authority threshold."""
        rng = self.rng
        if rng.random() < 0.12:
            return rng.choices(THRESHOLDS, weights=(6, 3, 2, 1))[0]
        low, high, _ = rng.choices(DISCOUNT_BANDS, weights=[b[2] for b in DISCOUNT_BANDS])[0]
        return rng.randint(low, high)

    def _partner(self, risk: bool) -> dict[str, Any] | None:
        rng = self.rng
        if rng.random() >= (0.55 if risk else 0.38):
            return None
        kind = weighted(rng, PARTNER_KINDS)
        # risk offers go through SELECT partners, bar the odd mistake PM-1 rejects
        tier = "select" if risk and rng.random() < 0.9 else weighted(rng, PARTNER_TIERS)
        cap = TIER_CAP[tier]
        roll = rng.random()
        if roll < 0.65:
            discount = rng.randint(max(1, cap // 3), cap) / 100
        elif roll < 0.82:
            discount = cap / 100
        elif roll < 0.92:
            discount = (cap * 100 + rng.randint(1, 50)) / 10_000  # just above the cap
        else:
            discount = rng.randint(cap + 1, cap + 12) / 100
        partner: dict[str, Any] = {
            "name": rng.choice(PARTNER_NAMES[kind]),
            "kind": kind,
            "tier": tier,
        }
        partner["discount"] = discount
        return partner

    def _support(self, risk: bool, segment: str) -> dict[str, Any]:
        rng = self.rng
        if risk:
            # the policy requires proactive support for risk offers (OS-1); a few miss it
            model = "proactive" if rng.random() < 0.92 else rng.choice(("break_fix", "none"))
        else:
            model = weighted(rng, (("break_fix", 45), ("proactive", 30), ("none", 25)))
        support: dict[str, Any] = {"model": model}
        if risk and segment != "rabbit":
            roll = rng.random()
            if roll < 0.15:
                support["resident_cost_to"] = "product_development"
            elif roll < 0.6:
                support["resident_cost_to"] = "project"
        return support

    def _billing(self, risk: bool, product_cents: int) -> dict[str, Any]:
        rng = self.rng
        billing: dict[str, Any] = {}
        if rng.random() < 0.9:
            billing["payment_terms_days"] = weighted(
                rng, ((30, 45), (45, 22), (60, 22), (75, 3), (90, 6), (120, 2))
            )
        if rng.random() < 0.2:
            if not risk:
                policy = POLICY_SPLIT["standard"]
            elif product_cents >= 500_000 * 100:
                policy = POLICY_SPLIT["large_risk"]
            else:
                policy = POLICY_SPLIT["small_risk"]
            roll = rng.random()
            if roll < 0.6:
                split = policy
            elif roll < 0.9:
                split = rng.choice(OTHER_SPLITS)
            else:
                split = rng.choice(BROKEN_SPLITS)
            billing["requested_split"] = list(split)
        return billing

    def _dates(self) -> dict[str, str]:
        rng = self.rng
        close = FIRST_CLOSE + timedelta(days=rng.randint(0, 540))
        dates = {"close": close.isoformat()}
        if rng.random() < 0.8:
            dates["start"] = (close + timedelta(days=rng.randint(7, 90))).isoformat()
        return dates

    def _spoil(self, deal: dict[str, Any]) -> None:
        """Make the deal invalid the way real books are (SPEC §2: it must come back invalid)."""
        rng = self.rng
        kind = rng.choice(INVALID_KINDS)
        lines = deal["lines"]
        if kind == "missing_cost":
            costed = [line for line in lines if line["category"] != "subscription"]
            if costed:
                rng.choice(costed).pop("unit_cost", None)
                return
            kind = "unknown_enum"
        if kind == "unknown_enum":
            where, field, value = rng.choice(
                (
                    ("customer", "region", "mars"),
                    ("customer", "segment", "whale"),
                    ("offer", "type", "pilot"),
                    ("offer", "pricing", "barter"),
                    ("support", "model", "premium"),
                    ("line", "category", "consulting"),
                )
            )
            target = rng.choice(lines) if where == "line" else deal[where]
            target[field] = value
        elif kind == "negative_quantity":
            line = rng.choice(lines)
            line["quantity"] = -abs(line["quantity"])
        else:
            line = rng.choice(lines)
            # a spreadsheet's display format, thousands separators and all
            line["unit_price"] = f"{float(line['unit_price']):,.2f}"


def write_book(n: int, seed: int, out: TextIO) -> None:
    """Write the first ``n`` deals of ``seed``'s book to ``out`` as JSONL."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    batch: list[str] = []
    for deal in BookGenerator(seed).deals(n):
        batch.append(encode(deal))
        if len(batch) >= 256:  # fewer, larger writes: a pipe's reader sees whole lines sooner
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, metavar="N", help="number of deals")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (default: standard output)"
    )
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("N must be 0 or more")
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="\n") as out:
                write_book(args.n, args.seed, out)
        else:
            write_book(args.n, args.seed, sys.stdout)
    except BrokenPipeError:
        # the reader stopped early (`| head`): not an error of ours; keep Python quiet at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
