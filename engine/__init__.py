"""dealdesk: YAML deal-desk policies compiled into durable_rules, loaded as pluggy plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

NAME = "dealdesk"
__version__ = "0.1.0"

if TYPE_CHECKING:
    import pluggy

    hookimpl: pluggy.HookimplMarker

__all__ = ["NAME", "__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # `hookimpl` is made on first use (a plugin's import), so `dealdesk --help` starts without
    # importing pluggy.
    if name == "hookimpl":
        import pluggy

        marker = globals()["hookimpl"] = pluggy.HookimplMarker(NAME)
        return marker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
