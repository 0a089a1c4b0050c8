"""Fixtures of the io tests: the house app, built once per module, and its writers' context."""

from __future__ import annotations

import pytest

from dealdesk.app import App, build
from dealdesk.io.summary import WriteContext


@pytest.fixture(scope="module")
def app() -> App:
    return build(autoload=False)


@pytest.fixture(scope="module")
def context(app: App) -> WriteContext:
    return WriteContext.of(app.policy_set)
