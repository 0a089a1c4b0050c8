"""dealdesk: YAML deal-desk policies compiled into durable_rules, loaded as pluggy plugins."""

from __future__ import annotations

import pluggy

NAME = "dealdesk"
__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker(NAME)

__all__ = ["NAME", "__version__", "hookimpl"]
