"""The columnar engine: a chunk of prepared deals evaluated as columns (SPEC §9, issue 8).

Where the per-deal engines match each deal's rules one deal at a time, this engine reads every
path the first stratum's conditions use once per chunk, as a column, and evaluates each
condition over the whole chunk with numpy: three-valued (SQL's Kleene logic, SPEC §3) as a pair
of masks, ``(true, false)``, where a row in neither is unknown — ``not`` swaps them, ``and`` is
``(t1 & t2, f1 | f2)``, ``or`` is ``(t1 | t2, f1 & f2)``, and a rule fires where ``true``.

Exactness comes first. A column is compared in the vector only when every value in it is of one
kind the comparison's meaning (:func:`dealdesk.rules.meaning._compare`) treats plainly:
``Decimal`` against a number (the derived facts and validated money are ``Decimal``; the
elements are compared as the ``Decimal`` objects they are, so ``max_line_discount > 0.30`` on a
list price of 100 sold at 70 is false, as in the per-deal engines), text against text that is not
a number, a boolean against a boolean. Anything else in a chunk — a value of another kind (an
untyped plugin fact), arithmetic, ``matches()``, ``any``/``all``, an ``and`` over an operand
that is not a condition — is evaluated row by row with the compiled closures of
:mod:`dealdesk.rules.meaning`, the per-deal meaning itself; a chunk whose vectors raise (a
``Decimal`` NaN from a plugin) is matched deal by deal, as the native engine would.

What is vectorised today: the conditions of every policy's first stratum that read no output.
Later strata (rules reading ``outputs.NAME``), hit policies, actions, outputs and the record
are the per-deal :class:`~dealdesk.evaluate.PolicyRunner`'s and the native engine's matcher's, so
records are byte-identical to ``native`` by construction. bench/README.md ("Columnar") says what
this removes of a deal's cost, and what comes next: prepare, derive and the record as columns.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from dealdesk.engines.base import Evaluation, Groups
from dealdesk.engines.columnar.records import (
    Hole,
    Later,
    PartTemplate,
    Template,
    nested,
    part_template,
    reads,
    templatable,
    template,
    why_not_templated,
)
from dealdesk.engines.columnar.vector import Chunk, ConditionVector, per_row_reasons, row_mask
from dealdesk.engines.native import NativeEngine, compile_stratum
from dealdesk.errors import record_error
from dealdesk.evaluate import PolicyRun, evaluation_order
from dealdesk.rules.expressions import Expr, children, fields

if TYPE_CHECKING:
    from dealdesk.combine import Combiner
    from dealdesk.engines.columnar.chunks import FrameChunk
    from dealdesk.manager import RegisteredAction
    from dealdesk.rules.policyset import CompiledRule, Policy, PolicySet


class _StratumPlan:
    """A first stratum split into the rules matched as columns and the rest (rules that read
    outputs), matched per deal by a native function; positions give the evaluation order."""

    def __init__(self, rules: list[CompiledRule], label: str):
        ordered = sorted(rules, key=evaluation_order)
        self.position = {id(r): i for i, r in enumerate(ordered)}
        self.vector = [r for r in ordered if not _reads_outputs(r.condition)]
        rest = [r for r in ordered if _reads_outputs(r.condition)]
        self.rest = compile_stratum(rest, label) if rest else None
        # the rules that fire for each set of fired rules seen (as the masks' bits): read-only
        self.fired_lists: dict[bytes, list[CompiledRule]] = {}


def _shared_keys(conditions: list[Expr]) -> dict[int, int]:
    """id(node) → one key for all equal subtrees of ``conditions`` (hashed here, once)."""
    first: dict[Expr, int] = {}
    keys: dict[int, int] = {}
    stack = list(conditions)
    while stack:
        node = stack.pop()
        keys[id(node)] = first.setdefault(node, id(node))
        stack.extend(children(node))
    return keys


def _reads_outputs(condition: Expr) -> bool:
    # a first-stratum view may hold `outputs` (their defaults, for a rule with an action):
    # whatever reads there is matched on that view, per deal
    return any(f.path.split(".")[0] == "outputs" for f in fields(condition) if not f.item)


_UNKNOWN = object()  # not learnt yet

#: Fired-rule lists and policy runs kept per policy, one per distinct set of fired rules:
#: bounded, so that memory stays flat however many deals a run decides (the generated books
#: have a few hundred to a few thousand such sets per policy set).
MAX_SHARED_RUNS = 4096


@dataclass
class ChunkMatch:
    """A chunk's first strata matched as columns: per policy, per deal, the rules that fire
    (in evaluation order) and their key (the fired rules as bits)."""

    fired: dict[str, Sequence[list[CompiledRule]]]  # shared lists: read them, never change them
    keys: dict[str, list[bytes]]


class _FiredLists(Sequence[list["CompiledRule"]]):
    """Per deal, the rules of a first stratum that fire, in evaluation order, built when asked
    (records from templates never ask): one list per distinct set, shared by its deals."""

    def __init__(self, plan: _StratumPlan, masks: np.ndarray, keys: list[bytes]):
        self.plan = plan
        self.masks = masks
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, row: Any) -> Any:
        lists, key = self.plan.fired_lists, self.keys[row]
        rules = lists.get(key)
        if rules is None:
            rules = [self.plan.vector[i] for i in np.flatnonzero(self.masks[row]).tolist()]
            if len(lists) < MAX_SHARED_RUNS:
                lists[key] = rules
        return rules


class ColumnarEngine(NativeEngine):
    """Matches the first stratum of a chunk's deals as columns; the rest per deal, with the
    native engine's matchers (:meth:`match`, for one deal alone).

    A policy whose run depends on nothing but which of its rules fire — one stratum, every
    rule's ``then`` literal (no ``=`` expression, no plugin action), no effective window — is
    run once per distinct set of fired rules and that run is shared, read-only, by every deal
    with the same set (the runner already shares such rules' firings): the hit policies,
    outputs and their combination are computed once, not per deal.
    """

    name = "columnar"
    chunked = True

    def __init__(self, policy_set: PolicySet, actions: Mapping[str, RegisteredAction]):
        super().__init__(policy_set, actions)
        self.plans = {
            name: _StratumPlan(policy.strata[0].rules, f"policy {name} stratum 0 (outputs)")
            for name, policy in policy_set.policies.items()
            if policy.strata
        }
        self.keys = _shared_keys([r.condition for p in self.plans.values() for r in p.vector])
        runner = self.runner
        # every policy's part of a record the same for deals with the same fired rules (but
        # for its `=` outputs): records from templates (records.py)
        self.templated = all(
            name in self.plans
            and self.plans[name].rest is None
            and templatable(
                policy,
                windowed=runner.windowed[name],
                reads_outputs=runner.reads_outputs[name],
            )
            for name, policy in policy_set.policies.items()
            if policy.strata
        )
        self.large_chunks = self.templated
        if self.templated:  # its reader, imported once here: forked workers inherit it
            try:
                import dealdesk.engines.columnar.frame  # noqa: F401
            except ImportError:  # without pyarrow, deals are read one by one
                pass
        self.templates: dict[Hashable, Template | None] = {}
        # (policy, its fired rules as bits, currency) -> the policy's part of their records
        self.parts: dict[tuple[str, bytes, str], PartTemplate | None] = {}
        self.shared_runs: dict[str, dict[bytes, PolicyRun]] = {
            name: {}
            for name, policy in policy_set.policies.items()
            if len(policy.strata) == 1
            and self.plans[name].rest is None
            and not runner.windowed[name]
            and all(rule.key in runner.static for rule in policy.rules)
        }

    def describe(self) -> list[str]:
        """What runs as columns and what falls back to the per-deal path (``validate
        --verbose``): per policy, whether its records come from group templates, and each
        rule's conditions."""
        runner = self.runner
        lines = [
            "columnar engine: first strata as columns; records "
            + (
                "from group templates"
                if self.templated
                else "made per deal (templates need every policy to allow them)"
            )
        ]
        for name, policy in self.policy_set.policies.items():
            why = why_not_templated(
                policy, windowed=runner.windowed[name], reads_outputs=runner.reads_outputs[name]
            )
            plan = self.plans.get(name)
            if not why and plan is not None and plan.rest is not None:
                why = "rules of the first stratum read outputs"
            how = "templates allowed" if not why else f"no templates: {why}"
            lines.append(f"{name}: {how}")
            vector = set() if plan is None else {id(r) for r in plan.vector}
            for rule in sorted(policy.rules, key=evaluation_order):
                if id(rule) not in vector:
                    lines.append(f"  {rule.label}: per deal (reads outputs)")
                    continue
                reasons = per_row_reasons(rule.condition)
                said = "per row for " + ", ".join(reasons) if reasons else "columns"
                lines.append(f"  {rule.label}: {said}")
        return lines

    def grouped(self, deals: Sequence[Mapping[str, Any]], combiner: Combiner) -> Groups | None:
        if not self.templated or not deals:
            return None
        try:
            matched = self.truth(deals)
        except Exception:  # a value the vectors cannot compare: each deal as native does it
            return None
        return _Groups(self, deals, matched, combiner)

    def read_lines(self, lines: Sequence[bytes], combiner: Combiner) -> Groups | None:
        if not self.templated or not lines:
            return None
        try:  # pyarrow is in the columnar extra: without it, deals are read one by one
            from dealdesk.engines.columnar.chunks import FrameChunk, Views
            from dealdesk.engines.columnar.exact import derived_columns
            from dealdesk.engines.columnar.frame import read_frame
        except ImportError:
            return None
        try:
            frame = read_frame(lines)
            if frame.table is None or not frame.fast.any():
                return None  # no valid deal: each is decided (and its errors said) on its own
            derived = derived_columns(
                frame.table.column("lines"), frame.array("offer.type"), frame.fast
            )
            views = Views(frame)
            chunk = FrameChunk(frame, derived, views)
            matched = self.truth(views, chunk)
        except Exception:  # a value the vectors cannot compare: each deal as native does it
            return None
        return _FrameGroups(self, chunk, matched, combiner)

    def truth(self, deals: Sequence[Any], chunk: Chunk | None = None) -> ChunkMatch:
        """Per policy, per deal: the first stratum's column-matched rules that fire.

        :param chunk: the deals' columns, when a reader has them (else read from ``deals``).
        """
        # one vector for every policy: each column read once, shared conditions once
        vector = ConditionVector(Chunk(deals) if chunk is None else chunk, self.keys)
        found = ChunkMatch({}, {})
        for name, plan in self.plans.items():
            if not plan.vector:
                found.fired[name] = [[] for _ in deals]
                found.keys[name] = [b""] * len(deals)
                continue
            masks = np.stack([vector.fires(r.condition) for r in plan.vector], axis=1)
            # each deal's fired rules as bits: a book has few distinct sets
            keys = [row.tobytes() for row in np.packbits(masks, axis=1)]
            found.fired[name] = _FiredLists(plan, masks, keys)
            found.keys[name] = keys
        return found

    def evaluate(self, deals: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        if not deals:
            return []
        try:
            matched = self.truth(deals)
        except Exception:  # a value the vectors cannot compare: each deal as native does it
            return [self.evaluate_one(deal) for deal in deals]
        return [self._evaluate_with(deal, matched, i) for i, deal in enumerate(deals)]

    def _evaluate_with(
        self, deal: Mapping[str, Any], matched: ChunkMatch, index: int
    ) -> Evaluation:
        plans, strata, fired = self.plans, self.strata, matched.fired

        def match(policy: Policy, stratum: int, view: Mapping[str, Any]) -> list[CompiledRule]:
            if stratum:
                return strata[policy.name][stratum](view)
            plan = plans[policy.name]
            found = fired[policy.name][index]
            if plan.rest is None:
                return found
            rest = plan.rest(view)
            if not rest:
                return found
            if not found:
                return rest
            position = plan.position
            return sorted([*found, *rest], key=lambda r: position[id(r)])

        runs: dict[str, PolicyRun] = {}
        try:
            for name, policy in self.policy_set.policies.items():
                shared = self.shared_runs.get(name)
                if shared is None:
                    runs[name] = self.runner.run_policy(policy, deal, match)
                    continue
                keys = matched.keys[name]
                run = shared.get(keys[index])
                if run is None:
                    run = self.runner.run_policy(policy, deal, match)
                    # a run with errors (a unique table's several rows) is not shared: the
                    # records would share its error objects, which a sink may change
                    if len(shared) < MAX_SHARED_RUNS and not run.errors:
                        shared[keys[index]] = run
                runs[name] = run
        except Exception as exc:  # a failing plugin action, or a bug: it costs this deal only
            return Evaluation(error=record_error(exc))
        return Evaluation(runs)


ENGINE = ColumnarEngine


class _Groups:
    """A chunk's deals by currency and fired rules of every policy (:meth:`Engine.grouped`).

    A group's template is put together from its policies' part templates, each learnt from
    the first deal (of any group) with that policy's fired rules and currency.
    """

    def __init__(
        self,
        engine: ColumnarEngine,
        deals: Sequence[Any],
        matched: ChunkMatch,
        combiner: Combiner,
    ):
        self.engine = engine
        self.deals = deals
        self.matched = matched
        self.combiner = combiner
        self.names = list(engine.policy_set.policies)
        none = [b""] * len(deals)  # a policy without rules: nothing ever fires
        self.columns = [matched.keys.get(name, none) for name in self.names]

    def currency(self, index: int) -> str:
        return self.deals[index].get("currency") or "USD"

    def key(self, index: int) -> Hashable | None:
        return (self.currency(index), *(keys[index] for keys in self.columns))

    def template(self, key: Hashable) -> Template | None:
        """The group's template; None until every policy's part is learnt, or when a part
        cannot be a template."""
        templates = self.engine.templates
        found = templates.get(key, _UNKNOWN)
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        currency, *policy_keys = cast(tuple[Any, ...], key)
        parts: dict[str, PartTemplate] = {}
        for name, policy_key in zip(self.names, policy_keys, strict=True):
            part_key = (name, policy_key, currency)
            if part_key not in self.engine.parts:
                return None  # learnt from the first deal that has it
            part = self.engine.parts[part_key]
            if part is None:
                break
            parts[name] = part
        made = template(self.combiner, parts) if len(parts) == len(self.names) else None
        if len(templates) < MAX_SHARED_RUNS:  # past that, assembled from the parts each time
            templates[key] = made
        return made

    def fill(
        self, key: Hashable, index: int, deal_id: Any, data: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str] | None:
        found = self.template(key)
        if found is None:
            return None
        return found.fill(deal_id, self.hole_data(found, index, data), key[0])  # type: ignore[index]

    def hole_data(self, found: Template, index: int, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the template's holes read of deal ``index``."""
        return data

    def evaluate(self, index: int) -> Evaluation:
        return self.engine._evaluate_with(self.deals[index], self.matched, index)

    def prepared(self, index: int) -> tuple[Any, Mapping[str, Any]] | None:
        return None  # the deals were prepared one by one already

    def filled(
        self, absent: frozenset[str], rows: Sequence[int] | None = None
    ) -> list[tuple[dict[str, Any], str] | None]:
        return [None] * len(self.deals)  # prepared deals: filled one by one

    def learn(self, key: Hashable, data: Mapping[str, Any], runs: Mapping[str, PolicyRun]) -> None:
        parts = self.engine.parts
        currency, *policy_keys = cast(tuple[Any, ...], key)
        for name, policy_key in zip(self.names, policy_keys, strict=True):
            part_key = (name, policy_key, currency)
            if part_key in parts or len(parts) >= MAX_SHARED_RUNS:
                continue
            try:
                made = part_template(name, runs[name], self.combiner, currency)
            except Exception:  # an output of this deal past JSON: another deal may teach it
                continue
            if not isinstance(made, Later):
                parts[part_key] = made


class _FrameGroups(_Groups):
    """The groups of a chunk of lines the reader read (:meth:`ColumnarEngine.read_lines`):
    ``deals`` are the rows' views, None for a row to decide deal by deal."""

    def __init__(
        self, engine: ColumnarEngine, chunk: FrameChunk, matched: ChunkMatch, combiner: Combiner
    ):
        super().__init__(engine, chunk.deals, matched, combiner)
        self.chunk = chunk
        self.frame = chunk.frame
        self.texts: dict[Hashable, Callable[[int], str | None]] = {}

    def hole_data(self, found: Template, index: int, data: Mapping[str, Any]) -> Mapping[str, Any]:
        return data if found.reads is None else self._read(found.reads, index)

    def _read(self, paths: Sequence[str], index: int) -> dict[str, Any]:
        """Row ``index``'s values at ``paths`` (what holes read), from the columns, nested as
        the deal holds them."""
        path = self.chunk.path
        return nested({p: path(p).values[index] for p in paths})

    def currency(self, index: int) -> str:
        return self.frame.currencies[index]

    def filled(
        self, absent: frozenset[str], rows: Sequence[int] | None = None
    ) -> list[tuple[dict[str, Any], str] | None]:
        """Per line, as a chunk: the groups' templates filled from the columns, the holes'
        money computed in int64 units (:func:`~.exact.expression_units`)."""
        frame = self.frame
        results: list[tuple[dict[str, Any], str] | None] = [None] * frame.n
        keys = list(zip(frame.currencies, *self.columns, strict=True))
        members: dict[Hashable, list[int]] = {}
        lacking = frame.lacking(absent)
        if rows is not None:
            lacking &= row_mask(rows, frame.n)
        for i in np.flatnonzero(lacking).tolist():
            members.setdefault(keys[i], []).append(i)
        ids = frame.ids
        for key, group in members.items():
            found = self.template(key)
            if found is None:
                continue  # learnt from its first deal, decided in full
            texts = [self._hole_texts(hole, key[0]) for hole in found.holes]  # type: ignore[index]
            for i in group:
                holes = [text(i) for text in texts]
                if None not in holes:
                    results[i] = found.join(ids[i], cast(list[str], holes))
        return results

    def _hole_texts(self, hole: Hole, currency: str) -> Callable[[int], str | None]:
        """Row → ``hole``'s JSON text in ``currency``; None where the columns cannot give it
        exactly (the row's record is made as a deal's: unknown, not finite, past int64)."""
        key = (hole.policy, hole.output, id(hole.expression), currency)
        found = self.texts.get(key)
        if found is None:
            found = _money_texts(hole, self.chunk, currency) or self._row_texts(hole, currency)
            self.texts[key] = found
        return found

    def _row_texts(self, hole: Hole, currency: str) -> Callable[[int], str | None]:
        """Row → ``hole``'s text by the per-deal meaning, from the columns its expression
        reads (or the row's view): as :meth:`Template.fill` makes it."""
        paths = reads((hole.expression,))

        def text(i: int) -> str | None:
            data = self.deals[i] if paths is None else self._read(paths, i)
            try:
                return hole.text(data, currency)
            except Exception:  # not finite, or an error: the full path says it as it does
                return None

        return text

    def prepared(self, index: int) -> tuple[Any, Mapping[str, Any]] | None:
        view = self.deals[index]
        return None if view is None else (self.frame.ids[index], view)


def _money_texts(
    hole: Hole, chunk: FrameChunk, currency: str
) -> Callable[[int], str | None] | None:
    """Row → a money ``hole``'s text computed in int64 units; None when its expression is
    not one :func:`~.exact.expression_units` takes."""
    from dealdesk.engines.columnar.exact import expression_units, money_text, money_units
    from dealdesk.money import minor_units

    if hole.spec is None or hole.spec.type != "money":
        return None
    found = expression_units(hole.expression, chunk.path, chunk.n)
    if found is None:
        return None
    places = minor_units(currency)
    units, ok = money_units(found, places)
    values, exact = units.tolist(), ok.tolist()
    return lambda i: f'"{money_text(values[i], places)}"' if exact[i] else None
