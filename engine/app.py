"""The wiring every command needs: plugins → renderer → validated policy set → engine.

:func:`build` is what the CLI (and tests, and anyone embedding dealdesk) calls to get a ready
:class:`App`: the collected plugins, a renderer over their templates, the rulesets loaded with
SPEC §6/§7's ``-r`` semantics, the readers and writers (built-in ones merged with plugin ones),
and a :class:`~dealdesk.pipeline.Pipeline` on the chosen engine, built on first use.

``-r`` semantics: with no ruleset paths, every registered policy family's ``rulesets`` path is
loaded. Explicit paths replace the **built-in** families' rulesets (the house policy) but keep
those of external plugins, unless ``no_plugin_rulesets`` is set. A ruleset name defined twice is
a validation error; the same file reached twice (a directory and a file in it) is loaded once.
An ``approvers.yaml`` among the files gives the approver ranks (:mod:`dealdesk.rules.policyset`);
paths that hold no ruleset at all are a usage error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

from dealdesk.engines import build_engine, engine_name
from dealdesk.errors import UsageError, ValidationFailed
from dealdesk.io.readers import READERS, DealReader, Reader, SourceDeal, read_deals
from dealdesk.io.writers import WRITERS, WriteContext, WriterFactory
from dealdesk.manager import Plugins, load_plugins
from dealdesk.pipeline import Decision, Pipeline
from dealdesk.rules.policyset import (
    Environment,
    PolicySet,
    is_approvers_file,
    load_policy_set,
    ruleset_files,
)
from dealdesk.templating import Renderer

__all__ = [
    "App",
    "RecordWriter",
    "build",
    "located",
    "ruleset_paths",
]

#: ``func(records, out)``: writes every record of ``records`` (in order, as they come) to ``out``.
#: The shape plugin writers have (``dealdesk_writers``); built-in writers are adapted to it.
RecordWriter = Callable[[Iterable[Mapping[str, Any]], TextIO], None]


def _adapt(factory: WriterFactory, context: WriteContext | None = None) -> RecordWriter:
    """A built-in ``Writer`` class as a ``func(records, out)`` writer, given ``context`` (rule
    descriptions, approver ranks, declared outputs) when it is built."""

    def write_records(records: Iterable[Mapping[str, Any]], out: TextIO) -> None:
        writer = factory(out, context)
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
    :ivar ruleset_files: the files loaded, in load order: rulesets and any ``approvers.yaml``.
    :ivar readers: suffix (``.json``) → reader; plugin readers override built-in ones.
    :ivar writers: format (``jsonl``) → ``func(records, out)``; plugin writers override.
    :ivar engine: the engine's name (``native``, ``durable``).
    """

    plugins: Plugins
    renderer: Renderer
    policy_set: PolicySet
    clauses: bool = False
    ruleset_files: list[Path] = field(default_factory=list)
    readers: dict[str, Reader] = field(default_factory=dict)
    writers: dict[str, RecordWriter] = field(default_factory=dict)
    engine: str = "native"

    @cached_property
    def pipeline(self) -> Pipeline:
        """The pipeline on the chosen engine, built (its rulesets lowered) on first use.

        :raises EngineError: a ruleset this engine cannot run.
        """
        engine = build_engine(self.engine, self.policy_set, self.plugins.actions)
        return Pipeline(self.policy_set, self.plugins, self.renderer, engine, clauses=self.clauses)

    # -- reading

    def read(self, paths: Sequence[str], stdin: Any = None, *, lazy: bool = False) -> DealReader:
        """Every deal of ``paths`` in order; every path is checked before this returns.

        :param lazy: JSONL lines are left for :meth:`SourceDeal.parsed` to parse (in a worker).
        :raises UsageError: a missing or unreadable path, an unknown suffix (exit status 2).
        """
        return read_deals(paths, self.readers, stdin, lazy=lazy)

    # -- evaluating

    def evaluate_source(self, source: SourceDeal) -> dict[str, Any]:
        """The record of one deal as read; an unparseable one gives an ``invalid`` record."""
        return self.evaluate_sources([source])[0]

    def evaluate_sources(self, sources: Sequence[SourceDeal]) -> list[dict[str, Any]]:
        """The records of deals as read, in order, the readable ones decided as one chunk."""
        return [record for record, _ in self.decide_sources(sources)]

    def decide_sources(
        self, sources: Sequence[SourceDeal], encode: Callable[[dict[str, Any]], str] | None = None
    ) -> list[tuple[dict[str, Any], str | None]]:
        """The records of deals as read, in order, the readable ones decided as one chunk:
        ``(record, None)``, or with ``encode``, ``(its summary's keys, encoded)`` where the
        engine has the record encoded already (:meth:`Pipeline.decide_encoded`)."""
        readable = [s.deal for s in sources if s.error is None]
        decided = iter(
            self.pipeline.decide_encoded(readable, encode)
            if encode is not None
            else [(record, None) for record in self.pipeline.decide(readable)]
        )
        records: list[tuple[dict[str, Any], str | None]] = []
        for source in sources:
            if source.error is not None:
                records.append((self.source_error_record(source), None))
                continue
            record, text = next(decided)
            if text is None:
                located(record, source.source)
            records.append((record, text))
        return records

    def source_error_record(self, source: SourceDeal) -> dict[str, Any]:
        """The ``invalid`` record of a deal that could not be parsed (``deal_id`` null, unless
        the reader could read the id: ``SourceDeal.deal_id``)."""
        error: dict[str, Any] = {
            "path": "",
            "message": source.error or f"{source.source}: unreadable",
        }
        if source.plugin is not None:
            error["plugin"] = source.plugin
        return self.pipeline.invalid(source.deal_id, [error])

    def decide(self, raw: Any) -> Decision:
        """The record, each policy's run and the prepared deal (``explain``, ``test``)."""
        return self.pipeline.decide_one(raw)


def located(record: dict[str, Any], where: str) -> dict[str, Any]:
    """``record`` with each error saying ``where`` the deal was read (``book.jsonl:7: ...``)
    when it has no ``deal_id`` (no id, not a mapping): only its place finds such a deal. The
    record of a deal with an id is left as it is."""
    if record["deal_id"] is None:
        prefix = f"{where}: "
        for error in record["errors"]:
            message = error["message"]
            if not (isinstance(message, str) and message.startswith(prefix)):
                error["message"] = f"{prefix}{message}"
    return record


def ruleset_paths(
    plugins: Plugins,
    rulesets: Sequence[str | Path] | None = None,
    *,
    no_plugin_rulesets: bool = False,
) -> list[Path]:
    """The files to load, with SPEC §6/§7's ``-r`` semantics, each file once: the rulesets and
    any ``approvers.yaml`` beside them (the approver ranks, never read as a ruleset).

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
    seen: set[Path] = set()
    for file in ruleset_files(sources):
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            files.append(file)
    return files


def build(
    rulesets: Sequence[str | Path] | None = None,
    *,
    disabled: Sequence[str] = (),
    enabled: Sequence[str] = (),
    no_plugin_rulesets: bool = False,
    clauses: bool = False,
    autoload: bool | None = None,
    engine: str | None = None,
) -> App:
    """Collect the plugins, load and validate the rulesets, and return a ready :class:`App`.

    :param rulesets: ``-r`` paths; ``None``/empty loads every registered family's rulesets.
    :param disabled: plugin names to block (``-p no:NAME``).
    :param enabled: plugins to load even with autoload off (``-p NAME``).
    :param no_plugin_rulesets: leave out external plugins' rulesets.
    :param clauses: render clause texts into every record.
    :param autoload: load ``dealdesk`` entry points; ``None`` follows
        ``DEALDESK_DISABLE_PLUGIN_AUTOLOAD``.
    :param engine: ``native`` or ``durable``; ``None`` follows ``DEALDESK_ENGINE``, else the
        default engine.
    :raises ValidationFailed: every problem in the rulesets and template files (nothing is
        loaded).
    :raises UsageError: a ruleset path that does not exist or cannot be read, or paths that
        hold no ruleset.
    :raises PluginError: a plugin that cannot be imported or fails while registering.
    """
    chosen = engine_name(engine)
    plugins = load_plugins(autoload=autoload, disabled=disabled, enabled=enabled)
    renderer = Renderer(plugins.template_dirs, plugins.filters)
    files = ruleset_paths(plugins, rulesets, no_plugin_rulesets=no_plugin_rulesets)
    if all(is_approvers_file(file) for file in files):
        # no rule at all would approve every deal: a wrong -r must not look like a clean run
        problem = (
            f"no rulesets in {', '.join(map(str, rulesets))}: no .yaml or .yml ruleset file there"
            if rulesets
            else "no rulesets to load: no enabled policy family ships any; give them with -r"
        )
        raise UsageError(f"{problem} (with none, every deal would be approved)")
    # the one validation environment of every command (validate, evaluate, test, explain...)
    # every template file compiles, asked for by a rule or not (a plugin action may ask)
    template_problems = renderer.template_problems()
    try:
        policy_set = load_policy_set(files, Environment.of(plugins, renderer))
    except ValidationFailed as exc:
        # a template a rule asks for was reported at that rule already, naming its line
        said = "\n".join(error.message for error in exc.errors)
        unsaid = [p for p in template_problems if f"{p.message.split(':')[0]} line" not in said]
        raise ValidationFailed([*exc.errors, *unsaid], exc.warnings) from None
    if template_problems:
        raise ValidationFailed(template_problems, policy_set.warnings)
    # plugin readers and writers are keyed like the built-in ones (suffix_key, lower case)
    readers: dict[str, Reader] = {**READERS, **plugins.readers}
    context = WriteContext.of(policy_set)
    writers: dict[str, RecordWriter] = {k: _adapt(v, context) for k, v in WRITERS.items()}
    writers.update(plugins.writers)
    return App(plugins, renderer, policy_set, clauses, files, readers, writers, chosen)
