"""Run code that could hang or eat memory when a bound is missing, in a child that cannot.

Tests of SPEC §9's "hostile rulesets are bounded" must fail, not hang CI or take the machine's
memory, when a bound is broken: the child gets a time limit and an address-space limit.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

MEMORY_LIMIT = 512 << 20  # bytes of address space; dealdesk with every import needs ~300 MiB
TESTS = str(Path(__file__).resolve().parent)  # so the child imports `helpers` like the tests do


def run_child(
    code: str,
    *,
    timeout: float = 120,
    memory: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports ``dealdesk`` as installed and the
    modules of ``tests/`` (``helpers``): for behaviour that could hang, eat memory or kill the
    process, so that it fails one test instead of the whole run.

    :param memory: an address-space limit in bytes (none by default).
    :param env: the child's environment (default: this process's).
    :raises subprocess.TimeoutExpired: past ``timeout`` seconds.
    """

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    base = dict(os.environ if env is None else env)
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, base.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        env=base,
    )


def run_perturbed(code: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """:func:`run_child` with glibc filling every allocation with garbage (``MALLOC_PERTURB_``),
    so that heap misuse in durable_rules' C core shows every time."""
    return run_child(code, timeout=timeout, env={**os.environ, "MALLOC_PERTURB_": "165"})


def run_python(code: str, *, timeout: float = 60, memory: int = MEMORY_LIMIT) -> str:
    """Run ``code`` in a child under a time and memory limit; return its stdout.

    :raises AssertionError: when the child fails, runs out of memory or passes ``timeout``.
    """
    try:
        result = run_child(code, timeout=timeout, memory=memory)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"no result within {timeout} s") from None
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
