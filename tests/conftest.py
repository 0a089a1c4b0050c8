"""Test configuration shared by every dealdesk test."""

from __future__ import annotations

# dealdesk's own fixtures (plugin_manager, register_plugin, hook_recorder, cli_runner), the same
# ones plugin authors use; pytester runs small pytest sessions to test those fixtures.
pytest_plugins = ["dealdesk.testing", "pytester"]
