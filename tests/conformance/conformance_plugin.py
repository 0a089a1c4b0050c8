"""A plugin for generated rulesets: it brings a list that may be missing or empty.

A valid deal always has lines, so ``any()``/``all()`` over an empty or missing list (SPEC §3:
both are false) need another list. This plugin declares the input field ``extras`` (a list of
``{k, v}``) and derives ``extras_count``; loaded with ``enabled=["conformance_plugin"]``
(``-p conformance_plugin``). Its family has no rulesets, so it adds nothing to a record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from dealdesk import hookimpl

NAME = "conformance_plugin"
FACTS = {
    "extras": "array",
    "extras[].k": "string",
    "extras[].v": "number",
    "extras_count": "number",
}


@hookimpl
def dealdesk_policies(register: Callable[..., None]) -> None:
    register("conformance-probe", description="facts for generated rulesets", facts=FACTS)


@hookimpl
def dealdesk_enrich(deal: Mapping[str, Any]) -> dict[str, Any] | None:
    extras = deal.get("extras")
    return {"extras_count": Decimal(len(extras))} if isinstance(extras, list) else None
