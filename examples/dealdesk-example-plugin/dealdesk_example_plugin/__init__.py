"""An example external dealdesk plugin: the export-control policy family.

Installed with an entry point (``[project.entry-points.dealdesk] export_control =
"dealdesk_example_plugin"``), it declares a policy family with its own rulesets, templates and
facts, derives the ``export_risk`` fact, adds the ``upper_snake`` template filter and keeps
every final decision record in :data:`RECORDS` (an audit sink, here in memory for tests).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from importlib.resources import files
from typing import Any

from dealdesk import hookimpl

__version__ = "0.1.0"

POLICY = "export-control"

#: ISO 3166 codes this example treats as embargoed destinations (illustrative, not legal advice).
EMBARGOED_DESTINATIONS = frozenset({"CU", "IR", "KP", "SY"})

#: Every decision record dealdesk handed to :func:`dealdesk_decision`, oldest first.
RECORDS: list[dict[str, Any]] = []


@hookimpl
def dealdesk_policies(register: Callable[..., None]) -> None:
    """Declare export-control: its rulesets, its clause templates and the facts it brings."""
    package = files(__name__)
    register(
        POLICY,
        description="Export screening for deals shipping to embargoed destinations.",
        rulesets=package / "rulesets",
        templates=package / "templates",
        facts={
            "export.destination": "string",  # input: ISO 3166 code of the ship-to country
            "export.embargoed": "boolean",  # input: sales marked the destination as embargoed
            "export_risk": "boolean",  # derived below
        },
    )


@hookimpl
def dealdesk_enrich(deal: Mapping[str, Any]) -> dict[str, Any]:
    """Derive ``export_risk``: the destination is embargoed, by our list or by the deal's own flag."""
    export = deal.get("export") or {}
    destination = str(export.get("destination") or "").strip().upper()
    return {"export_risk": destination in EMBARGOED_DESTINATIONS or export.get("embargoed") is True}


@hookimpl
def dealdesk_template_filters(register: Callable[..., None]) -> None:
    """Add ``upper_snake``: ``"Acme Robotics"`` → ``"ACME_ROBOTICS"``."""
    register("upper_snake", upper_snake)


@hookimpl
def dealdesk_decision(record: dict[str, Any]) -> None:
    """Keep a copy of each final record (a real sink would write to an audit log)."""
    RECORDS.append(copy.deepcopy(record))


def upper_snake(value: object) -> str:
    """``"exportControl v2"`` → ``"EXPORT_CONTROL_V2"``: words split on case changes and punctuation."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(value))
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()
