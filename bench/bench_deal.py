"""Benchmark of the deal stage alone: validation plus derived facts, per deal.

For whoever tunes :mod:`dealdesk.deal`: validates and derives the facts of the 29 bundled
example deals (``examples/deals``: the YAML files and ``book.jsonl``, the invalid ones included)
and of peer-workload deals (``/work/shared/peer-workload/peer_map.py``, read through the JSONL
reader as ``dealdesk evaluate`` reads them), with the built-in plugins' declared facts, and
prints microseconds per deal and deals per CPU-second (``time.process_time``, the median of
``--rounds`` rounds). Two paths are timed where both exist: ``validate_deal`` then
``derive_facts`` (two walks, and the merge) and ``prepare_deal`` (one walk). Run
``python bench/bench_deal.py -n 2000``; not part of the test suite. Figures drift on a shared
machine: compare the two paths, or two commits, within one run of each.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dealdesk.deal import validate
from dealdesk.io.readers import read_deals, read_jsonl_stream
from dealdesk.manager import collect_plugins, get_plugin_manager

try:  # derive_facts' home since the deal stage was split into schema, validate and derive
    from dealdesk.deal.derive import derive_facts
except ImportError:  # the single deals module before the split, to measure it too
    derive_facts = validate.derive_facts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "deals"
PEER_WORKLOAD = Path("/work/shared/peer-workload")

Prepare = Callable[[Any, dict[str, str]], Any]


def example_deals() -> list[Any]:
    """The bundled example deals, valid and invalid, as the readers give them."""
    return [source.deal for source in read_deals([str(EXAMPLES)])]


def peer_deals(n: int, folder: Path) -> list[Any]:
    """``n`` peer-workload deals, mapped onto SPEC §2 and read back from JSONL."""
    sys.path.insert(0, str(folder))  # peer_map's own imports
    try:
        spec = importlib.util.spec_from_file_location("peer_map", folder / "peer_map.py")
        assert spec is not None and spec.loader is not None
        peer_map = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(peer_map)
        from gen_deals import gen_deals
    finally:
        sys.path.remove(str(folder))
    lines = [peer_map.to_jsonl_line(flat) for flat in gen_deals(n)]
    return [source.deal for source in read_jsonl_stream(lines, "peer.jsonl")]


def validate_then_derive(raw: Any, fact_types: dict[str, str]) -> Any:
    """The two-walk path: validate_deal, then the deal merged with derive_facts of it."""
    deal, problems = validate.validate_deal(raw, fact_types)
    if deal is None:
        return None, problems
    return {**deal, **derive_facts(deal)}, []


def time_path(prepare: Prepare, deals: list[Any], fact_types: dict[str, str], rounds: int) -> float:
    """Median CPU seconds per deal; a round takes the deals over until it has 2,000 or more."""
    prepare(deals[0], fact_types)  # compile the schema first
    repeat = -(-2000 // len(deals))
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            for raw in deals:
                prepare(raw, fact_types)
        times.append((time.process_time() - start) / (repeat * len(deals)))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="peer deals (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure (default 7)")
    parser.add_argument("--peer-workload", type=Path, default=PEER_WORKLOAD)
    args = parser.parse_args()
    fact_types = collect_plugins(get_plugin_manager(autoload=False)).fact_types
    workloads = {"examples": example_deals()}
    if (args.peer_workload / "peer_map.py").exists():
        workloads["peer"] = peer_deals(args.n, args.peer_workload)
    paths: dict[str, Prepare] = {"validate_deal + derive_facts": validate_then_derive}
    prepare_deal = getattr(validate, "prepare_deal", None)  # the one-walk path, where it exists
    if prepare_deal is not None:
        paths["prepare_deal"] = prepare_deal
    for workload, deals in workloads.items():
        for label, prepare in paths.items():
            seconds = time_path(prepare, deals, fact_types, args.rounds)
            print(
                f"{workload:8} {len(deals):5} deals  {label:28} "
                f"{seconds * 1e6:7.1f} µs/deal  {1 / seconds:8.0f} deals/CPU-s"
            )


if __name__ == "__main__":
    main()
