"""Benchmark of the lean durable_rules driver: facts per second on a 24-rule deal policy.

For whoever tunes the engine path: compare the figure with SPEC §9 (~25,000 deals per
CPU-second for a lean loop on the C extension, ~9,600 through durable's ``Host``).
Run ``python bench/bench_driver.py -n 20000``; not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from typing import Any

try:
    import resource  # page-fault counts; Unix only
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

try:  # the driver's home since the layout change; older trees had it at dealdesk.driver
    from dealdesk.engines.durable import driver as driver_module
except ImportError:  # pragma: no cover - older layout
    from dealdesk import driver as driver_module  # type: ignore[no-redef]

DurableDriver = driver_module.DurableDriver


def _ex(*paths: str) -> list[dict[str, Any]]:
    """``$ex`` guards, as the compiler puts before every comparison on a path."""
    return [{"$ex": {path: 1}} for path in paths]


def _rule(*conditions: dict[str, Any]) -> dict[str, Any]:
    """One single-fact rule anchored on ``kind == "deal"``, like the compiler's output."""
    return {"all": [{"m": {"$and": [{"kind": "deal"}, *conditions]}}]}


def policy() -> dict[str, Any]:
    """A 24-rule definition resembling the compiled house policy (all three families)."""
    m = {"$m": "totals.contract"}
    return {
        "PM-1": _rule(
            *_ex("partner.tier"), {"risk_offer": True}, {"$neq": {"partner.tier": "select"}}
        ),
        "PM-2a": _rule(*_ex("services_ratio"), {"$lt": {"services_ratio": 0.2}}),
        "PM-2b": _rule(
            *_ex("services_ratio"),
            {"$gte": {"services_ratio": 0.2}},
            {"$lt": {"services_ratio": 0.5}},
        ),
        "PM-2c": _rule(*_ex("services_ratio"), {"$gte": {"services_ratio": 0.5}}),
        "PM-3": _rule(
            *_ex("margin", "outputs.margin_floor"),
            {"$lt": {"margin": {"$m": "outputs.margin_floor"}}},
        ),
        "PM-4": _rule(*_ex("partner.discount"), {"$gt": {"partner.discount": 0.25}}),
        "PM-5a": _rule(
            *_ex("max_line_discount", "totals.contract"),
            {"$gt": {"max_line_discount": 0.10}},
            {"$lte": {"max_line_discount": 0.20}},
            {"$lt": {"totals.contract": 5_000_000}},
        ),
        "PM-5b": _rule(
            *_ex("max_line_discount", "totals.contract"),
            {"$gt": {"max_line_discount": 0.20}},
            {"$lt": {"totals.contract": 5_000_000}},
        ),
        "PM-5c": _rule(*_ex("totals.contract"), {"$gte": {"totals.contract": 5_000_000}}),
        "PM-6": _rule(
            *_ex("partner.kind"),
            {"partner.kind": "distributor"},
            {"$gt": {"partner.discount": 0.15}},
        ),
        "BM-1": _rule(
            *_ex("totals.product", "totals.contract"),
            {"$neq": {"totals.contract": 0}},
            {"$gt": {"totals.product": {"$mul": {"$l": m, "$r": 0.5}}}},
        ),
        "BM-2": _rule(
            *_ex("billing.payment_terms_days"), {"$gt": {"billing.payment_terms_days": 60}}
        ),
        "BM-3": _rule(
            *_ex("offer.pricing"), {"offer.pricing": "kpi"}, {"$gt": {"offer.kpi_at_risk": 0}}
        ),
        "BM-4": _rule(*_ex("customer.government"), {"customer.government": True}),
        "BM-5": _rule(
            *_ex("totals.services", "totals.cost"),
            {"$neq": {"totals.cost": 0}},
            {"$gt": {"totals.services": {"$div": {"$l": {"$m": "totals.cost"}, "$r": 4}}}},
        ),
        "BM-6": _rule({"$iany": {"lines": {"$i.category": "subscription"}}}),
        "OS-1": _rule(
            *_ex("support.model"), {"support.model": "proactive"}, {"customer.segment": "elephant"}
        ),
        "OS-2": _rule(
            {
                "$iany": {
                    "lines": {
                        "$and": [{"$i.category": "labor"}, {"$i.resource": "resident_engineer"}]
                    }
                }
            }
        ),
        "OS-3": _rule(
            *_ex("customer.region"),
            {"$or": [{"customer.region": "emea"}, {"customer.region": "apac"}]},
            {"support.model": "proactive"},
        ),
        "OS-4": _rule(*_ex("labor_margin"), {"$lt": {"labor_margin": 0.25}}),
        "OS-5": _rule(
            {"$iall": {"lines": {"$gt": {"$i.quantity": 0}}}},
            {"customer.presales_consulting": True},
        ),
        "OS-6": _rule(
            *_ex("support.model"),
            {"support.model": "none"},
            {"$iany": {"lines": {"$i.category": "hardware"}}},
        ),
        "OS-7": _rule(*_ex("customer.platinum_club"), {"customer.platinum_club": True}),
        "OS-8": _rule(
            *_ex("totals.support", "totals.contract"),
            {"$gt": {"totals.support": {"$mul": {"$l": m, "$r": 0.3}}}},
        ),
    }


REGIONS = ["us-west", "us-central", "us-east", "emea", "apac", "latam"]
CATEGORIES = ["hardware", "software", "labor", "support", "subscription"]


def make_fact(rng: random.Random) -> dict[str, Any]:
    """A random enriched deal, numbers as JSON numbers, without ``id`` (the driver sets it)."""
    lines = []
    for _ in range(rng.randint(1, 6)):
        category = rng.choice(CATEGORIES)
        price = rng.randint(1, 200) * 1000
        line: dict[str, Any] = {
            "sku": f"SKU-{rng.randint(1, 99)}",
            "category": category,
            "quantity": rng.randint(1, 8),
            "unit_price": price,
            "amount": price * 2,
            "margin": round(rng.uniform(0.05, 0.6), 4),
        }
        if category == "labor":
            line["resource"] = rng.choice(["architect", "implementation", "resident_engineer"])
        lines.append(line)
    contract = sum(line["quantity"] * line["unit_price"] for line in lines)
    fact: dict[str, Any] = {
        "kind": "deal",
        "deal_id": f"D-{rng.randint(1000, 9999)}",
        "currency": "USD",
        "customer": {
            "segment": rng.choice(["elephant", "deer", "rabbit"]),
            "region": rng.choice(REGIONS),
            "government": rng.random() < 0.1,
            "platinum_club": rng.random() < 0.1,
            "presales_consulting": rng.random() < 0.5,
        },
        "offer": {
            "type": rng.choice(["new_market", "advanced_technology", "standard"]),
            "pricing": rng.choice(["fixed", "consumption", "kpi"]),
            "kpi_at_risk": rng.choice([0, 50000]),
        },
        "support": {"model": rng.choice(["proactive", "break_fix", "none"])},
        "billing": {"payment_terms_days": rng.choice([30, 45, 60, 90])},
        "lines": lines,
        "totals": {
            "contract": contract,
            "product": contract * rng.uniform(0, 1),
            "services": contract * rng.uniform(0, 0.6),
            "support": contract * rng.uniform(0, 0.4),
            "cost": contract * rng.uniform(0.3, 0.9),
        },
        "margin": round(rng.uniform(0.05, 0.6), 4),
        "services_ratio": round(rng.uniform(0, 0.8), 4),
        "max_line_discount": round(rng.uniform(0, 0.35), 4),
        "labor_margin": round(rng.uniform(0.1, 0.5), 4),
        "risk_offer": rng.random() < 0.4,
        "outputs": {"margin_floor": rng.choice([0.2, 0.3, 0.4])},
    }
    if rng.random() < 0.6:
        fact["partner"] = {
            "kind": rng.choice(["system_integrator", "reseller", "distributor"]),
            "tier": rng.choice(["select", "gold", "silver"]),
            "discount": round(rng.uniform(0, 0.35), 4),
        }
    return fact


def main(argv: list[str] | None = None) -> int:
    """Register the policy, match ``-n`` random deals, print facts per second (wall and CPU)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="number of facts (default 20000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the deals")
    parser.add_argument(
        "--no-tune-malloc",
        action="store_true",
        help="leave glibc's heap trimming on, to see what tune_malloc() buys",
    )
    args = parser.parse_args(argv)

    if args.no_tune_malloc:
        driver_module._malloc_tuned = True  # makes tune_malloc() a no-op for this comparison
    rng = random.Random(args.seed)
    driver = DurableDriver()
    definition = policy()
    driver.register("bench-policy", definition)

    fired: Counter[str] = Counter()
    match = driver.match
    wall = cpu = 0.0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0
    for _ in range(args.n):
        # Build each deal just before matching it, as a streaming batch does; time only match().
        fact = make_fact(rng)
        started, started_cpu = time.perf_counter(), time.process_time()
        names = match("bench-policy", fact)
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        fired.update(names)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) if resource else 0

    print(
        f"rules: {len(definition)}  facts: {args.n}  firings: {sum(fired.values())}"
        f" ({sum(fired.values()) / args.n:.1f} per fact, {len(fired)} distinct rules)"
    )
    print(
        f"malloc tuned: {not args.no_tune_malloc}  minor page faults per fact: {faults / args.n:.1f}"
    )
    print(f"wall: {wall:.3f} s  ->  {args.n / wall:,.0f} facts/s")
    print(f"cpu:  {cpu:.3f} s  ->  {args.n / cpu:,.0f} facts/CPU-s   (SPEC §9 lean loop: ~25,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
