"""The typed ruleset model (SPEC §3) and the JSON Schema that checks its shape.

:func:`read_ruleset` turns one located YAML document into a :class:`Ruleset` after checking it
against :data:`RULESET_SCHEMA` — the schema ``dealdesk schema ruleset`` prints for editors.
Expressions stay text here (with their locations); :mod:`dealdesk.engines.durable.lowering` parses them once the
whole set, and so every output name, is known.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from dealdesk.errors import Location, RulesetError, closest
from dealdesk.rules import cache
from dealdesk.rules.loader import Document

COMBINE_MODES = ("first", "max", "min", "sum", "list")
OUTPUT_TYPES = (
    "any",
    "money",
    "fraction",
    "number",
    "integer",
    "string",
    "boolean",
    "list",
    "object",
)
HIT_POLICIES = ("unique", "any", "first", "priority", "output order", "rule order", "collect")
AGGREGATIONS = ("sum", "min", "max", "count")

_STRINGS = {"type": "array", "items": {"type": "string"}}
_STATUS = {"enum": ["approved", "needs_approval", "rejected", "invalid"]}

#: Every key of a test case's ``expect:``: what its value must be, and what it checks.
EXPECT_KEYS: dict[str, tuple[str, str]] = {
    "status": ("a status", "the decision's status, all policies combined"),
    "policy_status": ("a status", "the status of this ruleset's own policy"),
    "fired": ("a list of rule or table ids", "ids that fired in this ruleset's policy"),
    "not_fired": ("a list of rule or table ids", "ids that did not fire in this policy"),
    "approvals": ("a list of roles", "the decision's approvals, exactly, in any order"),
    "outputs": (
        "a mapping of output names to values",
        "the listed outputs of this policy as the record shows them (money as a number or"
        " string; a mapping matches on the keys given)",
    ),
    "clauses": ("a list of clause ids", "the clause ids this policy's rules asked for, exactly"),
    "flags": ("a count (0 or more)", "how many flags this policy raised"),
}
_EXPECT_SCHEMAS: dict[str, dict[str, Any]] = {
    "status": _STATUS,
    "policy_status": _STATUS,
    "fired": _STRINGS,
    "not_fired": _STRINGS,
    "approvals": _STRINGS,
    "outputs": {"type": "object"},
    "clauses": _STRINGS,
    "flags": {"type": "integer", "minimum": 0},
}
_ACTIONS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "set": {
            "type": "object",
            "description": "Output values; a string starting with '=' is an expression.",
        },
        "require": {"description": "Approver role(s).", "anyOf": [{"type": "string"}, _STRINGS]},
        "reject": {"type": "string", "description": "Reject the deal with this message (Jinja)."},
        "flag": {
            "type": "string",
            "description": "A warning that does not change the status (Jinja).",
        },
        "clause": {
            "description": "Clause template id(s), e.g. billing/milestones.",
            "anyOf": [{"type": "string"}, _STRINGS],
        },
        "reason": {"type": "string", "description": "Why (Jinja), shown in the record's reasons."},
        "action": {"type": "string", "description": "A named action a plugin registered."},
        "with": {
            "type": "object",
            "description": "Arguments of the action; '=' strings are expressions.",
        },
    },
}
RULESET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://dealdesk.dev/schema/ruleset.json",
    "title": "dealdesk ruleset",
    "type": "object",
    "additionalProperties": False,
    "required": ["ruleset", "policy"],
    "properties": {
        "ruleset": {"type": "string", "minLength": 1, "description": "Unique name of the ruleset."},
        "policy": {
            "type": "string",
            "minLength": 1,
            "description": "The policy family (plugin) it feeds.",
        },
        "version": {
            "type": ["string", "number"],
            "description": "Free-form; part of the provenance.",
        },
        "description": {"type": "string"},
        "effective": {
            "type": "object",
            "additionalProperties": False,
            "description": "Window compared with dates.close (inclusive).",
            "properties": {
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
            },
        },
        "outputs": {
            "type": "object",
            "description": "How values set by several rules combine.",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "combine": {"enum": list(COMBINE_MODES), "default": "first"},
                    "type": {"enum": list(OUTPUT_TYPES), "default": "any"},
                    "default": {"description": "The value when no rule sets it (default null)."},
                    "description": {"type": "string"},
                },
            },
        },
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "when", "then"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "priority": {
                        "type": "integer",
                        "default": 0,
                        "description": "Higher first; ties keep file order.",
                    },
                    "when": {
                        "type": "string",
                        "minLength": 1,
                        "description": "A condition (SPEC §3).",
                    },
                    "then": _ACTIONS,
                },
            },
        },
        "tables": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "inputs", "rows"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    # SPEC §3 names the value order `priority` too: an integer is the table's
                    # rule priority, a mapping the value order of hit priority / output order
                    "priority": {
                        "description": "The table's priority among rules (integer), or "
                        "OUTPUT -> [highest, ..., lowest] for hit priority and output order.",
                        "anyOf": [
                            {"type": "integer"},
                            {"type": "object", "additionalProperties": {"type": "array"}},
                        ],
                    },
                    "hit": {"enum": list(HIT_POLICIES), "default": "unique"},
                    "aggregation": {"enum": list(AGGREGATIONS)},
                    "complete": {
                        "type": "boolean",
                        "default": True,
                        "description": "Whether every input combination has a row (DMN's "
                        "completeness indicator): validate reports the gaps of a complete "
                        "table; false when the table acts only on the cases it lists.",
                    },
                    "output_priority": {
                        "type": "object",
                        "description": "For hit priority / output order: OUTPUT -> values, highest first.",
                        "additionalProperties": {"type": "array"},
                    },
                    "inputs": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "rows": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["when", "then"],
                            "properties": {
                                "when": {
                                    "type": "array",
                                    "items": {"type": ["string", "number", "boolean"]},
                                },
                                "then": _ACTIONS,
                            },
                        },
                    },
                },
            },
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "deal", "expect"],
                "properties": {
                    "name": {"type": "string"},
                    "deal": {
                        "type": "object",
                        "description": "{file: path, patch: {...}} or an inline deal.",
                    },
                    "expect": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            key: {**schema, "description": EXPECT_KEYS[key][1]}
                            for key, schema in _EXPECT_SCHEMAS.items()
                        },
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Text:
    """A string from the file and where it starts (for expressions and messages)."""

    value: str
    path: tuple[str | int, ...]


@dataclass
class OutputSpec:
    name: str
    combine: str = "first"
    type: str = "any"
    location: Location | None = None
    default: Any = None


@dataclass
class Actions:
    """What a rule (or a table row) does when it fires."""

    sets: dict[str, Any] = field(default_factory=dict)  # name -> literal, or Text for '= expr'
    require: list[str] = field(default_factory=list)
    reject: Text | None = None
    flag: Text | None = None
    reason: Text | None = None
    clauses: list[str] = field(default_factory=list)
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)  # literals, or Text for '= expr'
    path: tuple[str | int, ...] = ()


@dataclass
class Rule:
    id: str
    when: Text
    then: Actions
    priority: int = 0
    description: str = ""
    order: int = 0
    path: tuple[str | int, ...] = ()


@dataclass
class Row:
    cells: list[Any]
    then: Actions
    index: int
    path: tuple[str | int, ...] = ()


@dataclass
class Table:
    id: str
    inputs: list[Text]
    rows: list[Row]
    hit: str = "unique"
    aggregation: str | None = None
    value_order: dict[str, list[Any]] = field(default_factory=dict)
    priority: int = 0
    description: str = ""
    order: int = 0
    path: tuple[str | int, ...] = ()
    complete: bool = True


@dataclass
class TestCase:
    name: str
    deal: dict[str, Any]
    expect: dict[str, Any]
    path: tuple[str | int, ...] = ()


@dataclass
class Ruleset:
    name: str
    policy: str
    document: Document
    version: str = ""
    description: str = ""
    effective_from: str | None = None
    effective_to: str | None = None
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    tests: list[TestCase] = field(default_factory=list)
    source: str = ""

    def units(self) -> list[Rule | Table]:
        """Its rules, then its decision tables."""
        return [*self.rules, *self.tables]

    @property
    def file(self) -> str:
        return self.document.file

    def location(
        self, path: tuple[str | int, ...], offset: tuple[int, int] | None = None
    ) -> Location:
        return self.document.location(path, offset)

    def applies_on(self, close: str | None) -> bool:
        """Whether the effective window holds ``close`` (an ISO date); no date means it does."""
        if close is None:
            return True
        if self.effective_from and close < self.effective_from:
            return False
        return not (self.effective_to and close > self.effective_to)


@functools.cache
def _validator() -> Any:
    import jsonschema  # when a ruleset is checked, not when the model (or its schema) is imported

    return jsonschema.Draft202012Validator(
        RULESET_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def schema_errors(doc: Document, text: str | None = None) -> list[RulesetError]:
    """Every place where ``doc`` does not have the shape of a ruleset, located.

    With ``text`` (the file's text), a text that passed once is not checked again: that it
    passed (with the schema's and dealdesk's version) is remembered in the cache folder
    (:mod:`dealdesk.rules.cache`). Only a text without problems is remembered, so every error is
    always reported.
    """
    key = cache.digest(_schema_text(), text) if text is not None else None
    if key is not None and cache.is_marked("schema-ok", key):
        return []
    errors = _schema_errors(doc)
    if key is not None and not errors:
        cache.mark("schema-ok", key)
    return errors


@functools.cache
def _schema_text() -> str:
    return json.dumps(RULESET_SCHEMA, sort_keys=True)


def _schema_errors(doc: Document) -> list[RulesetError]:
    errors = []
    for error in sorted(
        _validator().iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        path = tuple(error.absolute_path)
        suggestion = None
        location = doc.location(path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            if extra:
                path = (*path, extra[0])
                location = doc.key_location(path)
                suggestion = closest(str(extra[0]), allowed)
                message = f"unknown key {extra[0]!r}" + (
                    "" if suggestion else f" (allowed: {', '.join(allowed)})"
                )
                if extra[0] == "approvers" and not path[:-1]:
                    # the ranks are the whole set's, so they are a file of their own
                    suggestion = None
                    message = (
                        "unknown key 'approvers': approver ranks go in an approvers.yaml "
                        "beside the rulesets"
                    )
            else:
                message = error.message
        elif error.validator == "enum":
            options = [str(o) for o in error.validator_value]
            suggestion = closest(str(error.instance), options)
            message = f"{error.instance!r} is not one of: {', '.join(options)}"
        elif error.validator == "required":
            message = error.message.replace("is a required property", "is required")
        elif (
            len(path) >= 4 and path[0] == "tests" and path[2] == "expect" and path[3] in EXPECT_KEYS
        ):
            # a wrong value of an expect key says what the key wants, not the schema's words
            key = str(path[3])
            value: Any = doc.data
            for step in path[:4]:
                value = value[step]
            location = doc.location(path[:4])
            got = json.dumps(value, default=str, ensure_ascii=False)
            message = f"expect.{key}: expected {EXPECT_KEYS[key][0]}, got {got}"
        else:
            where = ".".join(map(str, error.absolute_path)) or "ruleset"
            message = f"{where}: {error.message}"
        errors.append(RulesetError(message, location, suggestion))
    return errors


def read_ruleset(doc: Document, *, checked: bool = False) -> Ruleset:
    """Build the model of one ruleset document; raises the first shape problem found.

    Callers that want every problem call :func:`schema_errors` first, and pass ``checked``.
    """
    if not isinstance(doc.data, dict):
        raise RulesetError(
            "a ruleset file must hold a mapping (ruleset:, policy:, rules: ...)", doc.location(())
        )
    errors = [] if checked else schema_errors(doc)
    if errors:
        raise errors[0]
    data = doc.data
    effective = data.get("effective") or {}
    ruleset = Ruleset(
        name=data["ruleset"],
        policy=data["policy"],
        document=doc,
        version=str(data.get("version", "")),
        description=data.get("description", ""),
        effective_from=_date_text(effective.get("from")),
        effective_to=_date_text(effective.get("to")),
    )
    for name, spec in (data.get("outputs") or {}).items():
        spec = spec or {}
        ruleset.outputs[name] = OutputSpec(
            name,
            spec.get("combine", "first"),
            spec.get("type", "any"),
            doc.location(("outputs", name)),
            spec.get("default"),
        )
    order = 0
    for i, raw in enumerate(data.get("rules") or []):
        path: tuple[str | int, ...] = ("rules", i)
        ruleset.rules.append(
            Rule(
                id=str(raw["id"]),
                when=Text(raw["when"], (*path, "when")),
                then=_actions(raw["then"], (*path, "then")),
                priority=int(raw.get("priority", 0)),
                description=raw.get("description", ""),
                order=order,
                path=path,
            )
        )
        order += 1
    for i, raw in enumerate(data.get("tables") or []):
        path = ("tables", i)
        priority = raw.get("priority", 0)
        value_order = raw.get("output_priority") or (priority if isinstance(priority, dict) else {})
        ruleset.tables.append(
            Table(
                id=str(raw["id"]),
                inputs=[Text(text, (*path, "inputs", j)) for j, text in enumerate(raw["inputs"])],
                rows=[
                    Row(
                        list(row["when"]),
                        _actions(row["then"], (*path, "rows", j, "then")),
                        j,
                        (*path, "rows", j),
                    )
                    for j, row in enumerate(raw["rows"])
                ],
                hit=raw.get("hit", "unique"),
                aggregation=raw.get("aggregation"),
                value_order=dict(value_order),
                complete=raw.get("complete", True),
                priority=priority if isinstance(priority, int) else 0,
                description=raw.get("description", ""),
                order=order,
                path=path,
            )
        )
        order += 1
    for i, raw in enumerate(data.get("tests") or []):
        ruleset.tests.append(TestCase(raw["name"], raw["deal"], raw["expect"], ("tests", i)))
    return ruleset


def _date_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _actions(raw: dict[str, Any], path: tuple[str | int, ...]) -> Actions:
    def text(key: str) -> Text | None:
        return Text(raw[key], (*path, key)) if key in raw else None

    def listed(key: str) -> list[str]:
        value = raw.get(key) or []
        return [value] if isinstance(value, str) else list(value)

    def values(key: str) -> dict[str, Any]:
        return {
            name: Text(value, (*path, key, name))
            if isinstance(value, str) and value.startswith("=")
            else value
            for name, value in (raw.get(key) or {}).items()
        }

    return Actions(
        sets=values("set"),
        require=listed("require"),
        reject=text("reject"),
        flag=text("flag"),
        reason=text("reason"),
        clauses=listed("clause"),
        action=raw.get("action"),
        args=values("with"),
        path=path,
    )
