"""Where the time of a whole ``dealdesk evaluate --workers 0`` goes, stage by stage.

    python bench/profile_stages.py                      # peer workload and house book, 20,000 deals
    python bench/profile_stages.py -n 5000 --engine columnar --workloads house

Runs the CLI in this process (``dealdesk.cli.main``, ``--workers 0``, JSONL out) on a workload
written once to a temporary folder, twice per round: unhooked (the reference CPU time, from
``resource.getrusage``), then with timing wrappers on the functions that make up each stage.
Times are exclusive (a hooked function's hooked callees count in their own stage), measured
with ``perf_counter`` and scaled by that pass's CPU/wall ratio; what no hook covers (the
executor, the CLI, the reader's line splitting, progress, the summary) is "other". The
workloads: the peer workload (``/work/shared/peer-workload``, its rulesets, mapped by
``peer_map.py``) and a house book from ``bench/gen_book.py`` under the house policy.

Stages and their hooks (found by name; a missing one is reported and its time lands in other):

- read/parse: ``dealdesk.io.readers._parse_line`` (a JSONL line → a deal)
- prepare: validate+derive ``dealdesk.pipeline.prepare_deal``; unknown keys
  ``dealdesk.pipeline.unknown_fields``; plugin enrich ``Plugins.enrich``; the rest of
  ``Pipeline.prepare``
- engine match: ``Engine.match`` of the engine's class (and ``ColumnarEngine.truth``, the
  vectorised conditions, when the engine is columnar)
- runner/outputs: ``Engine.evaluate`` less the match (the policy runner: hit policies,
  actions, outputs)
- combine/record: ``Combiner.record`` (statuses, approvals, messages, formatted outputs)
- JSON encode: ``dealdesk.cli._encode_line``
- write: the ``write`` calls of ``dealdesk.io.batch.write_texts``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = Path(os.environ.get("PEER_WORKLOAD", "/work/shared/peer-workload"))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stages:
    """Exclusive wall time per stage: a hook's time less its hooked callees'."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)
        self.stack: list[float] = []  # the hooked callees' time of each open hook

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        times, stack, clock = self.times, self.stack, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack.append(0.0)
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = clock() - start
                inner = stack.pop()
                times[stage] += elapsed - inner
                if stack:
                    stack[-1] += elapsed

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed


def hook(stages: Stages, engine: str) -> tuple[list[Callable[[], None]], list[str]]:
    """Install the wrappers; returns the undo calls and the hooks not found."""
    import dealdesk.cli as cli
    import dealdesk.io.batch as batch
    import dealdesk.io.readers as readers
    import dealdesk.pipeline as pipeline
    from dealdesk.combine import Combiner
    from dealdesk.engines import ENGINES, _module
    from dealdesk.engines.base import Engine
    from dealdesk.manager import Plugins

    engine_class = _module(engine).ENGINE if engine in ENGINES else Engine
    targets: list[tuple[Any, str, str]] = [
        (readers, "_parse_line", "read/parse"),
        (pipeline, "prepare_deal", "prepare: validate+derive"),
        (pipeline, "unknown_fields", "prepare: unknown keys"),
        (Plugins, "enrich", "prepare: plugin enrich"),
        (pipeline.Pipeline, "prepare", "prepare: rest"),
        (engine_class, "match", "engine match"),
        (engine_class, "truth", "engine match"),  # the columnar engine's vectorised conditions
        (engine_class, "evaluate", "runner/outputs"),
        (Combiner, "record", "combine/record"),
        (cli, "_encode_line", "JSON encode"),
    ]
    undo: list[Callable[[], None]] = []
    missing: list[str] = []
    for owner, name, stage in targets:
        original = (
            owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        )
        if original is None:
            if not (isinstance(owner, type) and hasattr(owner, name)):
                missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
                continue
            original = getattr(owner, name)
            setattr(owner, name, stages.wrap(stage, original))
            undo.append(lambda o=owner, n=name: delattr(o, n))
            continue
        setattr(owner, name, stages.wrap(stage, original))
        undo.append(lambda o=owner, n=name, f=original: setattr(o, n, f))

    original_write_texts = batch.write_texts
    timed_write = stages.wrap("write", lambda write, text: write(text + "\n"))

    def write_texts(texts: Any, out: Any) -> None:
        write = out.write
        for text in texts:
            timed_write(write, text)

    batch.write_texts = write_texts
    undo.append(lambda: setattr(batch, "write_texts", original_write_texts))
    return undo, missing


def run_cli(args: list[str]) -> None:
    from dealdesk.cli import main

    # the summary goes to stdout when -o names a file: keep it out of the figures' way
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main.main(args, prog_name="dealdesk", standalone_mode=False)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise


def workload(name: str, n: int, folder: Path) -> tuple[Path, list[str]]:
    deals = folder / f"{name}.jsonl"
    if name == "peer":
        with deals.open("w") as out:
            subprocess.run(
                [sys.executable, str(PEER / "peer_map.py"), str(n)],
                cwd=PEER,
                stdout=out,
                check=True,
            )
        return deals, ["-r", str(PEER / "rulesets")]
    subprocess.run(
        [sys.executable, str(HERE / "gen_book.py"), str(n), "-o", str(deals)], check=True
    )
    return deals, []


ORDER = [
    "read/parse",
    "prepare: validate+derive",
    "prepare: unknown keys",
    "prepare: plugin enrich",
    "prepare: rest",
    "engine match",
    "runner/outputs",
    "combine/record",
    "JSON encode",
    "write",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--deals", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engine", default="native")
    parser.add_argument("--workloads", default="peer,house")
    args = parser.parse_args()
    os.environ["DEALDESK_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("DEALDESK_ENGINE", None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.workloads.split(","):
            deals, extra = workload(name, args.deals, folder)
            cli_args = [
                "evaluate",
                str(deals),
                *extra,
                "--workers",
                "0",
                "--engine",
                args.engine,
                "-o",
                str(folder / "out.jsonl"),
            ]
            run_cli(cli_args)  # warm: imports, caches
            one = folder / "one.jsonl"
            with deals.open() as lines, one.open("w") as out:
                out.write(next(lines))
            one_args = [*cli_args]
            one_args[1] = str(one)
            startup: list[float] = []
            plain: list[float] = []
            hooked: dict[str, list[float]] = defaultdict(list)
            for _ in range(args.rounds):
                start = cpu()
                run_cli(one_args)
                startup.append(cpu() - start)
                start = cpu()
                run_cli(cli_args)
                plain.append(cpu() - start)
                stages = Stages()
                undo, missing = hook(stages, args.engine)
                try:
                    start_cpu, start_wall = cpu(), time.perf_counter()
                    run_cli(cli_args)
                    cpu_s, wall_s = cpu() - start_cpu, time.perf_counter() - start_wall
                finally:
                    for fn in reversed(undo):
                        fn()
                scale = cpu_s / wall_s
                covered = 0.0
                for stage in ORDER:
                    value = stages.times.get(stage, 0.0) * scale
                    covered += value
                    hooked[stage].append(value)
                hooked["start-up: plugins, rulesets, engine (1-deal run)"].append(startup[-1])
                hooked["other: executor, CLI, reader lines, summary"].append(
                    cpu_s - covered - startup[-1]
                )
                hooked["whole run, hooked"].append(cpu_s)
            n = args.deals
            best = min(plain)
            print(f"\n{name}: {n:,} deals, engine {args.engine}, --workers 0, {args.rounds} rounds")
            if missing:
                print(f"  hooks not found: {', '.join(missing)}")
            print(f"  {'stage':<48} {'µs/deal':>9} {'share':>7}")
            total_hooked = min(hooked["whole run, hooked"])
            for stage, values in hooked.items():
                value = min(values)
                print(f"  {stage:<48} {value / n * 1e6:9.1f} {value / total_hooked:7.1%}")
            print(
                f"  {'whole run, unhooked (reference)':<48} {best / n * 1e6:9.1f}"
                f"   ({n / best:,.0f} deals per CPU-s, start-up included)"
            )


if __name__ == "__main__":
    main()
