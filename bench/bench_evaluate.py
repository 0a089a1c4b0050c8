"""Benchmark of whole-deal evaluation on the house policy: deals per second, memory.

For whoever tunes the pipeline (validate → derive → durable_rules per stratum → actions →
combine → record): prints deals per CPU-second and peak RSS, with and without rendering the
clauses. Run ``python bench/bench_evaluate.py -n 5000``; not part of the test suite.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import resource
import time
from pathlib import Path
from typing import Any

import yaml

from dealdesk import app
from dealdesk.engines import available_engines

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "deals"


def sample_deals() -> list[dict[str, Any]]:
    """The bundled example deals, the valid ones and the invalid ones alike."""
    deals = [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    book = EXAMPLES / "book.jsonl"
    if book.exists():
        deals += [json.loads(line) for line in book.read_text().splitlines() if line.strip()]
    return deals


def vary(deal: dict[str, Any], rng: random.Random, i: int) -> dict[str, Any]:
    """A copy with a new id and prices moved by up to ±30%, so boundaries fall differently."""
    result = copy.deepcopy(deal)
    result["id"] = f"B-{i}"
    for line in result.get("lines") or []:
        if isinstance(line.get("unit_price"), int | float):
            line["unit_price"] = round(line["unit_price"] * rng.uniform(0.7, 1.3), 2)
    return result


def run(n: int, clauses: bool, engine: str) -> tuple[float, dict[str, int]]:
    application = app.build(clauses=clauses, autoload=False, engine=engine)
    evaluator = application.pipeline
    rng = random.Random(7)
    base = sample_deals()
    deals = [vary(base[i % len(base)], rng, i) for i in range(n)]
    statuses: dict[str, int] = {}
    start = time.process_time()
    for deal in deals:
        status = evaluator.evaluate(deal)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    return time.process_time() - start, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5000, help="deals to evaluate (default 5000)")
    parser.add_argument("--engine", action="append", help="engine(s) to run (default: all)")
    args = parser.parse_args()
    for engine, clauses in itertools.product(args.engine or available_engines(), (False, True)):
        seconds, statuses = run(args.n, clauses, engine)
        label = f"{engine:<8} " + ("with clauses   " if clauses else "without clauses")
        print(
            f"{label}: {args.n / seconds:8.0f} deals/CPU-second  ({args.n} deals, {seconds:.2f} s)  {statuses}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
