"""The decision record (SPEC §4): one per input deal, keys in the order SPEC §4 gives.

:class:`DecisionRecord` owns that order and the record's JSON Schema; everything downstream
(writers, sinks, the ``dealdesk_combine`` hook) receives :meth:`DecisionRecord.to_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from dealdesk import __version__

STATUS_ORDER = ("approved", "needs_approval", "rejected", "invalid")


@dataclass
class DecisionRecord:
    """One deal's decision; the field order is the record's key order."""

    deal_id: str | None
    status: str
    approvals: list[str] = field(default_factory=list)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    clauses: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, keys in SPEC §4's order."""
        return {f.name: getattr(self, f.name) for f in _FIELDS}

    @classmethod
    def invalid(
        cls, deal_id: str | None, errors: list[dict[str, Any]], provenance: dict[str, Any]
    ) -> DecisionRecord:
        """The record of a deal that could not be evaluated."""
        return cls(deal_id, "invalid", errors=errors, provenance=provenance)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of one record, for ``dealdesk schema decision``."""
        return decision_json_schema()


_FIELDS = fields(DecisionRecord)
KEYS = tuple(f.name for f in _FIELDS)
#: What a batch's summary reads of a record (``io/summary.py``): a worker that encodes records
#: itself sends the parent only these.
BRIEF_KEYS = ("deal_id", "status", "approvals", "reasons", "flags", "errors")


def record_dict(*values: Any) -> dict[str, Any]:
    """``DecisionRecord(*values).to_dict()`` without building the record (once per deal)."""
    if len(values) != len(KEYS):
        raise TypeError(f"a record has {len(KEYS)} fields, got {len(values)}")
    return dict(zip(KEYS, values, strict=True))


_STATUSES = list(STATUS_ORDER)
_STRINGS = {"type": "array", "items": {"type": "string"}}


def decision_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one decision record, SPEC §4."""
    message = {
        "type": "object",
        "required": ["policy", "rule", "message"],
        "properties": {
            "policy": {"type": "string", "description": "The policy family."},
            "rule": {"type": "string", "description": "The rule (or table) id."},
            "message": {"type": "string", "description": "The rendered message."},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://dealdesk.dev/schema/decision.json",
        "title": "dealdesk decision record",
        "description": (
            "One record per input deal, in input order (SPEC §4). Status precedence: "
            "invalid > rejected > needs_approval > approved."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": list(KEYS),
        "properties": {
            "deal_id": {
                "type": ["string", "null"],
                "description": "The deal's id; null when the input could not be parsed or had no id.",
            },
            "status": {"enum": _STATUSES},
            "approvals": {
                **_STRINGS,
                "uniqueItems": True,
                "description": "Every role a fired rule required, ordered by rulesets/approvers.yaml.",
            },
            "policies": {
                "type": "object",
                "description": "Each policy family's own result.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["status", "fired", "outputs"],
                    "properties": {
                        "status": {"enum": _STATUSES},
                        "fired": {
                            **_STRINGS,
                            "description": "Rule and table ids, in firing order.",
                        },
                        "outputs": {
                            "type": "object",
                            "description": "Money as decimal strings in minor units; fractions rounded to 4 places.",
                        },
                    },
                },
            },
            "reasons": {"type": "array", "items": message},
            "flags": {
                "type": "array",
                "description": (
                    "The rules' flags, then dealdesk's own about the deal: an unknown key inside "
                    "a known object or line (policy and rule empty, path naming the key)."
                ),
                "items": {
                    **message,
                    "properties": {
                        **message["properties"],  # type: ignore[dict-item]
                        "path": {"type": "string", "description": "The deal's unknown key."},
                    },
                },
            },
            "clauses": {
                "type": "array",
                "description": "Empty unless clauses were asked for (--clauses).",
                "items": {
                    "type": "object",
                    "required": ["id", "policy", "rule"],
                    "properties": {
                        "id": {
                            "type": "string",
                            "description": "Template id, e.g. billing/milestones.",
                        },
                        "policy": {"type": "string"},
                        "rule": {"type": "string"},
                        "title": {"type": "string"},
                        "text": {"type": "string"},
                    },
                },
            },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "path": {
                            "type": "string",
                            "description": "The field, e.g. lines[2].unit_cost.",
                        },
                        "message": {"type": "string"},
                        "plugin": {"type": "string"},
                        "rule": {"type": "string"},
                    },
                },
            },
            "provenance": {
                "type": "object",
                "required": ["rulesets", "digest", "dealdesk"],
                "properties": {
                    "rulesets": {"type": "object", "additionalProperties": {"type": "string"}},
                    "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                    "dealdesk": {"type": "string", "examples": [__version__]},
                },
            },
        },
    }
