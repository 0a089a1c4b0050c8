"""Building small policy sets from YAML text for engine tests, on the real plugin stack."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dealdesk import hookimpl
from dealdesk.engines import build_engine
from dealdesk.manager import Plugins, add_plugin, collect_plugins, get_plugin_manager
from dealdesk.pipeline import Pipeline
from dealdesk.rules.policyset import Environment, PolicySet, load_policy_set
from dealdesk.templating import Renderer

BASE_DEAL: dict[str, Any] = {
    "id": "T-1",
    "currency": "USD",
    "customer": {"name": "Acme", "segment": "elephant", "region": "emea"},
    "offer": {"type": "standard", "pricing": "fixed"},
    "lines": [
        {
            "sku": "HW",
            "category": "hardware",
            "quantity": 2,
            "unit_price": 100,
            "list_price": 125,
            "unit_cost": 60,
        },
        {"sku": "LAB", "category": "labor", "quantity": 1, "unit_price": 50, "unit_cost": 40},
    ],
    "dates": {"close": "2026-12-15"},
}


def deal(**changes: Any) -> dict[str, Any]:
    """A copy of BASE_DEAL with top-level keys replaced."""
    result = copy.deepcopy(BASE_DEAL)
    result.update(changes)
    return result


class TestPolicy:
    """A plugin declaring the `test` policy family over a directory of rulesets."""

    def __init__(
        self,
        directory: Path,
        actions: Mapping[str, Callable[..., Any]] | None = None,
        enrich: Callable[..., Any] | None = None,
        facts: Mapping[str, str] | None = None,
    ):
        self.directory = directory
        self.actions = dict(actions or {})
        self.enrich = enrich
        self.facts = dict(facts or {})

    @hookimpl
    def dealdesk_policies(self, register: Any) -> None:
        register("test", description="tests", rulesets=self.directory, facts=self.facts or None)

    @hookimpl
    def dealdesk_actions(self, register: Any) -> None:
        for name, func in self.actions.items():
            register(name, func)

    @hookimpl
    def dealdesk_enrich(self, deal: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.enrich(deal) if self.enrich else None


def write_rulesets(directory: Path, **files: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        path = directory / f"{name}.yaml"
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        paths.append(path)
    return paths


def plugins_for(directory: Path, **kwargs: Any) -> Plugins:
    pm = get_plugin_manager(autoload=False)
    add_plugin(pm, TestPolicy(directory, **kwargs), "testplug")
    return collect_plugins(pm)


def policy_set(
    directory: Path, plugins: Plugins | None = None
) -> tuple[PolicySet, Plugins, Renderer]:
    plugins = plugins or plugins_for(directory)
    renderer = Renderer(plugins.template_dirs, plugins.filters)
    return load_policy_set([directory], Environment.of(plugins, renderer)), plugins, renderer


def evaluator(directory: Path, engine: str | None = None, **kwargs: Any) -> Pipeline:
    """The pipeline for the rulesets in ``directory`` on ``engine`` (default: $DEALDESK_ENGINE,
    else the default engine)."""
    ps, plugins, renderer = policy_set(
        directory, plugins_for(directory, **kwargs) if kwargs else None
    )
    return Pipeline(ps, plugins, renderer, build_engine(engine, ps, plugins.actions))
