"""The partner-margin policy family: margin floors, partner gates, discount authority (SPEC §5).

Everything it decides is in ``dealdesk/rulesets/partner-margin.yaml`` and the engine's derived
facts; the plugin only declares the family.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dealdesk import hookimpl
from dealdesk.rules.policyset import house_rulesets

if TYPE_CHECKING:
    from dealdesk.manager import RegisterPolicy

POLICY = "partner-margin"


@hookimpl
def dealdesk_policies(register: RegisterPolicy) -> None:
    """Declare the partner-margin family with its house ruleset and clause templates."""
    register(
        POLICY,
        description="Margin floors, partner gates and discount authority.",
        rulesets=house_rulesets() / f"{POLICY}.yaml",
        templates=Path(__file__).parent / "templates",
    )
