"""The engines that evaluate checked rulesets, by name (SPEC §9).

``native`` compiles the condition tree into Python closures and runs everywhere; ``durable``
lowers it to durable_rules, which imports only on Python 3.11 and 3.12; ``columnar`` evaluates
a chunk of deals as columns, where numpy and pyarrow are installed (``dealdesk[columnar]``).
The default is the faster one by measurement (bench/bench_engines.py): ``native``, but for a
big JSONL book whose policies allow record templates, which ``evaluate`` gives the columnar
engine (``dealdesk.cli._columnar_pays``).
``DEALDESK_ENGINE`` or ``--engine`` chooses.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

from dealdesk.errors import UsageError

if TYPE_CHECKING:
    from dealdesk.engines.base import Engine
    from dealdesk.manager import RegisteredAction
    from dealdesk.rules.policyset import PolicySet

ENGINES = {
    "native": "dealdesk.engines.native",
    "durable": "dealdesk.engines.durable.engine",
    # numpy (and pyarrow for its reader), from the optional extra dealdesk[columnar]: without
    # numpy the engine is not available
    "columnar": "dealdesk.engines.columnar",
}
DEFAULT_ENGINE = "native"
ENV_VAR = "DEALDESK_ENGINE"


def available_engines() -> list[str]:
    """The engines that import on this Python (durable_rules does not on 3.13)."""
    found = []
    for name in ENGINES:
        try:
            _module(name)
        except ImportError:
            continue
        found.append(name)
    return found


def engine_name(requested: str | None = None) -> str:
    """The engine to use: ``requested``, else ``$DEALDESK_ENGINE``, else the default.

    :raises UsageError: an unknown engine, or one that does not import here.
    """
    name = requested or os.environ.get(ENV_VAR) or DEFAULT_ENGINE
    if name not in ENGINES:
        known = ", ".join(ENGINES)
        raise UsageError(f"unknown engine {name!r} (choose from {known})")
    try:
        _module(name)
    except ImportError as exc:
        hints = {
            "durable": " (durable_rules runs on Python 3.11 and 3.12; use --engine native)",
            "columnar": " (install dealdesk[columnar]; or use --engine native)",
        }
        raise UsageError(
            f"engine {name!r} is not available here: {exc}{hints.get(name, '')}"
        ) from None
    return name


def build_engine(
    name: str, policy_set: PolicySet, actions: Mapping[str, RegisteredAction]
) -> Engine:
    """The engine ``name`` (see :func:`engine_name`) for ``policy_set``.

    :raises EngineError: a ruleset this engine cannot run, naming the rule and the limit.
    """
    engine_class: type[Engine] = _module(engine_name(name)).ENGINE
    return engine_class(policy_set, actions)


def _module(name: str) -> ModuleType:
    return importlib.import_module(ENGINES[name])
