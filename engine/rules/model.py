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
from pathlib import Path
from typing import Any

from dealdesk.errors import Location, RulesetError, closest, short_repr
from dealdesk.rules import cache
from dealdesk.rules.loader import Document, lookup_path

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
    key = cache.digest(_schema_text(), _CHECKS, text) if text is not None else None
    if key is not None and cache.is_marked("schema-ok", key):
        return []
    errors = _schema_errors(doc)
    if key is not None and not errors:
        cache.mark("schema-ok", key)
    return errors


#: Bumped when :func:`_meaning_errors` checks more, so texts remembered as passing are checked again.
_CHECKS = "meaning-2"


@functools.cache
def _schema_text() -> str:
    return json.dumps(RULESET_SCHEMA, sort_keys=True)


def _schema_errors(doc: Document) -> list[RulesetError]:
    errors: list[RulesetError] = []
    for error in sorted(
        _validator().iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        path = tuple(error.absolute_path)
        suggestion = None
        location = doc.location(path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            # every unknown key of the mapping, each where it is written
            errors.extend(_unknown_key(doc, (*path, key), allowed) for key in extra)
            if extra:
                continue
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
            message = _plain(error)
        errors.append(RulesetError(message, location, suggestion))
    errors.extend(_meaning_errors(doc))
    return errors


#: Other names of the effective window's ends, for "did you mean".
_WINDOW_WORDS = {"until": "to", "till": "to", "end": "to", "since": "from", "start": "from"}


def _unknown_key(doc: Document, path: tuple[str | int, ...], allowed: list[str]) -> RulesetError:
    key = str(path[-1])
    suggestion = closest(key, allowed)
    if suggestion is None and path[:1] == ("effective",):
        # the window's ends are short words that other names of them are not close to
        word = closest(key.lower(), _WINDOW_WORDS, cutoff=0.7)
        suggestion = _WINDOW_WORDS[word] if word else None
    if not path[:-1] and closest(key, ["approvers"], cutoff=0.8):
        # the ranks are the whole set's, so they are a file of their own
        return RulesetError(
            f"unknown key {key!r}: approver ranks go in an approvers.yaml beside the rulesets",
            doc.key_location(path),
            None if key == "approvers" else "approvers",
        )
    message = f"unknown key {key!r}" + ("" if suggestion else f" (allowed: {', '.join(allowed)})")
    return RulesetError(message, doc.key_location(path), suggestion)


def _meaning_errors(doc: Document) -> list[RulesetError]:
    """Problems of a well-shaped ruleset that its schema cannot say: arguments with no action
    to take them, and an effective window that ends before it starts."""
    errors = []
    data = doc.data
    for kind in ("rules", "tables"):
        units = data.get(kind)
        for i, unit in enumerate(units if isinstance(units, list) else []):
            if not isinstance(unit, dict):
                continue
            rows: list[Any] = unit["rows"] if isinstance(unit.get("rows"), list) else []
            thens: list[tuple[tuple[str | int, ...], Any]] = (
                [((kind, i, "then"), unit.get("then"))] if kind == "rules" else []
            )
            thens += [
                ((kind, i, "rows", j, "then"), row.get("then"))
                for j, row in enumerate(rows)
                if isinstance(row, dict)
            ]
            for path, then in thens:
                if isinstance(then, dict) and "with" in then and "action" not in then:
                    errors.append(
                        RulesetError(
                            "'with' gives the arguments of an action, but there is no 'action'",
                            doc.key_location((*path, "with")),
                        )
                    )
    effective = data.get("effective") if isinstance(data.get("effective"), dict) else {}
    start, end = effective.get("from"), effective.get("to")
    if _is_date(start) and _is_date(end) and str(start) > str(end):
        errors.append(
            RulesetError(
                f"effective window ends ({end}) before it starts ({start})",
                doc.location(("effective", "to")),
            )
        )
    return errors


def _is_date(value: Any) -> bool:
    import datetime as dt

    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return len(str(value)) == 10


#: How a schema type reads in a message.
_KINDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def _plain(error: Any) -> str:
    """A schema error in the author's words: ``when: expected text, got 5``, not jsonschema's
    ``rules.0.when: 5 is not of type 'string'`` (nor Python's ``None`` or ``{'a': 1}``)."""
    path = list(error.absolute_path)
    # the line and column say which rule; the key says which of its values
    keys = [p for p in path if isinstance(p, str)]
    where = keys[-1] if keys else "ruleset"
    if keys and keys[0] == "effective":
        where = ".".join(keys)
    if path and isinstance(path[-1], int):
        where += f"[{path[-1]}]"
    got = _shown(error.instance)
    if error.validator == "type":
        kinds = error.validator_value
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        return f"{where}: expected {' or '.join(_KINDS.get(k, k) for k in kinds)}, got {got}"
    if error.validator == "anyOf":
        kinds = [_KINDS.get(s.get("type"), "a value") for s in error.validator_value]
        if "a list" in kinds:
            kinds[kinds.index("a list")] = "a list of text"
        return f"{where}: expected {' or '.join(kinds)}, got {got}"
    if error.validator == "minItems":
        return f"{where}: expected at least one item, got none"
    if error.validator == "minLength":
        return f"{where}: must not be empty"
    if error.validator == "minimum":
        return f"{where}: expected {error.validator_value} or more, got {got}"
    if error.validator == "format" and error.validator_value == "date":
        return f"{where}: expected a date (YYYY-MM-DD), got {got}"
    return f"{where}: {error.message}"


def _shown(value: Any) -> str:
    """A YAML value as the author wrote it, shortly: text quoted, a mapping or list named."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return short_repr(value)


#: Keys of a rule or table that can be left out (their defaults) when their value is malformed.
_OPTIONAL = frozenset(
    {"priority", "description", "hit", "aggregation", "complete", "output_priority"}
)


#: What stands in for a rule's missing or malformed condition or actions, so that the rest of
#: the rule is still checked (never loaded: the set has errors by then).
_STAND_INS: dict[str, Any] = {"when": "exists(id)", "then": {}}


def readable(doc: Document) -> Document | None:
    """``doc`` without the parts its schema errors are about, so that the rest can still be
    checked: a schema problem in one rule must not hide the problems of the others (nor of its
    own conditions and roles). None when what is left is not a ruleset (no policy to check it in).

    Unknown keys are dropped; a malformed optional value falls back to its default; a malformed
    action, output, row, rule, table or test is left out. Lists keep their length (a left-out
    item is None), so that every position still names the same place in the file.
    """
    import copy

    if not isinstance(doc.data, dict):
        return None
    data = copy.deepcopy(doc.data)
    for error in _validator().iter_errors(doc.data):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            parent = lookup_path(data, path)
            allowed = error.schema.get("properties", {})
            for key in [k for k in parent if k not in allowed] if isinstance(parent, dict) else []:
                del parent[key]
            continue
        if error.validator == "required" and not path:
            continue  # readable() names a ruleset without a name; without a policy it gives up
        if len(path) == 2 and path[0] == "rules" and isinstance(lookup_path(data, path), dict):
            missing = [k for k in _STAND_INS if k not in lookup_path(data, path)]
            if error.validator == "required" and missing:
                lookup_path(data, path).update({k: _STAND_INS[k] for k in missing})
                continue
        if len(path) == 3 and path[0] == "rules" and path[2] in _STAND_INS:
            lookup_path(data, path[:2])[path[2]] = _STAND_INS[path[2]]
            continue
        _leave_out(data, path)
    if not isinstance(data.get("policy"), str):
        return None
    if not isinstance(data.get("ruleset"), str):
        data["ruleset"] = Path(doc.file).stem
    return Document(doc.file, data, doc.spans, doc.text, doc.keys)


def _leave_out(data: dict[str, Any], path: list[Any]) -> None:
    """Remove the smallest part of ``data`` around ``path`` that can go without breaking the
    ruleset's shape (see :func:`readable`)."""
    top = path[0] if path else None
    if top is None:
        return
    if top in ("ruleset", "policy"):
        data.pop(top, None)  # readable() names the ruleset, or gives up without a policy
        return
    if top in ("rules", "tables", "tests") and len(path) >= 2:
        items = data.get(top)
        if not isinstance(items, list) or lookup_path(data, path[:2]) is None:
            return
        rest = path[2:]
        if top == "tables" and rest[:1] == ["rows"] and len(rest) >= 2:
            row_path, rest = path[:4], path[4:]
            if len(rest) >= 2 and rest[0] == "then":
                _drop(data, row_path + rest[:2])
            else:
                lookup_path(data, row_path[:3])[row_path[3]] = None
            return
        if top == "rules" and len(rest) >= 2 and rest[0] == "then":
            _drop(data, path[:5])  # one malformed action; the others are still checked
        elif top != "tests" and len(rest) >= 1 and rest[0] in _OPTIONAL:
            _drop(data, path[:3])
            if top == "tables" and rest[0] == "hit":
                # its aggregation was meant for the hit policy written, not the default
                _drop(data, [*path[:2], "aggregation"])
        else:
            items[path[1]] = None
        return
    if top == "outputs" and len(path) >= 2:
        # the output stays declared (so that reading it is no second error); a malformed
        # setting of it takes its default
        spec = lookup_path(data, path[:2])
        if len(path) >= 3 and isinstance(spec, dict):
            spec.pop(path[2], None)
        else:
            data["outputs"][path[1]] = {}
        return
    _drop(data, path[:2] if top == "effective" and len(path) >= 2 else path[:1])


def _drop(data: Any, path: list[Any]) -> None:
    parent = lookup_path(data, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
        parent[path[-1]] = None


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
        version=_version_text(doc),
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
        if raw is None:  # left out by readable()
            continue
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
        if raw is None:
            continue
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
                    if row is not None
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
        if raw is None:
            continue
        ruleset.tests.append(TestCase(raw["name"], raw["deal"], raw["expect"], ("tests", i)))
    return ruleset


def _version_text(doc: Document) -> str:
    """The version as written: YAML reads ``version: 1.10`` as the number 1.1, and provenance
    must say what the author wrote."""
    value = doc.data.get("version", "")
    span = doc.spans.get(("version",))
    if isinstance(value, int | float) and not isinstance(value, bool) and span and doc.text:
        import re

        written = re.match(r"[-+.\w]+", doc.text[span.index :])
        if written:
            return written.group()
    return str(value)


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
