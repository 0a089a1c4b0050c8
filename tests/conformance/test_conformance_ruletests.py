"""Every ``tests:`` case of the house rulesets and of the example plugin's: each engine makes the
REFERENCE's record for the case's deal, byte for byte (clauses rendered), and so passes or fails
the case exactly as the REFERENCE does (``dealdesk test`` gives the same report on every engine)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from conformance_support import REFERENCE, app_on, assert_identical, needs_example

from dealdesk.app import App
from dealdesk.rules.model import Ruleset
from dealdesk.ruletests import load_case_deal, run_case

HOUSE = Path(str(files("dealdesk.rulesets")))


def cases_of(directory: Path | None, marks: Any = ()) -> list[Any]:
    """One param per ``tests:`` case under ``directory``: (ruleset name, case index)."""
    params = []
    for path in sorted(directory.glob("*.yaml")) if directory else ():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "ruleset" not in data:
            continue  # approvers.yaml
        for index, case in enumerate(data.get("tests") or ()):
            params.append(
                pytest.param(
                    data["ruleset"], index, id=f"{data['ruleset']}: {case['name']}", marks=marks
                )
            )
    return params


def _example_rulesets() -> Path | None:
    if importlib.util.find_spec("dealdesk_example_plugin") is None:
        return None
    return Path(str(files("dealdesk_example_plugin") / "rulesets"))


HOUSE_CASES = cases_of(HOUSE)
EXAMPLE_CASES = cases_of(_example_rulesets(), needs_example) or [
    pytest.param("export-control", 0, id="export-control", marks=needs_example)
]


def ruleset_named(application: App, name: str) -> Ruleset:
    [ruleset] = [r for r in application.policy_set.rulesets if r.name == name]
    return ruleset


def check_case(engine_app: App, reference: App, name: str, index: int, engine: str) -> None:
    ruleset = ruleset_named(engine_app, name)
    case = ruleset.tests[index]
    raw = load_case_deal(engine_app, ruleset, case)
    got = engine_app.decide(raw).record
    want = reference.decide(raw).record
    assert_identical([got], [want], engine=engine, deals=[raw], context=f"case {case.name!r}")
    reference_ruleset = ruleset_named(reference, name)
    expected = run_case(reference, reference_ruleset, reference_ruleset.tests[index]).failures
    assert run_case(engine_app, ruleset, case).failures == expected == []


def test_every_house_ruleset_has_cases() -> None:
    assert {p.values[0] for p in HOUSE_CASES} == {
        "billing-milestone",
        "onsite-support",
        "partner-margin",
    }
    assert len(HOUSE_CASES) >= 25


@pytest.mark.parametrize(("name", "index"), HOUSE_CASES)
def test_house_case(engine: str, house: Callable[..., App], name: str, index: int) -> None:
    check_case(house(engine, True), house(REFERENCE, True), name, index, engine)


_EXAMPLE_APPS: dict[str, App] = {}


@pytest.mark.parametrize(("name", "index"), EXAMPLE_CASES)
def test_example_plugin_case(engine: str, name: str, index: int) -> None:
    """The example plugin's cases, its own rulesets loaded with ``-r`` and its entry point."""
    for key in (engine, REFERENCE):
        if key not in _EXAMPLE_APPS:
            rulesets = [str(_example_rulesets())]
            _EXAMPLE_APPS[key] = app_on(key, rulesets, autoload=True, clauses=True)
    check_case(_EXAMPLE_APPS[engine], _EXAMPLE_APPS[REFERENCE], name, index, engine)
