"""Start-up time of the ``dealdesk`` command: wall-clock medians of repeated runs.

For whoever keeps the command quick to start (targets: ``dealdesk --help`` under 60 ms, a
one-deal ``dealdesk evaluate examples/deals/acme-risk.yaml`` under 120 ms). Each command runs
``-n`` times, the commands interleaved so a burst of load on the machine hits them alike, after
one warm-up run that leaves the bytecode caches an installed package has. Prints the median and
the fastest wall time and the median CPU time (user + system) of each, with ``python -c pass``
as the floor no command can go under. ``--imports`` also lists the slowest imports of
``import dealdesk.cli`` (``python -X importtime``).

Run ``python bench/bench_startup.py -n 30``; not part of the test suite. On a busy machine wall
times are noisy: compare commands within one run, and look at the CPU column too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEAL = ROOT / "examples" / "deals" / "acme-risk.yaml"


def dealdesk_command() -> list[str]:
    """The console script of this interpreter's environment (what a user runs), if installed."""
    script = shutil.which("dealdesk", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-c", "import sys; from dealdesk.cli import main; sys.exit(main())"]


def commands() -> dict[str, list[str]]:
    dealdesk = dealdesk_command()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "dealdesk --help": [*dealdesk, "--help"],
        "dealdesk --version": [*dealdesk, "--version"],
        "dealdesk evaluate acme-risk.yaml": [*dealdesk, "evaluate", str(DEAL)],
    }


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # bytecode caches, as a pip-installed package has them
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run; a failing command stops the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def slowest_imports(env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """``(cumulative microseconds, module)`` of the slowest imports of ``import dealdesk.cli``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import dealdesk.cli"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="runs of each command (default 20)")
    parser.add_argument("--imports", action="store_true", help="list the slowest imports too")
    args = parser.parse_args()
    env = environment()
    table = commands()
    for argv in table.values():
        run_once(argv, env)  # warm-up: bytecode caches, the page cache
    walls: dict[str, list[float]] = {name: [] for name in table}
    cpus: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(args.n):
        for name, argv in table.items():
            wall, cpu = run_once(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    print(
        f"{'command':<34} {'median wall':>11} {'min wall':>9} {'median cpu':>11}  ({args.n} runs)"
    )
    for name in table:
        median = statistics.median(walls[name]) * 1000
        fastest = min(walls[name]) * 1000
        cpu = statistics.median(cpus[name]) * 1000
        print(f"{name:<34} {median:>8.1f} ms {fastest:>6.1f} ms {cpu:>8.1f} ms")
    if args.imports:
        print("\nslowest imports of `import dealdesk.cli` (cumulative, one run):")
        for micros, name in slowest_imports(env, 25):
            print(f"  {micros / 1000:>7.1f} ms {name}")


if __name__ == "__main__":
    main()
