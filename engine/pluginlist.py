"""What ``dealdesk plugins`` prints: the plugins, their versions, kinds, policy families and
hooks, as a table for people or JSON for tools (from :meth:`dealdesk.manager.Plugins.plugin_info`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dealdesk.errors import PluginError

__all__ = ["plugins_json", "plugins_table"]


def plugins_json(info: Sequence[Mapping[str, Any]], failures: Sequence[PluginError] = ()) -> str:
    """The plugin list as a JSON array, one object per plugin (``plugin_info``'s keys, plus
    ``errors``: how the plugin failed, one message per failure); a plugin that could not be
    loaded at all comes last, with no version, policies or hooks."""
    info = _with_unloaded(info, failures)
    listed = [{**entry, "errors": _errors_of(entry["name"], failures)} for entry in info]
    return json.dumps(listed, indent=2, ensure_ascii=False)


def plugins_table(info: Sequence[Mapping[str, Any]], failures: Sequence[PluginError] = ()) -> str:
    """Two aligned tables: one row per plugin (name, version, built-in or external, its policy
    families, its hooks), then one row per policy family with its plugin and description.
    A plugin that failed is marked ``(failed in HOOK)`` after its kind; one that could not be
    loaded at all comes last."""
    info = _with_unloaded(info, failures)
    plugins = [
        (
            entry["name"],
            entry["version"] or "-",
            ("built-in" if entry["builtin"] else "external")
            + "".join(f" (failed in {f.hook})" for f in failures if f.plugin == entry["name"]),
            ", ".join(p["name"] for p in entry["policies"]) or "-",
            ", ".join(entry["hooks"]) or "-",
        )
        for entry in info
    ]
    families = [
        (
            family["name"],
            entry["name"],
            (f"(overridden by {family['overridden_by']}) " if family["overridden_by"] else "")
            + (family["description"] or "-"),
        )
        for entry in info
        for family in entry["policies"]
    ]
    text = _table(("NAME", "VERSION", "KIND", "POLICY FAMILIES", "HOOKS"), plugins)
    if families:
        text += "\n" + _table(("POLICY FAMILY", "PLUGIN", "DESCRIPTION"), families)
    return text


def _with_unloaded(
    info: Sequence[Mapping[str, Any]], failures: Sequence[PluginError]
) -> list[Mapping[str, Any]]:
    """``info`` and an entry for each failed plugin it does not hold (an import failure)."""
    listed = [entry["name"] for entry in info]
    unloaded: list[Mapping[str, Any]] = []
    for failure in failures:
        if failure.plugin not in listed:
            listed.append(failure.plugin)
            unloaded.append(
                {
                    "name": failure.plugin,
                    "version": None,
                    "builtin": False,
                    "policies": [],
                    "hooks": [],
                }
            )
    return [*info, *unloaded]


def _errors_of(plugin: str, failures: Sequence[PluginError]) -> list[str]:
    return [str(f) for f in failures if f.plugin == plugin]


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    shown = [tuple(_printable(cell) for cell in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in shown) for i in range(len(header) - 1)]
    lines = []
    for row in shown:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip() + "\n")
    return "".join(lines)


def _printable(text: str) -> str:
    """A plugin's text on one terminal line: control characters (escapes, newlines) shown as
    ``?`` so that a description cannot move the cursor or recolour the terminal."""
    return "".join(c if c.isprintable() else "?" for c in str(text))
