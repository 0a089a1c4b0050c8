"""What the columnar engine's vectorised part removes of a deal's cost (issue 8).

    python bench/bench_columnar.py                  # peer workload and house book, 4,096 deals
    python bench/bench_columnar.py --deals 8192 --rounds 9

In one process, per workload (the peer workload mapped by ``peer_map.py`` under its rulesets;
a ``gen_book.py`` book under the house policy): the deals are read and prepared once (validated,
derived, enriched: what every engine is handed), cut into chunks of 256 (the executor's largest),
and each figure is CPU µs per valid deal, the median of ``--rounds`` rounds in alternating
order:

- ``stratum 0, native``: the native engine's compiled match of every policy's first stratum,
  deal by deal (what the vectors replace);
- ``stratum 0, columnar``: :meth:`ColumnarEngine.truth` on each chunk (columns read from the
  prepared deals, the conditions as masks, the fired rules per deal);
- ``engine, native`` / ``engine, columnar``: ``Engine.evaluate`` on each chunk (the match of
  every stratum, hit policies, actions, outputs: the policy runner);
- ``whole run`` (with ``--whole``): ``dealdesk evaluate BOOK --workers 0 -o OUT --engine E`` as
  a child process (CPU from ``getrusage``), read to write, start-up (imports, numpy's too)
  included.

The prepared deals are frozen out of the garbage collector's way (``gc.freeze``): a streaming
run holds one chunk, not thousands of deals for the collector to walk again and again. The
whole runs' records must be byte-identical (checked; exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = Path(os.environ.get("PEER_WORKLOAD", "/work/shared/peer-workload"))
CHUNK = 256


def book(name: str, n: int) -> tuple[list[str], list[str] | None]:
    if name == "peer":
        text = subprocess.run(
            [sys.executable, str(PEER / "peer_map.py"), str(n)],
            cwd=PEER,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return text.splitlines(), [str(PEER / "rulesets")]
    text = subprocess.run(
        [sys.executable, str(HERE / "gen_book.py"), str(n)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return text.splitlines(), None


def cpu_of(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def whole_run(path: str, rulesets: list[str] | None, engine: str, out: str) -> float:
    """CPU seconds of ``dealdesk evaluate`` as a child process (start-up included)."""
    args = [str(Path(sys.executable).parent / "dealdesk"), "evaluate", path, "--workers", "0"]
    args += ["--engine", engine, "-o", out]
    for folder in rulesets or ():
        args += ["-r", folder]
    env = {**os.environ, "DEALDESK_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("DEALDESK_ENGINE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, env=env, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: some deal is invalid
        raise SystemExit(f"{' '.join(args)}: {done.stderr.decode()[-300:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(name: str, n: int, rounds: int, whole: bool) -> bool:
    from dealdesk import app, jsoncodec
    from dealdesk.engines.native import NativeEngine

    lines, rulesets = book(name, n)
    columnar = app.build(rulesets, engine="columnar", autoload=False)
    pipeline = columnar.pipeline
    prepared = [pipeline.prepare(jsoncodec.loads(line)) for line in lines]
    deals = [p.data for p in prepared if p.data is not None]
    chunks = [deals[i : i + CHUNK] for i in range(0, len(deals), CHUNK)]
    engine = pipeline.engine
    native = NativeEngine(columnar.policy_set, columnar.plugins.actions)
    # the prepared deals stay alive for every round: out of the collector's way, or its full
    # collections (walking them all) would weigh on each figure as they never do in a
    # streaming run, which holds one chunk
    gc.collect()
    gc.freeze()
    policies = list(columnar.policy_set.policies)

    def native_first_stratum() -> None:
        strata = [native.strata[p][0] for p in policies]
        for chunk in chunks:
            for deal in chunk:
                for match in strata:
                    match(deal)

    def columnar_first_stratum() -> None:
        for chunk in chunks:
            engine.truth(chunk)

    def native_engine() -> None:
        for chunk in chunks:
            native.evaluate(chunk)

    def columnar_engine() -> None:
        for chunk in chunks:
            engine.evaluate(chunk)

    figures: dict[str, Callable[[], Any]] = {
        "stratum 0, native": native_first_stratum,
        "stratum 0, columnar": columnar_first_stratum,
        "engine, native": native_engine,
        "engine, columnar": columnar_engine,
    }
    times: dict[str, list[float]] = {label: [] for label in figures}
    for index in range(rounds):
        order = list(figures)
        if index % 2:
            order.reverse()
        for label in order:
            times[label].append(cpu_of(figures[label]))

    same = True
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.jsonl")
        Path(path).write_text("\n".join(lines) + "\n")
        outputs = {}
        engines = ("native", "columnar")
        for index in range(rounds if whole else 1):  # alternating, as the rounds above
            for engine_name in engines if index % 2 == 0 else engines[::-1]:
                out = os.path.join(tmp, f"{engine_name}.jsonl")
                cpu = whole_run(path, rulesets, engine_name, out)
                outputs[engine_name] = Path(out).read_bytes()
                if whole:
                    times.setdefault(f"whole run, {engine_name}", []).append(cpu)
        same = outputs["native"] == outputs["columnar"]

    per_deal = {
        label: statistics.median(values) / len(deals) * 1e6 for label, values in times.items()
    }
    print(
        f"\n{name}: {len(deals):,} valid deals of {len(lines):,}, chunks of {CHUNK}, {rounds} rounds"
    )
    for label, value in per_deal.items():
        divisor = len(lines) if label.startswith("whole") else len(deals)
        value = statistics.median(times[label]) / divisor * 1e6
        print(f"  {label:<24} {value:8.2f} µs per deal")
    saved = per_deal["stratum 0, native"] - per_deal["stratum 0, columnar"]
    engine_saved = per_deal["engine, native"] - per_deal["engine, columnar"]
    print(
        f"  vectorised first stratum saves {saved:+.2f} µs per deal "
        f"({saved / per_deal['engine, native']:+.1%} of the native engine's evaluate; "
        f"the engine as a whole {engine_saved:+.2f} µs, {engine_saved / per_deal['engine, native']:+.1%})"
    )
    print(f"  whole-run records byte-identical: {'yes' if same else 'NO'}")
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="peer,house")
    parser.add_argument("--whole", action="store_true", help="also time the whole CLI run")
    args = parser.parse_args()
    os.environ["DEALDESK_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    ok = True
    for name in args.workloads.split(","):
        ok &= measure(name, args.deals, args.rounds, args.whole)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
