"""Fired rules → policy results → one decision record per deal (SPEC §4).

Pure functions over plain data, so the precedence and ordering rules can be tested (and
property-tested) without an engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dealdesk import __version__
from dealdesk.money import money_string, round_fraction
from dealdesk.rules.expressions import to_decimal

STATUS_ORDER = ("approved", "needs_approval", "rejected", "invalid")


def worst(statuses: Iterable[str]) -> str:
    """The status that wins: invalid > rejected > needs_approval > approved."""
    return max(statuses, key=STATUS_ORDER.index, default="approved")


def policy_status(rejects: int, requires: int) -> str:
    return "rejected" if rejects else "needs_approval" if requires else "approved"


def order_roles(roles: Iterable[str], ranks: Sequence[str]) -> list[str]:
    """Unique roles, by their rank in approvers.yaml; unranked roles last, by name."""
    rank = {role: i for i, role in enumerate(ranks)}
    return sorted(set(roles), key=lambda r: (rank.get(r, len(rank)), r))


def combine_values(mode: str, values: Sequence[Any]) -> Any:
    """Combine the values several rules set for one output; ``values`` are in priority order."""
    if not values:
        return None
    if mode == "list":
        return list(values)
    if mode == "first":
        return values[0]
    numbers = [to_decimal(v) for v in values]
    present = [n for n in numbers if n is not None]
    if not present:
        return values[0]
    if mode == "max":
        return max(present)
    if mode == "min":
        return min(present)
    return sum(present, Decimal(0))


def format_output(value: Any, kind: str, currency: str) -> Any:
    """An output value as the record shows it: money as a decimal string in the currency's
    minor units, fractions rounded to 4 places, integral numbers as integers."""
    if value is None:
        return None
    if kind == "money" and to_decimal(value) is not None:
        return money_string(value, currency)
    if kind == "fraction" and to_decimal(value) is not None:
        return round_fraction(value)
    number = to_decimal(value)
    if kind == "integer" and number is not None:
        return int(number.to_integral_value(rounding=ROUND_HALF_UP))
    return plain(value)


def plain(value: Any) -> Any:
    """JSON-ready data: Decimals become ints when integral, else floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        integral = value == value.to_integral_value() and abs(value) < 10**15
        return int(value) if integral else float(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def provenance(versions: Mapping[str, str], digest: str) -> dict[str, Any]:
    return {"rulesets": dict(versions), "digest": digest, "dealdesk": __version__}


def decision_record(
    deal_id: Any,
    policies: Mapping[str, Mapping[str, Any]],
    *,
    approvals: Sequence[str],
    reasons: Sequence[Mapping[str, Any]],
    flags: Sequence[Mapping[str, Any]],
    clauses: Sequence[Mapping[str, Any]] = (),
    errors: Sequence[Mapping[str, Any]] = (),
    provenance: Mapping[str, Any],
    status: str | None = None,
) -> dict[str, Any]:
    """The record, keys in SPEC §4's order; ``status`` defaults to the worst policy status."""
    if status is None:
        status = "invalid" if errors else worst(p["status"] for p in policies.values())
    return {
        "deal_id": deal_id,
        "status": status,
        "approvals": list(approvals),
        "policies": {name: dict(result) for name, result in policies.items()},
        "reasons": [dict(r) for r in reasons],
        "flags": [dict(f) for f in flags],
        "clauses": [dict(c) for c in clauses],
        "errors": [dict(e) for e in errors],
        "provenance": dict(provenance),
    }


def invalid_record(
    deal_id: Any, errors: Sequence[Mapping[str, Any]], prov: Mapping[str, Any]
) -> dict[str, Any]:
    """The record of a deal that could not be evaluated."""
    return decision_record(
        deal_id,
        {},
        approvals=[],
        reasons=[],
        flags=[],
        errors=errors,
        provenance=prov,
        status="invalid",
    )
