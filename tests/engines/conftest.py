"""durable_rules is installed only where it imports (not on Python 3.13, SPEC §1): there the
tests that run its C core are not collected; the lowering tests are pure Python and run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

if importlib.util.find_spec("durable_rules_engine") is None:
    collect_ignore = [
        path.name
        for path in Path(__file__).parent.glob("test_durable_*.py")
        if path.name != "test_durable_lowering.py"
    ]
