"""Batch benchmark of the whole ``dealdesk evaluate`` CLI on a generated book (issue 6, part 8).

    python bench/bench_batch.py [--deals 10000] [--rounds 5] [--no-million]

Prints, from one run:

- throughput of ``dealdesk evaluate BOOK -o OUT --workers W`` for W = 0, 1, 2: deals per wall
  second and deals per CPU-second (the CLI and its worker processes: user + sys from
  ``getrusage(RUSAGE_CHILDREN)`` before and after each run), medians over alternating rounds,
  and the ratios 2 vs 1 and 1 vs 0; the records of every W must be byte-identical;
- peak RSS of ``gen_book.py N | dealdesk evaluate - --workers 2 -o /dev/null`` for N = the book
  size and 1,000,000, and their ratio: ``ru_maxrss`` from ``wait4`` on that run's ``dealdesk``
  process, which covers it and the workers it reaped (the largest single process, not a sum;
  the generator feeding the pipe is not counted);
- the time from starting ``dealdesk evaluate BOOK`` (default workers, stdout to /dev/null,
  stderr on a pseudo-terminal) to the first progress line that shows ``N deals`` with N > 0.

Any run that exits non-zero stops the benchmark with its command and last error line.
The children run the ``dealdesk`` installed beside this Python (or ``--dealdesk``), with
``PYTHONDONTWRITEBYTECODE`` unset, ``DEALDESK_ENGINE`` unset and plugin autoload off.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import platform
import pty
import re
import resource
import select
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
GEN_BOOK = HERE / "gen_book.py"
sys.path.insert(0, str(HERE))
from gen_book import write_book  # noqa: E402  (a script beside this one, not a package)

WORKERS = (0, 1, 2)
MILLION = 1_000_000
# tqdm and the coming progress bar show "1,234 deals" / "1234 deals"; 0 deals is not progress
PROGRESS = re.compile(r"\b([1-9][\d,]*) deals\b")
PROGRESS_TIMEOUT = 120.0
TARGETS = {
    "2 vs 1": ">= 1.8",
    "1 vs 0": ">= 0.9",
    "rss": "<= 1.2",
    "progress": "<= 1 s",
}


class BenchError(Exception):
    """A run failed: the message says which and why, in one line."""


@dataclass
class Samples:
    """The measurements of one contender over the rounds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------------------------
# running the CLI


def dealdesk_command(given: str | None) -> list[str]:
    """The CLI to measure: ``--dealdesk`` (split like a shell would), else the one beside
    ``sys.executable``, else the one on PATH."""
    if given:
        return shlex.split(given)
    script = Path(sys.executable).parent / "dealdesk"
    if script.exists():
        return [str(script)]
    found = shutil.which("dealdesk")
    if found:
        return [found]
    raise BenchError("no dealdesk beside this Python or on PATH; give --dealdesk PATH")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DEALDESK_ENGINE", None)  # the default engine, never the caller's choice
    env["DEALDESK_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the built-in plugins only
    # an installed dealdesk has its bytecode written; without it every run compiles it again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def last_line(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]
    return lines[-1][:300] if lines else "(no message)"


def check_exit(code: int, cmd: list[str], stderr: Path) -> None:
    if code != 0:
        raise BenchError(f"`{shlex.join(cmd)}` exited with {code}: {last_line(stderr)}")


def timed_run(cmd: list[str], env: dict[str, str], tmp: Path) -> tuple[float, float]:
    """Run ``cmd`` to the end; (wall seconds, CPU seconds of it and every process it reaped)."""
    err = tmp / "run.stderr"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(tmp / "run.stdout", "wb") as out_f, open(err, "wb") as err_f:
        code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    check_exit(code, cmd, err)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def piped_rss(
    dealdesk: list[str], n: int, seed: int, env: dict[str, str], tmp: Path
) -> tuple[int, float]:
    """``gen_book.py n | dealdesk evaluate - --workers 2 -o /dev/null``; (peak RSS KiB of the
    dealdesk process tree, wall seconds)."""
    gen_cmd = [sys.executable, str(GEN_BOOK), str(n), "--seed", str(seed)]
    cmd = [*dealdesk, "evaluate", "-", "--workers", "2", "-o", "/dev/null"]
    gen_err, err = tmp / "gen.stderr", tmp / "piped.stderr"
    start = time.perf_counter()
    with open(gen_err, "wb") as gen_err_f, open(err, "wb") as err_f:
        gen = subprocess.Popen(gen_cmd, env=env, stdout=subprocess.PIPE, stderr=gen_err_f)
        assert gen.stdout is not None
        try:
            proc = subprocess.Popen(
                cmd, env=env, stdin=gen.stdout, stdout=subprocess.DEVNULL, stderr=err_f
            )
        finally:
            gen.stdout.close()  # dealdesk holds the only reading end: gen sees it go away
        # wait4 gives this process's own usage, ru_maxrss the largest of it and its workers
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        gen.wait()
    wall = time.perf_counter() - start
    check_exit(proc.returncode, cmd, err)
    check_exit(gen.returncode, gen_cmd, gen_err)
    return usage.ru_maxrss, wall


def first_progress(
    dealdesk: list[str], book: Path, env: dict[str, str]
) -> tuple[float | None, float, str]:
    """Run ``dealdesk evaluate BOOK`` with stderr on a pseudo-terminal and stdout to /dev/null;
    (seconds from the start to the first "N deals" it shows, or None; wall seconds of the whole
    run; the first progress text seen)."""
    cmd = [*dealdesk, "evaluate", str(book)]
    master, slave = pty.openpty()
    # a terminal 120 columns wide, so a bar sized to it has room for its counts
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**env, "TERM": env.get("TERM") or "xterm"}
    tail = b""
    transcript = bytearray()
    first: float | None = None
    seen = ""
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=devnull, stderr=slave, close_fds=True
        )
    os.close(slave)
    try:
        while True:
            if time.perf_counter() - start > PROGRESS_TIMEOUT:
                proc.kill()
                raise BenchError(f"`{shlex.join(cmd)}` ran over {PROGRESS_TIMEOUT:.0f} s")
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side of the terminal
                break
            if not data:
                break
            if len(transcript) < 65536:
                transcript += data
            if first is None:
                text = (tail + data).decode("utf-8", "replace")
                match = PROGRESS.search(text)
                if match:
                    first = time.perf_counter() - start
                    seen = text[max(0, match.start() - 40) : match.end() + 40]
                tail = (tail + data)[-64:]  # a count split across two reads still matches
        code = proc.wait()
        wall = time.perf_counter() - start
    finally:
        os.close(master)
    if code != 0:
        message = [x for x in re.split(r"[\r\n]", transcript.decode(errors="replace")) if x.strip()]
        raise BenchError(
            f"`{shlex.join(cmd)}` (stderr on a terminal) exited with {code}: "
            f"{message[-1][:300] if message else '(no message)'}"
        )
    return first, wall, " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen).split())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


# ---------------------------------------------------------------------------------------------
# the benchmark


def ratio(a: float, b: float) -> float:
    return a / b if b and a == a and b == b else float("nan")


def fmt(x: float, spec: str = ",.0f") -> str:
    return "n/a" if x != x else format(x, spec)


def mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


def machine() -> str:
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return f"nproc {os.cpu_count()}, Python {platform.python_version()}, load average {load}"


def run(args: argparse.Namespace) -> int:
    dealdesk = dealdesk_command(args.dealdesk)
    extra = shlex.split(args.cli_args)
    env = child_env()
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch-"))
    try:
        return measure(args, dealdesk, extra, env, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measure(
    args: argparse.Namespace,
    dealdesk: list[str],
    extra: list[str],
    env: dict[str, str],
    tmp: Path,
) -> int:
    n = args.deals
    began = time.perf_counter()
    print(
        f"bench_batch: {n:,} generated deals (gen_book.py, seed {args.seed}), {args.rounds} rounds"
    )
    print(f"dealdesk: {shlex.join(dealdesk)}{' ' + shlex.join(extra) if extra else ''}")
    print(f"machine: {machine()}")
    book = tmp / "book.jsonl"
    with open(book, "w", encoding="utf-8", newline="\n") as out:
        write_book(n, args.seed, out)
    small = tmp / "small.jsonl"
    with open(small, "w", encoding="utf-8", newline="\n") as out:
        write_book(20, args.seed, out)

    def evaluate_cmd(workers: int, source: Path, out: Path) -> list[str]:
        return [
            *dealdesk,
            "evaluate",
            str(source),
            "-o",
            str(out),
            "--workers",
            str(workers),
            *extra,
        ]

    # a short run of each first: a refused flag fails in a second, not after minutes, and the
    # bytecode caches are warm before anything is timed
    for workers in args.workers:
        timed_run(evaluate_cmd(workers, small, tmp / "small.out.jsonl"), env, tmp)

    samples = {workers: Samples() for workers in args.workers}
    digests: dict[int, set[str]] = {workers: set() for workers in args.workers}
    progress: list[float] = []
    progress_note = ""

    def throughput(workers: int) -> Callable[[], None]:
        def go() -> None:
            out = tmp / f"out-{workers}.jsonl"
            wall, cpu = timed_run(evaluate_cmd(workers, book, out), env, tmp)
            records = count_lines(out)
            if records != n:
                raise BenchError(f"--workers {workers}: {records:,} records for {n:,} deals")
            samples[workers].wall.append(wall)
            samples[workers].cpu.append(cpu)
            digests[workers].add(sha256(out))

        return go

    def progress_run() -> None:
        nonlocal progress_note
        first, wall, seen = first_progress(dealdesk, book, env)
        if first is None:
            raise BenchError(
                f"`dealdesk evaluate {book.name}` on a terminal showed no 'N deals' progress "
                f"in its {wall:.1f} s run"
            )
        if first > 0.9 * wall:
            progress_note = (
                f"the first 'N deals' came at {first:.2f} s of a {wall:.2f} s run: "
                "is it the progress bar, or only the end-of-run summary?"
            )
        progress.append(first)
        if seen and not progress_note:
            progress_note = f"first seen: {seen!r}"

    contenders: list[tuple[str, Callable[[], None]]] = [
        (f"workers {w}", throughput(w)) for w in args.workers
    ]
    if not args.no_progress:
        contenders.append(("progress", progress_run))
    for round_ in range(args.rounds):
        # every round runs every contender once, the order rotated by one each round, so slow
        # drifts of the machine's load hit them all alike
        shift = round_ % len(contenders)
        for name, go in contenders[shift:] + contenders[:shift]:
            print(f"  round {round_ + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            go()

    rss: dict[int, tuple[int, float]] = {}
    sizes = [n] if args.no_million else [n, args.million]
    if not args.no_rss:
        for size in sizes:
            print(f"  peak RSS: {size:,} deals, piped", file=sys.stderr, flush=True)
            rss[size] = piped_rss(dealdesk, size, args.seed, env, tmp)

    print()
    print(f"Throughput, `dealdesk evaluate BOOK -o OUT --workers W` on {n:,} deals")
    print(f"(median over {args.rounds} rounds; min-max in brackets)")
    header = ("workers", "deals/s (wall)", "deals per CPU-s", "wall s", "CPU s")
    rows = []
    rates: dict[int, tuple[float, float]] = {}
    for workers, s in samples.items():
        wall_rates = [n / x for x in s.wall]
        cpu_rates = [n / x for x in s.cpu if x > 0]
        rates[workers] = (s.median(wall_rates), s.median(cpu_rates))
        rows.append(
            (
                str(workers),
                f"{fmt(rates[workers][0])} [{fmt(min(wall_rates))}-{fmt(max(wall_rates))}]",
                f"{fmt(rates[workers][1])} [{fmt(min(cpu_rates))}-{fmt(max(cpu_rates))}]",
                fmt(s.median(s.wall), ".2f"),
                fmt(s.median(s.cpu), ".2f"),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    for a, b in ((2, 1), (1, 0)):
        if a in rates and b in rates:
            print(
                f"  {a} vs {b} workers: {ratio(rates[a][0], rates[b][0]):.2f}x deals/s (wall), "
                f"{ratio(rates[a][1], rates[b][1]):.2f}x deals per CPU-s   "
                f"(target: wall {TARGETS[f'{a} vs {b}']})"
            )
    distinct = set().union(*digests.values())
    identical = len(distinct) == 1
    if identical:
        print(f"  records: byte-identical for every run (sha256 {next(iter(distinct))[:16]}...)")
    else:
        print(
            "  records: DIFFER between runs: "
            + "; ".join(
                f"--workers {w}: {', '.join(sorted(x[:12] for x in d))}" for w, d in digests.items()
            )
        )

    if rss:
        print()
        print("Peak RSS, `gen_book.py N | dealdesk evaluate - --workers 2 -o /dev/null`")
        print("(ru_maxrss from wait4 on dealdesk: the largest of it and its reaped workers)")
        for size, (kib, wall) in rss.items():
            print(
                f"  {size:>9,} deals: {mib(kib):>10}   "
                f"({wall:.1f} s wall, {size / wall:,.0f} deals/s)"
            )
        if args.million in rss:
            print(
                f"  {args.million:,} vs {n:,}: {ratio(rss[args.million][0], rss[n][0]):.2f}x "
                f"(target {TARGETS['rss']})"
            )

    if progress:
        print()
        print(
            "First progress update, `dealdesk evaluate BOOK` "
            "(stderr on a terminal, stdout to /dev/null)"
        )
        print(
            f"  {statistics.median(progress):.2f} s median "
            f"[{min(progress):.2f}-{max(progress):.2f}] "
            f"from start to the first 'N deals' (target {TARGETS['progress']})"
        )
        if progress_note:
            print(f"  {progress_note}")
    print()
    print(f"took {time.perf_counter() - began:.0f} s; {machine()}")
    return 0 if identical else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deals", type=int, default=10_000, help="deals in the book (default 10000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="gen_book.py seed (default 0)")
    parser.add_argument(
        "--no-million", action="store_true", help="skip the 1,000,000-deal peak-RSS run"
    )
    parser.add_argument(
        "--million", type=int, default=MILLION, metavar="N", help="size of the large RSS run"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip both peak-RSS runs")
    parser.add_argument("--no-progress", action="store_true", help="skip the progress timing")
    parser.add_argument(
        "--workers",
        default=",".join(map(str, WORKERS)),
        metavar="LIST",
        help="worker counts to measure (default 0,1,2)",
    )
    parser.add_argument(
        "--dealdesk", metavar="PATH", help="the CLI to measure (default: beside this Python)"
    )
    parser.add_argument(
        "--cli-args", default="", metavar="'...'", help="extra arguments for the timed runs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    try:
        args.workers = [int(x) for x in args.workers.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--workers: a comma-separated list of numbers, not {args.workers!r}")
    if args.deals < 1 or args.rounds < 1 or not args.workers:
        parser.error("--deals and --rounds must be at least 1, --workers not empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # line by line, so the report and the progress ticks on stderr interleave in order
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench_batch: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
