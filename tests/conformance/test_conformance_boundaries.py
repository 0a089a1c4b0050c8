"""The house policy's boundary deals (tests/plugins): every engine decides them as the REFERENCE.

The deals are not copied here: each house test that takes the ``make`` and ``evaluate`` fixtures
is called once per parametrization with the house deal factory and an ``evaluate`` that records
every deal and answers with the REFERENCE's decision. So the house tests also check the REFERENCE
against SPEC §5, and every deal they build (amounts landing exactly on the thresholds) is then
evaluated on each engine and compared byte for byte.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import itertools
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import conformance_support
import pytest
import yaml
from conformance_support import EXAMPLE_DEALS, REFERENCE, ROOT, assert_identical

from dealdesk.app import App
from dealdesk.pipeline import requested_clauses

HOUSE_TESTS = ROOT / "tests" / "plugins"


def _load(path: Path, name: str) -> ModuleType:
    """Import ``path`` under a name of its own (pytest imports it as itself, separately)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


HOUSE_FIXTURES = _load(HOUSE_TESTS / "conftest.py", "conformance_house_conftest")


def house_tests() -> Iterator[tuple[str, Callable[..., Any]]]:
    """``(module::name, function)`` of every house test that builds deals with ``make``."""
    for path in sorted(HOUSE_TESTS.glob("test_*.py")):
        module = _load(path, f"conformance_house_{path.stem}")
        for name, func in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(func):
                params = inspect.signature(func).parameters
                if {"make", "evaluate"} <= set(params):
                    yield f"{path.stem}::{name}", func


def parametrizations(func: Callable[..., Any]) -> list[dict[str, Any]]:
    """Every combination of the function's ``pytest.mark.parametrize`` arguments."""
    axes: list[list[dict[str, Any]]] = []
    for mark in getattr(func, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = []
        for value in values:
            if isinstance(value, tuple) and hasattr(value, "marks"):  # pytest.param(...)
                row = tuple(value.values)
            else:
                row = tuple(value) if len(names) > 1 else (value,)
            rows.append(dict(zip(names, row, strict=True)))
        axes.append(rows)
    return [
        {k: v for part in combination for k, v in part.items()}
        for combination in itertools.product(*axes)
    ]


@dataclass
class Harvest:
    """The deals one house test built, and how the REFERENCE did on that test."""

    deals: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


HOUSE_TESTS_FOUND = dict(house_tests())
_HARVESTS: dict[str, Harvest] = {}


def harvest(name: str, reference: App) -> Harvest:
    """Run house test ``name`` on the REFERENCE (every parametrization), recording its deals."""
    if name in _HARVESTS:
        return _HARVESTS[name]
    result = _HARVESTS[name] = Harvest()
    func = HOUSE_TESTS_FOUND[name]
    extra = set(inspect.signature(func).parameters) - {"make", "evaluate"}

    def evaluate(deal: Mapping[str, Any]) -> Any:
        result.deals.append(copy.deepcopy(dict(deal)))
        decision = reference.decide(copy.deepcopy(dict(deal)))
        record, runs = decision.record, decision.runs
        clause_ids: dict[str, list[str]] = {}
        for clause in requested_clauses(runs):
            clause_ids.setdefault(clause["policy"], []).append(clause["id"])
        return HOUSE_FIXTURES.Decision(record, clause_ids)

    for params in parametrizations(func):
        assert set(params) == extra, f"{name}: cannot supply {sorted(extra - set(params))}"
        try:
            func(make=HOUSE_FIXTURES.DealFactory(), evaluate=evaluate, **params)
        except Exception as exc:  # an assertion of the house test, on the REFERENCE
            result.failures.append(f"{params}: {type(exc).__name__}: {exc}")
    return result


def test_the_house_tests_are_found() -> None:
    modules = {name.split("::")[0] for name in HOUSE_TESTS_FOUND}
    assert modules == {"test_billing_milestone", "test_onsite_support", "test_partner_margin"}
    assert len(HOUSE_TESTS_FOUND) >= 60


@pytest.mark.parametrize("name", sorted(HOUSE_TESTS_FOUND))
def test_reference_passes_the_house_test(house: Callable[..., App], name: str) -> None:
    """The REFERENCE decides the house boundary deals as SPEC §5 (the house tests) says."""
    found = harvest(name, house(REFERENCE))
    assert found.deals, f"{name} evaluated no deal"
    assert found.failures == []


@pytest.mark.parametrize("name", sorted(HOUSE_TESTS_FOUND))
def test_house_boundary_deals(engine: str, house: Callable[..., App], name: str) -> None:
    reference = house(REFERENCE)
    deals = harvest(name, reference).deals
    got = [house(engine).pipeline.evaluate(copy.deepcopy(d)) for d in deals]
    want = [reference.pipeline.evaluate(copy.deepcopy(d)) for d in deals]
    assert_identical(got, want, engine=engine, deals=deals, context=name)


def test_the_reference_matches_by_direct_meaning(
    house: Callable[..., App], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The REFERENCE really asks ``evaluate`` about each rule (were the evaluator to stop
    calling ``run_policy``, it would silently be the engine under test)."""
    asked: list[Any] = []
    original = conformance_support.evaluate
    monkeypatch.setattr(
        conformance_support,
        "evaluate",
        lambda expr, data: asked.append(expr) or original(expr, data),
    )
    deal = yaml.safe_load((EXAMPLE_DEALS / "acme-risk.yaml").read_text(encoding="utf-8"))
    record = house(REFERENCE).pipeline.evaluate(deal)
    rules = sum(len(p.rules) for p in house(REFERENCE).policy_set.policies.values())
    assert len(asked) == rules
    assert record["status"] == "needs_approval"
