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


def run_python(code: str, *, timeout: float = 60, memory: int = MEMORY_LIMIT) -> str:
    """Run ``code`` in a fresh interpreter under a time and memory limit; return its stdout.

    The child imports ``dealdesk`` as installed and the modules of ``tests/`` (``helpers``).

    :raises AssertionError: when the child fails, runs out of memory or passes ``timeout``.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    try:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")])),
            },
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"no result within {timeout} s") from None
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
