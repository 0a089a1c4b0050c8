"""What the columnar reader (engine/engines/columnar/frame.py) costs a deal.

    python bench/bench_frame.py                      # peer workload and gen_book, chunks of 256
    python bench/bench_frame.py --deals 8192 --size 256 --rounds 5

For each workload the JSONL lines are cut into chunks and each chunk is read with
``read_frame`` (Arrow read, the fast tests, ids and currencies), then the columns the peer
workload's conditions read are taken: the texts (offer.type, customer.government,
customer.segment, customer.region, partner.tier, present(partner), the lines' category), then
the lines' numbers (quantity, unit_price, unit_cost: ``exact.number_column``, whose first
version makes ``Decimal`` objects). For comparison: the per-deal path's parse and prepare
(``jsoncodec.loads_unique`` + ``prepare_deal``) of the same lines. CPU µs per deal
(``time.process_time``), the minimum over rounds, one thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dealdesk import jsoncodec
from dealdesk.deal.validate import prepare_deal
from dealdesk.engines.columnar.frame import _read, read_frame

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

HERE = Path(__file__).resolve().parent
PEER = Path(os.environ.get("PEER_WORKLOAD", "/work/shared/peer-workload"))
PATHS = ("offer.type", "customer.government", "customer.segment", "customer.region", "partner.tier")
LINE_NAMES = ("category", "quantity", "unit_price", "unit_cost")


def workload(name: str, n: int) -> list[bytes]:
    if name == "peer":
        command, cwd = [sys.executable, str(PEER / "peer_map.py"), str(n)], PEER
    else:
        command, cwd = [sys.executable, str(HERE / "gen_book.py"), str(n)], HERE
    out = subprocess.run(command, cwd=cwd, capture_output=True, check=True).stdout
    return [line + b"\n" for line in out.splitlines() if line.strip()]


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(rounds):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def text_columns(frame: Any) -> Any:
    for path in PATHS:
        frame.column(path)
    frame.present("partner")
    frame.line_column("category")
    return frame


def number_columns(frame: Any) -> Any:
    for name in LINE_NAMES[1:]:
        frame.line_column(name)
    return frame


def per_deal(lines: list[bytes]) -> None:
    for line in lines:
        prepare_deal(jsoncodec.loads_unique(line.decode().rstrip("\r\n")), {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=8192)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="peer,house")
    args = parser.parse_args()
    print(f"pyarrow {pa.__version__}; CPU µs per deal, min of {args.rounds} rounds, 1 thread")
    for name in args.workloads.split(","):
        lines = workload(name, args.deals)
        chunks = [lines[i : i + args.size] for i in range(0, len(lines), args.size)]
        n = len(lines)
        frames = [read_frame(c) for c in chunks]
        fast = sum(int(f.fast.sum()) for f in frames)
        refused = sum(f.table is None or f.fast.sum() < len(f.fast) for f in frames)
        stripped = [[line.rstrip(b"\r\n") for line in c] for c in chunks]
        candidates: dict[str, Callable[[], Any]] = {
            "Arrow read alone (the same schema)": lambda: [
                _read(s, np.arange(len(s)))  # noqa: B023
                for s in stripped  # noqa: B023
            ],
            "read_frame": lambda: [read_frame(c) for c in chunks],  # noqa: B023
            "+ text columns of the peer conditions": lambda: [
                text_columns(read_frame(c))
                for c in chunks  # noqa: B023
            ],
            "+ number line columns (exact.number_column)": lambda: [
                number_columns(text_columns(read_frame(c)))
                for c in chunks  # noqa: B023
            ],
            "per deal: loads_unique + prepare_deal": lambda: per_deal(lines),  # noqa: B023
        }
        best = dict.fromkeys(candidates, float("inf"))
        for _ in range(args.rounds):  # alternating, so that the machine's load hits them alike
            for label, fn in candidates.items():
                best[label] = min(best[label], timed(fn, 1)[0])
        print(
            f"{name}, {n:,} deals in chunks of {args.size} ({refused} of {len(chunks)} chunks "
            f"with a row not fast): {fast:,} fast ({fast / n:.1%})"
        )
        for label, seconds in best.items():
            print(f"  {label:<45} {1e6 * seconds / n:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
