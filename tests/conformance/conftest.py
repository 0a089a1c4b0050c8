"""The conformance suite runs every test once per engine that imports here (SPEC §9).

``engine`` is the engine's name, as ``app.build(engine=...)`` and ``--engine`` take it; the list
comes from ``dealdesk.engines.available_engines()``, so a new
engine is picked up without touching the tests. ``known_engine_bug`` marks a test as a known,
non-strict failure on some engines only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from conformance_support import ENGINES, app_on

from dealdesk.app import App


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine under test."""
    return request.param


@pytest.fixture
def known_engine_bug(
    request: pytest.FixtureRequest, engine: str
) -> Callable[[Iterable[str], str], None]:
    """``known_engine_bug(engines, reason)``: this test is a known failure on those engines
    (``xfail``, not strict, so it shows as XPASS once fixed); on other engines it must pass."""

    def mark(engines: Iterable[str], reason: str) -> None:
        if engine in set(engines):
            request.applymarker(pytest.mark.xfail(reason=reason, strict=False))

    return mark


_HOUSE: dict[tuple[str, bool], App] = {}


@pytest.fixture(scope="session")
def house() -> Callable[..., App]:
    """``house(engine, clauses=False)``: the house policy on the built-in plugins, built once per
    engine and option; ``engine="reference"`` gives the REFERENCE."""

    def get(engine: str, clauses: bool = False) -> App:
        key = (engine, clauses)
        if key not in _HOUSE:
            _HOUSE[key] = app_on(engine, autoload=False, clauses=clauses)
        return _HOUSE[key]

    return get
