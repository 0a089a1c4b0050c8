"""Test configuration shared by every dealdesk test."""

from __future__ import annotations

import os
import tempfile

import pytest

from dealdesk.engines import available_engines

# dealdesk's own fixtures (plugin_manager, register_plugin, hook_recorder, cli_runner), the same
# ones plugin authors use; pytester runs small pytest sessions to test those fixtures.
pytest_plugins = ["dealdesk.testing", "pytester"]

# the schema cache (rules/model.py) of this test run, not the user's
os.environ.setdefault("DEALDESK_CACHE_DIR", tempfile.mkdtemp(prefix="dealdesk-cache-"))


@pytest.fixture(params=available_engines())
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine that imports here: tests taking it run on every one (SPEC §9)."""
    return str(request.param)
