"""One deal's way through the stages: prepare → engine → combine → clauses (SPEC §2-§4, §8).

:class:`Pipeline` is built once per process (per worker) from the loaded policy set, the
plugins, the renderer and an engine. :meth:`Pipeline.decide` takes a chunk of raw deals and
returns one record per deal, in order, and never raises for a deal's fault: a bad deal, a
failing plugin, a message that cannot render or a bug costs that deal an ``invalid`` record.
Decision sinks are not called here: they are for ``evaluate``'s final records only
(:meth:`Pipeline.finish`), never for ``test`` or ``explain``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dealdesk import combine, jsoncodec
from dealdesk.deal.unknown import unknown_fields
from dealdesk.deal.validate import check_fact_types, deal_id_of, prepare_deal
from dealdesk.engines.base import Engine, Evaluation, Groups
from dealdesk.errors import PluginError, record_error

if TYPE_CHECKING:
    from dealdesk.evaluate import PolicyRun
    from dealdesk.manager import Plugins
    from dealdesk.rules.policyset import PolicySet
    from dealdesk.templating import Renderer


@dataclass
class Prepared:
    """A raw deal after validation, derivation and enrichment: ``data`` or ``errors``."""

    deal_id: str | None
    data: Mapping[str, Any] | None = None  # a dict, or a reader's view of the deal
    errors: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)  # unknown keys (deal/unknown.py)


@dataclass
class Decision:
    """A deal's record with what explain, test and render look at."""

    record: dict[str, Any]
    runs: dict[str, PolicyRun] = field(default_factory=dict)
    data: Mapping[str, Any] | None = None


class Pipeline:
    """Decides deals with one policy set, one set of plugins and one engine.

    :param clauses: render clause texts into the records (the slow part).
    """

    def __init__(
        self,
        policy_set: PolicySet,
        plugins: Plugins,
        renderer: Renderer,
        engine: Engine,
        *,
        clauses: bool = False,
    ):
        self.policy_set = policy_set
        self.plugins = plugins
        self.renderer = renderer
        self.engine = engine
        self.clauses = clauses
        self.fact_types = plugins.fact_types  # merged once: the plugins are loaded
        self.declared = tuple(sorted(self.fact_types))
        self.provenance = combine.provenance(policy_set.versions, policy_set.digest)
        self._clauses_known: dict[Any, bool] = {}
        # keys whose absence is enough for the enrich hooks to add nothing (_enriches_nothing)
        self._absent_enough: frozenset[str] | None = None
        self.combiner = combine.Combiner(
            policy_set.approvers, self.provenance, renderer.render_message, plugins.combine
        )

    # -- the stages

    def prepare(self, raw: Any) -> Prepared:
        """Validate ``raw`` and add the engine's derived facts and every plugin's."""
        try:
            data, problems = prepare_deal(raw, self.fact_types)
            # a typo inside a known object is said, never decided on (an invalid deal too:
            # `unit_cots` explains the missing unit_cost)
            flags = [f.flag() for f in unknown_fields(raw, self.declared)]
        except Exception as exc:  # a bug costs this deal only
            return Prepared(deal_id_of(raw), errors=[record_error(exc)])
        if problems or data is None:
            return Prepared(
                deal_id_of(raw),
                errors=[{"path": p.path, "message": p.message} for p in problems],
                flags=flags,
            )
        deal_id = data.get("id")
        try:
            extra = self.plugins.enrich(data)
            problems = check_fact_types(extra, self.fact_types)
            if problems:
                raise PluginError(
                    self._fact_owner(problems[0].path), "dealdesk_enrich", f"returned {problems[0]}"
                )
            data.update(extra)
        except Exception as exc:  # a failing plugin, or a bug: it costs this deal only
            return Prepared(deal_id, errors=[record_error(exc)], flags=flags)
        return Prepared(deal_id, data, flags=flags)

    def _fact_owner(self, path: str) -> str:
        # the plugin that declares the fact answers for its value
        head = path.split(".")[0].split("[")[0]
        return next(
            (
                p.plugin
                for p in self.plugins.policies.values()
                if any(f.split(".")[0] == head for f in p.facts)
            ),
            "?",
        )

    def decide(self, raws: Sequence[Any]) -> list[dict[str, Any]]:
        """One record per raw deal, in order."""
        return [d.record for d in self.decide_chunk(raws)]

    def evaluate(self, raw: Any) -> dict[str, Any]:
        """The record of one raw deal."""
        return self.decide_chunk([raw])[0].record

    def decide_one(self, raw: Any) -> Decision:
        """The record, runs and prepared data of one deal (``explain``, ``test``, ``render``)."""
        return self.decide_chunk([raw])[0]

    def decide_chunk(self, raws: Sequence[Any]) -> list[Decision]:
        """The decisions of a chunk of raw deals: prepared one by one, evaluated as a chunk."""
        return self._decisions([self.prepare(raw) for raw in raws])

    def _decisions(self, prepared: list[Prepared]) -> list[Decision]:
        evaluations = iter(self.engine.evaluate([p.data for p in prepared if p.data is not None]))
        return [
            self._decision(item, None if item.data is None else next(evaluations))
            for item in prepared
        ]

    def _decision(self, item: Prepared, evaluation: Evaluation | None) -> Decision:
        """``item``'s decision from its evaluation (None for a deal that is not valid)."""
        if item.data is None or evaluation is None:
            decision = Decision(self.invalid(item.deal_id, item.errors))
        elif evaluation.error is not None:
            decision = Decision(self.invalid(item.deal_id, [evaluation.error]))
        else:
            try:
                record = self.combine(item.deal_id, item.data, evaluation.runs)
            except Exception as exc:  # a message that cannot render, an output past JSON, a bug
                record = self.invalid(item.deal_id, [record_error(exc)])
            decision = Decision(record, evaluation.runs, item.data)
        if item.flags:  # after the rules' flags; status and approvals stay as decided
            decision.record["flags"].extend(item.flags)
        return decision

    def decide_encoded(
        self, raws: Sequence[Any], encode: Callable[[dict[str, Any]], str]
    ) -> list[tuple[dict[str, Any], str | None]]:
        """A chunk's records, each whole (``(record, None)``) or, for a deal an engine's group
        template holds (the columnar engine: ``Engine.grouped``), already encoded with
        ``encode`` as ``(the record's summary keys, text)``. The same records as
        :meth:`decide_chunk`, byte for byte."""
        prepared = [self.prepare(raw) for raw in raws]
        valid = [p.data for p in prepared if p.data is not None]
        groups = self.engine.grouped(valid, self.combiner) if self._templates(encode) else None
        if groups is None:
            return [(decision.record, None) for decision in self._decisions(prepared)]
        valid_index = iter(range(len(valid)))
        return [
            (self._decision(item, None).record, None)
            if item.data is None
            else self._grouped(item, next(valid_index), groups, encode)
            for item in prepared
        ]

    def decide_lines(
        self, lines: Sequence[bytes], encode: Callable[[dict[str, Any]], str]
    ) -> list[tuple[dict[str, Any], str | None] | None] | None:
        """:meth:`decide_encoded` for a chunk of JSONL lines an engine reads as columns itself
        (``Engine.read_lines``, the columnar engine's reader): per line its record (whole, or
        encoded), or None for a line the caller parses and decides deal by deal (one the reader
        found invalid, or one a plugin's enrich hook adds facts to). None when the engine does
        not read lines."""
        if not self._templates(encode):
            return None
        groups = self.engine.read_lines(lines, self.combiner)
        if groups is None:
            return None
        n = len(lines)
        results: list[tuple[dict[str, Any], str | None] | None] = list(self._filled(groups, n))
        # a group not known yet is taught by its first deal, decided in full; the others of
        # the chunk wait for it, then fill the template it taught
        taught: set[Hashable] = set()
        waiting: list[tuple[int, Prepared]] = []
        for index in range(n):
            if results[index] is not None:
                continue
            found = groups.prepared(index)
            if found is None or not self._enriches_nothing(found[1]):
                continue  # facts of its own (or a failing plugin): the caller decides it in full
            item = Prepared(*found)
            key = groups.key(index)
            if key in taught:
                waiting.append((index, item))
                continue
            taught.add(key)
            results[index] = self._grouped(item, index, groups, encode)
        if waiting:
            rows = [index for index, _ in waiting]
            filled = groups.filled(self._absent_enough or frozenset(), rows)
            for index, item in waiting:
                done = filled[index]
                results[index] = done or self._grouped(item, index, groups, encode)
        return results

    def _filled(self, groups: Groups, n: int) -> Sequence[tuple[dict[str, Any], str] | None]:
        """The records a chunk's group templates give without the deals' own data; the
        first valid deal, if need be, shows which keys the enrich hooks read."""
        if self._absent_enough is None:
            first = next((f for i in range(n) if (f := groups.prepared(i)) is not None), None)
            if first is not None:
                self._enriches_nothing(first[1])
        absent = self._absent_enough
        return [None] * n if absent is None else groups.filled(absent)

    def _enriches_nothing(self, deal: Mapping[str, Any]) -> bool:
        """Whether the plugins' enrich hooks add nothing to ``deal`` (False when one raises).

        A hook is a function of the deal (SPEC §7): when the hooks gave nothing for a deal and
        read only keys it does not have (``deal.get("billing")``), they give nothing for any
        deal without those keys, and are not asked again for such deals.
        """
        absent = self._absent_enough
        if absent is not None and all(key not in deal for key in absent):
            return True
        reads = _Reads(deal)
        try:
            if self.plugins.enrich(reads):
                return False
        except Exception:
            return False
        if not reads.whole and not reads.found:
            self._absent_enough = frozenset(reads.asked)
        return True

    def _grouped(
        self,
        item: Prepared,
        index: int,
        groups: Groups,
        encode: Callable[[dict[str, Any]], str],
    ) -> tuple[dict[str, Any], str | None]:
        """A valid deal's record: filled from its group's template, else made in full (and the
        template learnt from it)."""
        assert item.data is not None
        key = None if item.flags else groups.key(index)
        if key is not None:
            filled = groups.fill(key, index, item.deal_id, item.data)
            if filled is not None:
                return filled
        evaluation = groups.evaluate(index)
        decision = self._decision(item, evaluation)
        if key is not None and evaluation.error is None:
            groups.learn(key, item.data, evaluation.runs)
        return decision.record, None

    def _templates(self, encode: Callable[[dict[str, Any]], str]) -> bool:
        """Whether records may come from an engine's group templates: JSON as
        :func:`jsoncodec.dumps` writes it, and nothing that makes two records differ in other
        places (clauses, ``dealdesk_combine`` plugins)."""
        return encode is jsoncodec.dumps and not (self.clauses or self.plugins.has_combiners)

    def combine(
        self, deal_id: Any, data: Mapping[str, Any], runs: Mapping[str, PolicyRun]
    ) -> dict[str, Any]:
        self.check_action_clauses(runs)
        record, formatted = self.combiner.record(deal_id, data, runs)
        if self.clauses:
            self.render_clauses(record, data, runs, formatted)
        return record

    def check_action_clauses(self, runs: Mapping[str, PolicyRun]) -> None:
        """A clause a plugin action asked for (``ctx.clause``) must name a template, whether or
        not clauses are rendered: the record is the same with and without ``--clauses``.

        Only the existence of the template is checked, without rendering: validation compiled
        every template already, and a rule's own ``clause:`` was checked when it loaded.

        :raises PluginError: naming the plugin, the action and the rule.
        """
        for run in runs.values():
            for firing in run.firings:
                action = firing.rule.then.action
                if action is None:
                    continue
                for clause_id in firing.effects.clauses:
                    if clause_id in firing.rule.then.clauses or self._has_clause(clause_id):
                        continue
                    raise PluginError(
                        self.plugins.actions[action].plugin,
                        f"action {action!r} (rule {firing.rule.id})",
                        f"asked for the clause {clause_id!r}, but no template directory holds "
                        f"{clause_id}.md.j2",
                    )

    def _has_clause(self, clause_id: Any) -> bool:
        # one look at the disk per clause id and process: actions ask on every deal
        known = self._clauses_known.get(clause_id)
        if known is None:
            known = isinstance(clause_id, str) and self.renderer.has_clause(clause_id)
            self._clauses_known[clause_id] = known
        return known

    def render_clauses(
        self,
        record: dict[str, Any],
        data: Mapping[str, Any],
        runs: Mapping[str, PolicyRun],
        formatted: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Render every clause the fired rules asked for into ``record["clauses"]``."""
        from dealdesk.messages import template_context

        decision = {k: record[k] for k in ("status", "approvals", "reasons")}
        for name, run in runs.items():
            for firing in run.firings:
                for clause_id in firing.effects.clauses:
                    context = template_context(
                        data, outputs=formatted[name], rule=firing.rule.id, decision=decision
                    )
                    rendered = self.renderer.render_clause(clause_id, context)
                    record["clauses"].append(
                        {"id": clause_id, "policy": name, "rule": firing.rule.id, **rendered}
                    )

    def invalid(self, deal_id: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
        return combine.invalid_record(deal_id, errors, self.provenance)

    # -- after the record

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        """Hand a final ``evaluate`` record to the decision sinks; a failing sink makes it
        invalid, naming the plugin."""
        try:
            self.plugins.decision(record)
        except PluginError as exc:
            record["errors"].append({"path": "", "message": str(exc), "plugin": exc.plugin})
            record["status"] = "invalid"
        return record


def requested_clauses(runs: Mapping[str, PolicyRun]) -> list[dict[str, str]]:
    """The clause ids the fired rules asked for, without rendering them."""
    return [
        {"id": c, "policy": name, "rule": f.rule.id}
        for name, run in runs.items()
        for f in run.firings
        for c in f.effects.clauses
    ]


class _Reads(Mapping[str, Any]):
    """A deal as the enrich hooks see it, noting the keys they ask for, whether any was there,
    and whether they looked at the whole deal (iterating it)."""

    __slots__ = ("asked", "deal", "found", "whole")

    def __init__(self, deal: Mapping[str, Any]):
        self.deal = deal
        self.asked: set[str] = set()
        self.found = False
        self.whole = False

    def _note(self, key: Any, there: bool) -> None:
        self.asked.add(key)
        self.found = self.found or there or type(key) is not str

    def __getitem__(self, key: str) -> Any:
        self._note(key, key in self.deal)
        return self.deal[key]

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key, key in self.deal)
        return self.deal.get(key, default)

    def __contains__(self, key: object) -> bool:
        there = key in self.deal
        self._note(key, there)
        return there

    def __iter__(self) -> Iterator[str]:
        self.whole = True
        return iter(self.deal)

    def __len__(self) -> int:
        self.whole = True
        return len(self.deal)
