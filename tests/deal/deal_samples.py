"""Deals the deal-stage tests share: the bundled examples and the smallest valid deal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "deals"


def load_example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def minimal_deal(**extra: Any) -> dict[str, Any]:
    deal: dict[str, Any] = {
        "id": "D-1",
        "lines": [
            {"sku": "A", "category": "hardware", "quantity": 1, "unit_price": 100, "unit_cost": 60}
        ],
    }
    deal.update(extra)
    return deal
