"""The wiring every command needs: plugins → renderer → validated policy set → evaluator.

:func:`build` is what the CLI (and tests, and anyone embedding dealdesk) calls to get a ready
:class:`App`: the collected plugins, a renderer over their templates, the rulesets loaded with
SPEC §6/§7's ``-r`` semantics, the readers and writers (built-in ones merged with plugin ones),
and an :class:`~dealdesk.evaluate.Evaluator` built on first use.

``-r`` semantics: with no ruleset paths, every registered policy family's ``rulesets`` path is
loaded. Explicit paths replace the **built-in** families' rulesets (the house policy) but keep
those of external plugins, unless ``no_plugin_rulesets`` is set. A ruleset name defined twice is
a validation error; the same file reached twice (a directory and a file in it) is loaded once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from dealdesk import __version__, combine
from dealdesk.deal.validate import validate_deal
from dealdesk.errors import DealdeskError
from dealdesk.evaluate import Evaluator, PolicyRun
from dealdesk.io.readers import READERS, Reader, SourceDeal, read_deals
from dealdesk.io.writers import WRITERS, WriterFactory
from dealdesk.manager import Plugins, load_plugins
from dealdesk.rules.policyset import (
    Environment,
    PolicySet,
    house_approvers,
    load_policy_set,
    ruleset_files,
)
from dealdesk.templating import Renderer

__all__ = [
    "App",
    "RecordWriter",
    "build",
    "decision_json_schema",
    "ruleset_paths",
]

#: ``func(records, out)``: writes every record of ``records`` (in order, as they come) to ``out``.
#: The shape plugin writers have (``dealdesk_writers``); built-in writers are adapted to it.
RecordWriter = Callable[[Iterable[Mapping[str, Any]], TextIO], None]


def _adapt(factory: WriterFactory) -> RecordWriter:
    """A built-in ``Writer`` class as a ``func(records, out)`` writer."""

    def write_records(records: Iterable[Mapping[str, Any]], out: TextIO) -> None:
        writer = factory(out)
        for record in records:
            writer.write(record)
        writer.close()

    write_records.__name__ = f"write_{getattr(factory, '__name__', 'records')}"
    return write_records


@dataclass
class App:
    """Everything one command run uses; build it with :func:`build`.

    :ivar plugins: the collected plugins.
    :ivar renderer: messages, clauses and memos over every plugin's template directory.
    :ivar policy_set: the validated, compiled rulesets.
    :ivar clauses: whether records carry rendered clause texts.
    :ivar ruleset_files: the ruleset files loaded, in load order.
    :ivar readers: suffix (``.json``) → reader; plugin readers override built-in ones.
    :ivar writers: format (``jsonl``) → ``func(records, out)``; plugin writers override.
    """

    plugins: Plugins
    renderer: Renderer
    policy_set: PolicySet
    clauses: bool = False
    ruleset_files: list[Path] = field(default_factory=list)
    readers: dict[str, Reader] = field(default_factory=dict)
    writers: dict[str, RecordWriter] = field(default_factory=dict)

    @cached_property
    def evaluator(self) -> Evaluator:
        """The evaluator, built (and its strata registered with durable_rules) on first use."""
        return Evaluator(self.policy_set, self.plugins, self.renderer, clauses=self.clauses)

    # -- reading

    def read(self, paths: Sequence[str], stdin: Any = None) -> Iterator[SourceDeal]:
        """Every deal of ``paths`` in order; every path is checked before this returns.

        :raises UsageError: a missing or unreadable path, an unknown suffix (exit status 2).
        """
        deals = read_deals(paths, self.readers, stdin)
        try:
            first = next(deals)  # read_deals checks every path before its first deal
        except StopIteration:
            return iter(())
        return _chain(first, deals)

    # -- evaluating

    def evaluate_source(self, source: SourceDeal) -> dict[str, Any]:
        """The record of one deal as read; an unparseable one gives an ``invalid`` record."""
        if source.error is not None:
            return self.source_error_record(source)
        return self.evaluator.evaluate(source.deal)

    def source_error_record(self, source: SourceDeal) -> dict[str, Any]:
        """The ``invalid`` record of a deal that could not be parsed (``deal_id`` null).

        Like every final record it goes to the ``dealdesk_decision`` sinks (through the
        evaluator, which records a failing sink as it does for any deal).
        """
        error: dict[str, Any] = {
            "path": "",
            "message": source.error or f"{source.source}: unreadable",
        }
        if source.plugin is not None:
            error["plugin"] = source.plugin
        record = combine.invalid_record(None, [error], self.evaluator.provenance)
        return self.evaluator.finish(record)

    def prepared(self, raw: Any) -> dict[str, Any] | None:
        """The deal with every derived fact (what rules and templates see), or None if invalid."""
        deal, problems = validate_deal(raw, self.evaluator.fact_types)
        if problems or deal is None:
            return None
        try:
            return self.evaluator.prepare(deal)
        except DealdeskError:  # a failing plugin; the record says why
            return None

    def evaluate_with_runs(self, raw: Any) -> tuple[dict[str, Any], dict[str, PolicyRun]]:
        """The record and each policy's run (for ``explain`` and ``test``)."""
        return self.evaluator.evaluate_with_runs(raw)


def _chain(first: SourceDeal, rest: Iterator[SourceDeal]) -> Iterator[SourceDeal]:
    yield first
    yield from rest


def ruleset_paths(
    plugins: Plugins,
    rulesets: Sequence[str | Path] | None = None,
    *,
    no_plugin_rulesets: bool = False,
) -> list[Path]:
    """The ruleset files to load, with SPEC §6/§7's ``-r`` semantics, each file once.

    :param rulesets: explicit files or directories (``-r``); ``None`` or empty for the default.
    :param no_plugin_rulesets: leave out the rulesets of external (not built-in) plugins.
    :raises UsageError: an explicit path that does not exist.
    """
    sources: list[Path] = [Path(p) for p in rulesets or ()]
    for family in plugins.policies.values():
        if family.rulesets is None:
            continue
        if family.builtin and rulesets:
            continue  # an explicit -r replaces the house policy
        if not family.builtin and no_plugin_rulesets:
            continue
        if Path(family.rulesets).exists():  # a family may declare a directory it ships empty
            sources.append(Path(family.rulesets))
    files: list[Path] = []
    # the approver ranks live next to the house rulesets but are not one (`-r rulesets/`)
    seen: set[Path] = {Path(str(resources.files("dealdesk.rulesets") / "approvers.yaml")).resolve()}
    for file in ruleset_files(sources):
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            files.append(file)
    return files


def environment(plugins: Plugins, renderer: Renderer) -> Environment:
    """What validation checks names against: families, actions, clauses, roles, plugin facts."""
    return Environment(
        plugins.policies,
        plugins.actions,
        renderer.has_clause,
        house_approvers(),
        plugins.fact_types,
    )


def build(
    rulesets: Sequence[str | Path] | None = None,
    *,
    disabled: Sequence[str] = (),
    enabled: Sequence[str] = (),
    no_plugin_rulesets: bool = False,
    clauses: bool = False,
    autoload: bool | None = None,
) -> App:
    """Collect the plugins, load and validate the rulesets, and return a ready :class:`App`.

    :param rulesets: ``-r`` paths; ``None``/empty loads every registered family's rulesets.
    :param disabled: plugin names to block (``-p no:NAME``).
    :param enabled: plugins to load even with autoload off (``-p NAME``).
    :param no_plugin_rulesets: leave out external plugins' rulesets.
    :param clauses: render clause texts into every record.
    :param autoload: load ``dealdesk`` entry points; ``None`` follows
        ``DEALDESK_DISABLE_PLUGIN_AUTOLOAD``.
    :raises ValidationFailed: every problem in the rulesets (nothing is loaded).
    :raises UsageError: a ruleset path that does not exist or cannot be read.
    :raises PluginError: a plugin that cannot be imported or fails while registering.
    """
    plugins = load_plugins(autoload=autoload, disabled=disabled, enabled=enabled)
    renderer = Renderer(plugins.template_dirs, plugins.filters)
    files = ruleset_paths(plugins, rulesets, no_plugin_rulesets=no_plugin_rulesets)
    policy_set = load_policy_set(files, environment(plugins, renderer))
    # plugin readers and writers are keyed like the built-in ones (suffix_key, lower case)
    readers: dict[str, Reader] = {**READERS, **plugins.readers}
    writers: dict[str, RecordWriter] = {k: _adapt(v) for k, v in WRITERS.items()}
    writers.update(plugins.writers)
    return App(plugins, renderer, policy_set, clauses, files, readers, writers)


# ---------------------------------------------------------------------------------------------
# The decision record's JSON Schema (SPEC §4), for `dealdesk schema decision`

_STATUSES = list(combine.STATUS_ORDER)
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
        "required": [
            "deal_id",
            "status",
            "approvals",
            "policies",
            "reasons",
            "flags",
            "clauses",
            "errors",
            "provenance",
        ],
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
            "flags": {"type": "array", "items": message},
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
