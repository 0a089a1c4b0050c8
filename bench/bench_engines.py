"""dealdesk against its own engines and against the peers, in one run: deals per CPU-second.

Four parts, all in one process tree, the timed contenders in alternating rounds (every round runs
every contender once, in a rotated order; the report gives medians):

a) the 24-rule peer workload (/work/shared/peer-workload) through the whole
   ``dealdesk evaluate DEALS.jsonl -r RULESETS -o OUT.jsonl``, once per engine (``--engine
   native|durable`` when the CLI has the option; otherwise the default engine, labelled), as a
   subprocess: CPU = user+sys from ``getrusage(RUSAGE_CHILDREN)`` deltas, peak RSS from
   ``wait4``. Run on N, N/4 and 1 deals: the RSS ratio N : N/4 (memory flat with deals), the
   start-up cost, and the rate without it;
b) the peers on the same policy over flat, pre-validated dicts, from the peer harness
   (``engines.FACTORIES[name]()`` → ``run(deals)``): zen-engine evaluated by key, the
   durable_rules raw C loop, plain Python predicates. Each runs in a child process of its own
   (so one contender's heap does not perturb the next); CPU = ``time.process_time()`` around
   ``run(deals)`` only;
c) the house policy (default rulesets, no ``-r``) through the whole ``dealdesk evaluate`` on each
   engine, on a book made by varying the example deals as bench_evaluate.py does;
d) per-stage microseconds per deal inside dealdesk (read, validate+derive, evaluate/match,
   actions/outputs, record/messages, write), in a child process per engine and workload, by
   timing the stages' functions through wrappers; a hook that cannot be found is reported and
   its time shows up as "other".

Run ``python bench/bench_engines.py`` (about 5-10 minutes on 2 shared cores) or ``--quick``
(under a minute). Not part of the test suite; bench/README.md explains every figure.
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import importlib
import inspect
import itertools
import json
import os
import platform
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_PEER_DIR = Path(os.environ.get("DEALDESK_PEER_WORKLOAD", "/work/shared/peer-workload"))
DEFAULT_PEERS = ("zen_key", "durable_rules_raw_c", "python")
PEER_LABELS = {
    "zen_key": "zen-engine, evaluated by key",
    "durable_rules_raw_c": "durable_rules, raw loop on the C extension",
    "python": "plain Python predicates",
}
ZEN = "zen_key"  # the peer every ratio is taken against
BASELINE = "baseline"  # --baseline: an earlier dealdesk, measured in the same rounds


# ---------------------------------------------------------------------------------------------
# shared helpers


def fired_digest(pairs: Iterable[tuple[int, Iterable[str]]]) -> str:
    """sha256 over ``index:sorted fired rule ids`` per deal: the same work, engine-independent."""
    h = hashlib.sha256()
    for index, rules in pairs:
        h.update(f"{index}:{','.join(sorted(rules))}\n".encode())
    return h.hexdigest()[:16]


def dealdesk_fired_digest(path: Path) -> str:
    """:func:`fired_digest` of a dealdesk JSONL output of the peer workload (ids ``P-<i>``)."""

    def pairs() -> Iterable[tuple[int, list[str]]]:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                index = int(str(record["deal_id"]).split("-", 1)[1])
                policies = record.get("policies") or {}
                yield index, [rule for p in policies.values() for rule in p.get("fired", [])]

    return fired_digest(pairs())


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def peer_modules(peer_dir: Path) -> tuple[Any, Any, Any]:
    """The peer harness's ``engines``, ``gen_deals`` and ``peer_map`` modules."""
    if str(peer_dir) not in sys.path:
        sys.path.insert(0, str(peer_dir))
    return (
        importlib.import_module("engines"),
        importlib.import_module("gen_deals"),
        importlib.import_module("peer_map"),
    )


# ---------------------------------------------------------------------------------------------
# child processes (started by the parent with --child; they print one JSON line)


def child_peer(args: argparse.Namespace) -> dict[str, Any]:
    """(b) one peer on N flat deals; CPU of ``run(deals)`` only."""
    engines, gen, _ = peer_modules(Path(args.peer_dir))
    deals = gen.gen_deals(args.deals)
    run = engines.FACTORIES[args.name]()
    gc.collect()
    started = time.process_time()
    outputs = run(deals)
    cpu = time.process_time() - started
    digest = fired_digest(
        (d["id"], [r["rule"] for r in recs]) for d, recs in zip(deals, outputs, strict=True)
    )
    return {"cpu": cpu, "deals": len(deals), "fired": digest}


class StageTimer:
    """Exclusive wall time per stage and per hook: a hooked call's time minus its hooked callees'.

    Wall time (``perf_counter``, ~0.15 µs a read) rather than CPU time (``process_time`` is a
    system call, ~1 µs, which would add ~10% to a deal); the caller scales it to CPU time.
    """

    def __init__(self) -> None:
        self.exclusive: dict[str, float] = defaultdict(float)
        self.by_hook: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._stack: list[list[float]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, stage: str, hook: str, func: Callable[..., Any]) -> Callable[..., Any]:
        stack, exclusive, by_hook = self._stack, self.exclusive, self.by_hook
        calls, clock = self.calls, time.perf_counter

        @functools.wraps(func)
        def timed(*a: Any, **k: Any) -> Any:
            inner = [0.0]
            stack.append(inner)
            started = clock()
            try:
                return func(*a, **k)
            finally:
                elapsed = clock() - started
                stack.pop()
                own = elapsed - inner[0]
                exclusive[stage] += own
                by_hook[hook] += own
                calls[hook] += 1
                if stack:
                    stack[-1][0] += elapsed

        return timed

    def patch(self, owner: Any, attr: str, value: Any) -> None:
        """Set ``owner.attr`` (a class or a module) to ``value`` until :meth:`restore`."""
        self._undo.append((owner, attr, vars(owner)[attr]))
        setattr(owner, attr, value)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()


# (stage, hook): "Class.method" or "function", found by name wherever it lives in dealdesk.*.
# Nested hooks are fine (times are exclusive). Engines added later are found by the scan below.
STAGE_HOOKS = [
    ("validate+derive", "prepare_deal"),
    ("validate+derive", "check_fact_types"),
    ("validate+derive", "Plugins.enrich"),
    ("validate+derive", "Pipeline.prepare"),
    ("evaluate/match", "NativeEngine.match"),
    ("evaluate/match", "DurableEngine.match"),
    ("evaluate/match", "FactPlan.build"),
    ("evaluate/match", "DurableDriver.match"),
    ("actions/outputs", "PolicyRunner.run_policy"),
    ("record/messages", "Combiner.record"),
    ("record/messages", "Pipeline.render_clauses"),
    ("record/messages", "Pipeline.finish"),
]
# methods of any other engine-like class under dealdesk.engines (its name ends with one of
# ENGINE_CLASSES, so per-node classes of a compiled tree are not wrapped) count as evaluate/match
ENGINE_CLASSES = ("Engine", "Driver", "Matcher", "Runner")
ENGINE_METHODS = (
    "match",
    "match_chunk",
    "run",
    "run_chunk",
    "run_policy",
    "run_policies",
    "evaluate",
    "evaluate_chunk",
)
STAGES = (
    "read",
    "validate+derive",
    "evaluate/match",
    "actions/outputs",
    "record/messages",
    "other (glue, unhooked)",
    "write",
)


def _dealdesk_modules() -> list[Any]:
    import pkgutil

    import dealdesk

    modules = [dealdesk]
    for info in pkgutil.walk_packages(dealdesk.__path__, "dealdesk."):
        if info.name.startswith(("dealdesk.examples", "dealdesk.rulesets")):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # a module that does not import here is not one we time
            continue
    return modules


def install_hooks(timer: StageTimer) -> tuple[list[str], list[str]]:
    """Wrap every stage hook that exists; returns (installed, missing) hook names."""
    modules = _dealdesk_modules()
    installed: list[str] = []
    missing: list[str] = []
    hooked_classes: set[type] = set()

    def defined(name: str) -> Any:
        for module in modules:
            obj = vars(module).get(name)
            if obj is not None and getattr(obj, "__module__", None) == module.__name__:
                return obj
        return None

    def hook_method(stage: str, cls: type, method: str) -> bool:
        raw = cls.__dict__.get(method)
        if not inspect.isfunction(raw) or inspect.isgeneratorfunction(raw):
            return False
        name = f"{cls.__name__}.{method}"
        timer.patch(cls, method, timer.wrap(stage, name, raw))
        installed.append(f"{name} [{stage}]")
        return True

    for stage, hook in STAGE_HOOKS:
        if "." in hook:
            class_name, method = hook.split(".", 1)
            cls = defined(class_name)
            if isinstance(cls, type) and hook_method(stage, cls, method):
                hooked_classes.add(cls)
            else:
                missing.append(hook)
            continue
        func = defined(hook)
        if not inspect.isfunction(func) or inspect.isgeneratorfunction(func):
            missing.append(hook)
            continue
        wrapped = timer.wrap(stage, hook, func)
        for module in modules:  # every module that imported it by name calls it by that name
            for attr, value in list(vars(module).items()):
                if value is func:
                    timer.patch(module, attr, wrapped)
        installed.append(f"{hook} [{stage}]")

    for module in modules:  # engines the table above does not know yet (native, columnar, ...)
        if not module.__name__.startswith("dealdesk.engines"):
            continue
        for obj in list(vars(module).values()):
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and obj.__name__.endswith(ENGINE_CLASSES)
                and obj not in hooked_classes
            ):
                for method in ENGINE_METHODS:
                    hook_method("evaluate/match", obj, method)
                hooked_classes.add(obj)
    return installed, missing


def child_stages(args: argparse.Namespace) -> dict[str, Any]:
    """(d) per-stage µs per deal for one engine (DEALDESK_ENGINE) and one workload."""
    result: dict[str, Any] = {"notes": []}
    notes = result["notes"]
    from dealdesk import app

    rulesets = [args.rulesets] if args.rulesets else None
    started = time.process_time()
    application = app.build(rulesets, autoload=False)
    _ = application.pipeline  # the engine is built here, as start-up
    result["startup_ms"] = (time.process_time() - started) * 1000
    evaluate_one = application.evaluate_source

    def read() -> list[Any]:
        return list(itertools.islice(application.read([args.file]), args.limit))

    sources = read()
    n = len(sources)
    result["deals"] = n
    for source in sources[:200]:  # warm-up: template and engine caches, first-use imports
        evaluate_one(source)
    writer = getattr(application, "writers", {}).get("jsonl")
    if writer is None:
        notes.append("no jsonl writer found on the App: write not measured")
    out_path = Path(args.tmp) / f"stages-{os.getpid()}.jsonl"

    # repeats of: read; evaluate unhooked (the reference total); evaluate hooked; write.
    # Medians over the repeats, each stage on its own.
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, args.repeats)):
        run: dict[str, Any] = {}
        cpu = time.process_time()
        sources = read()
        read_cpu = time.process_time() - cpu

        cpu = time.process_time()
        records = [evaluate_one(s) for s in sources]
        run["plain_cpu_us"] = (time.process_time() - cpu) / n * 1e6

        timer = StageTimer()
        try:
            installed, missing = install_hooks(timer)
        except Exception as exc:  # degrade: totals only
            timer.restore()
            installed, missing = [], [f"(hook installation failed: {type(exc).__name__}: {exc})"]
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            records = [evaluate_one(s) for s in sources]
            hooked_wall = time.perf_counter() - wall
            hooked_cpu = time.process_time() - cpu
        finally:
            timer.restore()
        result["installed"], result["missing"] = installed, missing
        run["hooked_cpu_us"] = hooked_cpu / n * 1e6

        write_cpu = float("nan")
        if writer is not None:
            with open(out_path, "w", encoding="utf-8", newline="") as out:
                cpu = time.process_time()
                writer(records, out)
                write_cpu = time.process_time() - cpu
            out_path.unlink()

        # the hooks time wall clock; on a shared machine part of it is time spent preempted, so
        # each stage is scaled by the pass's CPU/wall ratio (preemption spread evenly)
        scale = hooked_cpu / hooked_wall if hooked_wall > 0 else 1.0
        run["cpu_per_wall"] = scale
        stages = {"read": read_cpu / n * 1e6}
        for stage in STAGES[1:5]:
            stages[stage] = timer.exclusive.get(stage, 0.0) * scale / n * 1e6
        hooked = sum(timer.exclusive.values()) * scale / n * 1e6
        stages["other (glue, unhooked)"] = max(0.0, run["hooked_cpu_us"] - hooked)
        stages["write"] = write_cpu / n * 1e6
        run["stages"] = stages
        run["hooks"] = {
            hook: {"calls": timer.calls[hook] / n, "us": us * scale / n * 1e6}
            for hook, us in timer.by_hook.items()
        }
        runs.append(run)

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    for key in ("plain_cpu_us", "hooked_cpu_us", "cpu_per_wall"):
        result[key] = median([r[key] for r in runs])
    result["stages"] = {
        stage: median([r["stages"][stage] for r in runs]) for stage in runs[0]["stages"]
    }
    hooks = {
        hook: {
            "calls": runs[-1]["hooks"][hook]["calls"],
            "us": median([r["hooks"][hook]["us"] for r in runs if hook in r["hooks"]]),
        }
        for hook in runs[-1]["hooks"]
    }
    result["hooks"] = dict(sorted(hooks.items(), key=lambda kv: -kv[1]["us"]))
    result["repeats"] = len(runs)
    result["statuses"] = dict(Counter(r.get("status") for r in records))

    if args.cprofile:
        import cProfile
        import io
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        for s in sources:
            evaluate_one(s)
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.cprofile)
        result["cprofile"] = text.getvalue()
    return result


# ---------------------------------------------------------------------------------------------
# the parent: inputs, subprocesses, rounds


@dataclass
class Sample:
    cpu: float  # CPU seconds of the measured work
    deals: int
    rss_kib: int = 0  # peak RSS of the child process (ru_maxrss, KiB on Linux)
    ok: bool = True
    note: str = ""
    out_sha: str = ""
    fired: str = ""

    @property
    def rate(self) -> float:
        return self.deals / self.cpu if self.ok and self.cpu > 0 else float("nan")


@dataclass
class Contender:
    key: str
    label: str
    run: Callable[[bool], Sample]  # run(first_round) -> Sample
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str = "rate") -> float:
        values = [getattr(s, attr) for s in self.samples if s.ok]
        return statistics.median(values) if values else float("nan")

    def spread(self) -> tuple[float, float]:
        values = [s.rate for s in self.samples if s.ok]
        return (min(values), max(values)) if values else (float("nan"), float("nan"))


def run_child(
    cmd: list[str], env: dict[str, str], tmp: Path, tag: str
) -> tuple[int, float, int, str, str]:
    """Run ``cmd``; (exit code, CPU seconds from RUSAGE_CHILDREN deltas, peak RSS KiB, stdout,
    stderr). Output goes to files, so nothing can block on a pipe."""
    out_file, err_file = tmp / f"{tag}.stdout", tmp / f"{tag}.stderr"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_file, "wb") as out, open(err_file, "wb") as err:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stdout = out_file.read_text(errors="replace")
    stderr = err_file.read_text(errors="replace")
    return process.returncode, cpu, usage.ru_maxrss, stdout, stderr


def tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def dealdesk_command() -> list[str]:
    script = Path(sys.executable).parent / "dealdesk"
    if script.exists():
        return [str(script)]
    found = shutil.which("dealdesk")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from dealdesk.cli import main; sys.exit(main())"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DEALDESK_ENGINE", None)  # the engine is chosen per run, never inherited
    env["DEALDESK_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the built-in plugins only
    # an installed dealdesk has its bytecode written (pip compiles it); without it every run
    # would compile the whole package again (~80 ms) and measure that
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def write_peer_book(peer_dir: Path, n: int, path: Path) -> None:
    _, gen, peer_map = peer_modules(peer_dir)
    with open(path, "w", encoding="utf-8") as out:
        for deal in gen.gen_deals(n):
            out.write(peer_map.to_jsonl_line(deal) + "\n")


def write_house_book(n: int, path: Path) -> int:
    """The example deals varied as bench_evaluate.py varies them (ids ``B-<i>``, unique)."""
    sys.path.insert(0, str(HERE))
    from bench_evaluate import sample_deals, vary

    rng = random.Random(7)
    base = sample_deals()
    if not base:
        raise ValueError("no example deals found (bench_evaluate.EXAMPLES)")
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps(vary(base[i % len(base)], rng, i), default=str) + "\n")
    return len(base)


def head(src: Path, dst: Path, n: int) -> None:
    with open(src, encoding="utf-8") as lines, open(dst, "w", encoding="utf-8") as out:
        out.writelines(itertools.islice(lines, n))


def detect_engines(
    cli: list[str], wanted: list[str], probe: Path, rulesets: Path | None, tmp: Path
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """[(engine name, extra CLI args)] that run, and notes on the ones that do not."""
    env = child_env()
    notes: list[str] = []
    help_text = subprocess.run(
        [*cli, "evaluate", "--help"], env=env, capture_output=True, text=True
    ).stdout
    if "--engine" not in help_text:
        notes.append(
            "`dealdesk evaluate` has no --engine option yet: only its default engine (durable) "
            "is measured, labelled durable*"
        )
        return [("durable*", [])], notes
    available = []
    for name in wanted:
        extra = ["--engine", name]
        cmd = [*cli, "evaluate", str(probe)]
        if rulesets:
            cmd += ["-r", str(rulesets)]
        cmd += [*extra, "-o", str(tmp / "probe-out.jsonl")]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode == 0:
            available.append((name, extra))
        else:
            notes.append(f"--engine {name}: not available ({tail(done.stderr)})")
    if not available:
        notes.append("no engine named in --engines runs: measuring the default engine, as durable*")
        available.append(("durable*", []))
    return available, notes


def cli_contender(
    cli: list[str],
    workload: str,
    engine: str,
    extra: list[str],
    deals_file: Path,
    n: int,
    rulesets: Path | None,
    tmp: Path,
    passthrough: list[str],
    check_fired: bool,
) -> Contender:
    out = tmp / f"out-{workload}-{engine.strip('*')}-{n}.jsonl"
    cmd = [*cli, "evaluate", str(deals_file)]
    if rulesets:
        cmd += ["-r", str(rulesets)]
    cmd += [*extra, *passthrough, "-o", str(out)]
    counter = itertools.count()

    def run(first: bool) -> Sample:
        tag = f"cli-{workload}-{engine.strip('*')}-{n}-{next(counter)}"
        rc, cpu, rss, _, err = run_child(cmd, child_env(), tmp, tag)
        if rc != 0:
            return Sample(cpu, n, rss, ok=False, note=f"exit {rc}: {tail(err)}")
        with open(out, encoding="utf-8") as lines:
            count = sum(1 for _ in lines)
        sample = Sample(cpu, n, rss, out_sha=file_sha(out))
        if count != n:
            sample.ok, sample.note = False, f"{count} records for {n} deals"
        elif first and check_fired:
            sample.fired = dealdesk_fired_digest(out)
        return sample

    label = f"dealdesk {engine}, whole `dealdesk evaluate`"
    return Contender(f"cli/{workload}/{engine}/{n}", label, run)


def peer_contender(name: str, n: int, peer_dir: Path, tmp: Path) -> Contender:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "peer",
        "--name",
        name,
        "--deals",
        str(n),
        "--peer-dir",
        str(peer_dir),
    ]
    counter = itertools.count()

    def run(first: bool) -> Sample:
        rc, _, rss, out, err = run_child(cmd, child_env(), tmp, f"peer-{name}-{next(counter)}")
        try:
            data = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return Sample(0.0, n, rss, ok=False, note=f"exit {rc}: {tail(err)}")
        return Sample(data["cpu"], data["deals"], rss, fired=data["fired"])

    return Contender(f"peer/{name}", PEER_LABELS.get(name, name), run)


def stage_run(
    engine: str,
    workload: str,
    deals_file: Path,
    limit: int,
    rulesets: Path | None,
    tmp: Path,
    cprofile: int,
    repeats: int,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "stages",
        "--file",
        str(deals_file),
        "--limit",
        str(limit),
        "--tmp",
        str(tmp),
        "--rulesets",
        str(rulesets or ""),
        "--cprofile",
        str(cprofile),
        "--stage-repeats",
        str(repeats),
    ]
    env = child_env()
    if not engine.endswith("*"):
        env["DEALDESK_ENGINE"] = engine
    rc, cpu, rss, out, err = run_child(cmd, env, tmp, f"stages-{workload}-{engine.strip('*')}")
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"exit {rc}: {tail(err)}"}
    data["rss_kib"] = rss
    return data


# ---------------------------------------------------------------------------------------------
# the report


def fmt_rate(x: float) -> str:
    return "n/a" if x != x else f"{x:,.0f}"


def fmt_ratio(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:.3f}" if x < 10 else f"{x:,.1f}"


def machine() -> list[str]:
    lines = [f"nproc: {os.cpu_count()}   python: {platform.python_version()} ({sys.executable})"]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        keep = ("Architecture", "Model name", "CPU(s):", "Thread(s) per core", "Core(s)")
        lines += ["  " + " ".join(x.split()) for x in lscpu if x.strip().startswith(keep)]
    except OSError:
        pass
    versions = []
    for dist in ("dealdesk", "durable-rules", "zen-engine"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            versions.append(f"{dist} ?")
    lines.append("packages: " + ", ".join(versions))
    try:
        lines.append(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    return lines


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(header, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def report(
    args: argparse.Namespace,
    engines: list[str],
    peers: list[str],
    contenders: dict[str, Contender],
    small: int,
    stages: dict[tuple[str, str], dict[str, Any]],
    notes: list[str],
    elapsed: float,
) -> None:
    n = args.deals
    zen = contenders.get(f"peer/{ZEN}")
    zen_rate = zen.median() if zen else float("nan")
    baseline_key = next((e for e in engines if e.strip("*") == "durable"), None)

    print()
    print("=" * 100)
    print(
        f"bench_engines: {n:,} deals (and {small:,} for memory), {args.rounds} alternating rounds, medians"
    )
    for line in machine():
        print(line)
    for note in notes:
        print(f"note: {note}")

    for workload, title in (
        ("peer", "24-rule peer workload (deals per CPU-second)"),
        ("house", "house policy, default rulesets (deals per CPU-second)"),
    ):
        if not any(k.startswith(f"cli/{workload}/") for k in contenders):
            continue
        base = contenders.get(f"cli/{workload}/{baseline_key}/{n}") if baseline_key else None
        base_rate = base.median() if base else float("nan")
        print(f"\n## {title}")
        rows = []
        keys = [f"cli/{workload}/{e}/{n}" for e in [*engines, BASELINE]]
        if workload == "peer":
            keys += [f"peer/{p}" for p in peers]
        for key in keys:
            c = contenders.get(key)
            if c is None:
                continue
            lo, hi = c.spread()
            rate = c.median()
            failed = [s.note for s in c.samples if not s.ok]
            rows.append(
                [
                    c.label + (" [child, run() only]" if key.startswith("peer/") else ""),
                    fmt_rate(rate),
                    f"{fmt_rate(lo)}-{fmt_rate(hi)}",
                    fmt_ratio(rate / zen_rate),
                    fmt_ratio(rate / base_rate),
                    f"{c.median('rss_kib') / 1024:.0f}",
                    (failed[0] if failed else ""),
                ]
            )
        print_table(
            rows,
            ["contender", "median", "min-max", "/zen", "/durable", "RSS MiB", "failures"],
        )
        if workload == "house":
            print(
                "  (/zen: against zen-engine on the PEER workload; zen does not run the house policy)"
            )

        # memory (N against N/4) and start-up (the CLI on 1 deal)
        print(f"\n  memory and start-up ({workload}): whole CLI at {n:,}, {small:,} and 1 deal")
        rows = []
        for e in engines:
            big = contenders.get(f"cli/{workload}/{e}/{n}")
            little = contenders.get(f"cli/{workload}/{e}/{small}")
            one = contenders.get(f"cli/{workload}/{e}/1")
            if not big or not little or not one:
                continue
            rss_big, rss_small = big.median("rss_kib") / 1024, little.median("rss_kib") / 1024
            # start-up excluded, paired within each round (load drifts slower than a round)
            net = [
                n / (b.cpu - o.cpu)
                for b, o in zip(big.samples, one.samples, strict=True)
                if b.ok and o.ok and b.cpu > o.cpu
            ]
            rows.append(
                [
                    f"dealdesk {e}",
                    f"{rss_big:.0f}",
                    f"{rss_small:.0f}",
                    fmt_ratio(rss_big / rss_small),
                    f"{one.median('rss_kib') / 1024:.0f}",
                    f"{one.median('cpu'):.2f}",
                    fmt_rate(statistics.median(net) if net else float("nan")),
                ]
            )
        print_table(
            rows,
            [
                "engine",
                f"RSS@{n} MiB",
                f"RSS@{small} MiB",
                "RSS ratio",
                "RSS@1 MiB",
                "start-up CPU s",
                "rate w/o start-up",
            ],
        )

    # the ratios the brief asks for, in one place
    print("\n## ratios (medians of this run)")
    rows = []
    for workload in ("peer", "house"):
        base = contenders.get(f"cli/{workload}/{baseline_key}/{n}") if baseline_key else None
        base_rate = base.median() if base else float("nan")
        for e in engines:
            c = contenders.get(f"cli/{workload}/{e}/{n}")
            if c is None:
                continue
            rate = c.median()
            rows.append([f"{workload}: {e} / zen", fmt_ratio(rate / zen_rate)])
            if e != baseline_key:
                rows.append([f"{workload}: {e} / durable", fmt_ratio(rate / base_rate)])
            before = contenders.get(f"cli/{workload}/{BASELINE}/{n}")
            if before is not None:
                rows.append([f"{workload}: {e} / baseline", fmt_ratio(rate / before.median())])
    for p in peers:
        c = contenders.get(f"peer/{p}")
        base = contenders.get(f"cli/peer/{baseline_key}/{n}") if baseline_key else None
        if c and base:
            rows.append([f"peer: {p} / dealdesk durable", fmt_ratio(c.median() / base.median())])
    print_table(rows, ["ratio", "value"])

    # same work, same bytes
    print("\n## checks")
    reference = contenders.get("peer/python")
    ref_fired = next((s.fired for s in reference.samples if s.fired), "") if reference else ""
    for c in contenders.values():
        fired = next((s.fired for s in c.samples if s.fired), "")
        if fired and ref_fired:
            verdict = "same as" if fired == ref_fired else "DIFFERENT from"
            print(f"  fired rules per deal, {c.label}: {verdict} plain Python ({fired})")
    for workload in ("peer", "house"):
        for size in sorted({n, small, 1}, reverse=True):
            shas = {
                e: {
                    s.out_sha for s in contenders[f"cli/{workload}/{e}/{size}"].samples if s.out_sha
                }
                for e in [*engines, BASELINE]
                if f"cli/{workload}/{e}/{size}" in contenders
            }
            if not shas:
                continue
            every = set().union(*shas.values())
            if len(every) == 1:
                what = (
                    "byte-identical across engines and rounds"
                    if len(shas) > 1
                    else "identical across rounds"
                )
                print(
                    f"  {workload} records at {size:,} deal{'s' if size != 1 else ''}: {what} (sha256 {next(iter(every))})"
                )
            elif every:
                print(
                    f"  {workload} records at {size:,} deal{'s' if size != 1 else ''}: DIFFER: {shas}"
                )

    if stages:
        print_stages(stages)
    print(f"\ntotal wall time: {elapsed:.0f} s")


def print_stages(stages: dict[tuple[str, str], dict[str, Any]]) -> None:
    print("\n## dealdesk stages, CPU µs per deal (in-process, a child per engine and workload)")
    columns = list(stages)
    rows = []
    for stage in STAGES:
        row = [stage]
        for col in columns:
            value = stages[col].get("stages", {}).get(stage)
            row.append("n/a" if value is None or value != value else f"{value:,.1f}")
        rows.append(row)

    def line(label: str, show: Callable[[dict[str, Any]], str]) -> list[str]:
        cells = []
        for col in columns:
            try:
                cells.append(show(stages[col]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("n/a")
        return [label, *cells]

    rows += [
        line("sum of stages", lambda d: f"{sum(v for v in d['stages'].values() if v == v):,.1f}"),
        line("evaluate, unhooked", lambda d: f"{d['plain_cpu_us']:,.1f}"),
        line(
            "hook overhead", lambda d: f"{(d['hooked_cpu_us'] / d['plain_cpu_us'] - 1) * 100:+.0f}%"
        ),
        line("CPU/wall while hooked", lambda d: f"{d['cpu_per_wall']:.2f}"),
        line("start-up (build) ms", lambda d: f"{d['startup_ms']:,.0f}"),
        line("deals profiled x repeats", lambda d: f"{d['deals']} x {d['repeats']}"),
    ]
    print_table(rows, ["stage", *[f"{w}/{e}" for w, e in columns]])
    for col, data in stages.items():
        label = f"{col[0]}/{col[1]}"
        if "error" in data:
            print(f"  {label}: failed: {data['error']}")
            continue
        if data.get("missing"):
            print(
                f"  {label}: hooks not found (their time is in 'other'): {', '.join(data['missing'])}"
            )
        hooks = ", ".join(
            f"{k} {v['us']:,.0f} µs/{v['calls']:.1f} calls"
            for k, v in data.get("hooks", {}).items()
        )
        print(f"  {label}: own time per deal: {hooks}")
        engine = col[1].strip("*")
        if engine != "durable" and "DurableDriver.match" in data.get("hooks", {}):
            print(
                f"  {label}: DEALDESK_ENGINE={engine} still called DurableDriver.match: "
                "is the engine really chosen by the environment variable?"
            )
        for note in data.get("notes", []):
            print(f"  {label}: {note}")
        if data.get("cprofile"):
            print(f"\n  cProfile, {label} (top functions by own time):")
            print("\n".join("    " + x for x in data["cprofile"].splitlines() if x.strip()))


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deals", type=int, default=None, help="deals per run (default 20000; --quick 2000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating rounds (default 5; --quick 2)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: 2000 deals, 2 rounds"
    )
    parser.add_argument(
        "--stage-deals",
        type=int,
        default=None,
        help="deals for the per-stage profile (default: deals/10)",
    )
    parser.add_argument(
        "--stage-repeats",
        dest="repeats",
        type=int,
        default=None,
        help="repeats of the per-stage profile, medians reported (default 3; --quick 1)",
    )
    parser.add_argument(
        "--engines",
        default="native,durable,columnar",
        help="engines to try with --engine (default native,durable,columnar); the ones that run are measured",
    )
    parser.add_argument(
        "--peers",
        default=",".join(DEFAULT_PEERS),
        help=f"peer harness FACTORIES to run (default {','.join(DEFAULT_PEERS)})",
    )
    parser.add_argument(
        "--only",
        default="peer,house,stages",
        help="parts to run: peer (a+b), house (c), stages (d); default all",
    )
    parser.add_argument(
        "--peer-dir", default=str(DEFAULT_PEER_DIR), help="the peer workload folder"
    )
    parser.add_argument(
        "--cli-args",
        default="",
        help="extra arguments for every `dealdesk evaluate` run, e.g. '--workers 1'",
    )
    parser.add_argument(
        "--dealdesk",
        default="",
        metavar="CMD",
        help="the dealdesk command to run (default: the one beside this Python)",
    )
    parser.add_argument(
        "--baseline",
        default="",
        metavar="CMD",
        help="another dealdesk command (e.g. an earlier release in its own venv) measured in the "
        "same rounds on its default engine: the 'x today' ratios",
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="N",
        help="also print cProfile's top N functions per stage run",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (inputs, outputs)"
    )
    # internal: the child processes
    parser.add_argument("--child", choices=["peer", "stages"], help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--rulesets", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.deals is None:
        args.deals = 2000 if args.quick else 20_000
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.stage_deals is None:
        args.stage_deals = max(1, args.deals // 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = child_peer(args) if args.child == "peer" else child_stages(args)
        print(json.dumps(result))
        return 0

    started = time.perf_counter()
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    n, small = args.deals, max(1, args.deals // 4)
    peer_dir = Path(args.peer_dir)
    peer_rulesets = peer_dir / "rulesets"
    notes: list[str] = []
    if "peer" in parts and not (peer_dir / "engines.py").exists():
        notes.append(f"{peer_dir}: no peer workload there; parts a and b skipped")
        parts.discard("peer")
    tmp = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    cli = shlex.split(args.dealdesk) if args.dealdesk else dealdesk_command()
    passthrough = shlex.split(args.cli_args)
    try:
        log = functools.partial(print, file=sys.stderr, flush=True)
        log(f"inputs in {tmp} ...")
        files: dict[str, dict[int, Path]] = {}
        if "peer" in parts or ("stages" in parts and (peer_dir / "rulesets").is_dir()):
            files["peer"] = {n: tmp / f"peer-{n}.jsonl", small: tmp / f"peer-{small}.jsonl"}
            write_peer_book(peer_dir, n, files["peer"][n])
            head(files["peer"][n], files["peer"][small], small)
            if 1 not in files["peer"]:
                files["peer"][1] = tmp / "peer-1.jsonl"
                head(files["peer"][n], files["peer"][1], 1)
        if "house" in parts or "stages" in parts:
            house = {n: tmp / f"house-{n}.jsonl", small: tmp / f"house-{small}.jsonl"}
            try:
                base = write_house_book(n, house[n])
            except (ImportError, OSError, ValueError) as exc:
                notes.append(f"house book not made ({exc}): part c and its stages skipped")
                parts.discard("house")
            else:
                head(house[n], house[small], small)
                if 1 not in house:
                    house[1] = tmp / "house-1.jsonl"
                    head(house[n], house[1], 1)
                files["house"] = house
                notes.append(f"house book: {base} example deals varied to {n:,} (ids B-<i>)")
        if not files:
            print("nothing to run: neither the peer workload nor the house book", file=sys.stderr)
            return 1
        probe = tmp / "probe.jsonl"
        if "peer" in files:
            head(files["peer"][n], probe, 3)
            probe_rulesets: Path | None = peer_rulesets
        else:
            head(files["house"][n], probe, 3)
            probe_rulesets = None
        engines_found, engine_notes = detect_engines(
            cli,
            [e.strip() for e in args.engines.split(",") if e.strip()],
            probe,
            probe_rulesets,
            tmp,
        )
        notes += engine_notes
        engines = [name for name, _ in engines_found]
        log(f"engines: {', '.join(engines) or 'none'}")

        contenders: dict[str, Contender] = {}
        peers = [p.strip() for p in args.peers.split(",") if p.strip()] if "peer" in parts else []
        for workload in ("peer", "house"):
            if workload not in parts:
                continue
            rulesets = peer_rulesets if workload == "peer" else None
            for name, extra in engines_found:
                for size in sorted({n, small, 1}, reverse=True):
                    c = cli_contender(
                        cli,
                        workload,
                        name,
                        extra,
                        files[workload][size],
                        size,
                        rulesets,
                        tmp,
                        passthrough,
                        check_fired=(workload == "peer" and size == n),
                    )
                    contenders[c.key] = c
        if args.baseline:
            for workload in ("peer", "house"):
                if workload in parts:
                    c = cli_contender(
                        shlex.split(args.baseline),
                        workload,
                        BASELINE,
                        [],
                        files[workload][n],
                        n,
                        peer_rulesets if workload == "peer" else None,
                        tmp,
                        passthrough,
                        check_fired=False,
                    )
                    c.label = f"dealdesk baseline ({args.baseline}), whole CLI"
                    contenders[c.key] = c
        for p in peers:
            c = peer_contender(p, n, peer_dir, tmp)
            contenders[c.key] = c

        order = list(contenders.values())
        for round_no in range(args.rounds):
            shift = round_no % max(1, len(order))
            for c in order[shift:] + order[:shift]:
                sample = c.run(round_no == 0)
                c.samples.append(sample)
                status = "ok" if sample.ok else f"FAILED: {sample.note}"
                log(
                    f"round {round_no + 1}/{args.rounds}  {c.key:<32} {sample.deals:>7} deals "
                    f"{sample.cpu:7.2f} CPU s  {fmt_rate(sample.rate):>9}/s  "
                    f"RSS {sample.rss_kib / 1024:5.0f} MiB  {status}"
                )

        stages: dict[tuple[str, str], dict[str, Any]] = {}
        if "stages" in parts:
            for workload in ("peer", "house"):
                if workload not in files:
                    continue
                for name in engines or ["durable*"]:
                    log(f"stages: {workload}/{name} ...")
                    stages[(workload, name)] = stage_run(
                        name,
                        workload,
                        files[workload][n],
                        args.stage_deals,
                        peer_rulesets if workload == "peer" else None,
                        tmp,
                        args.cprofile,
                        args.repeats,
                    )
        report(
            args, engines, peers, contenders, small, stages, notes, time.perf_counter() - started
        )
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
