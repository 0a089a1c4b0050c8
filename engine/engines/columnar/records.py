"""Records by fired set: one record template per group of deals, filled per deal (issue 8).

Under a policy whose run depends on nothing but which of its rules fire (see
:func:`templatable`), two deals with the same fired rules in every policy and the same currency
get the same record but for their ``deal_id`` and the outputs set by ``=`` expressions
(``service_contract: "= totals.contract * 0.3"``). Each policy's part of the record
(:class:`~dealdesk.combine.PolicyPart`) is learnt once per set of its fired rules and currency,
from the first deal that has them (a :class:`PartTemplate`); a group's record is put together
from its policies' parts by the combiner and encoded once, then cut at those places: a
:class:`Template`. Every deal of the group is then its ``deal_id`` and its expressions' values,
formatted as the combiner formats them, joined with the template's fragments: no runner, no
combiner, no encoding of the whole record. A book with a few dozen sets of fired rules per
policy has thousands of groups, each assembled from parts, not decided. The records are
byte-identical by construction, and the conformance suite checks it.

A group is decided per deal when anything else could differ between its deals: a message with
Jinja in it, a plugin action, an effective window, a rule reading outputs, a table whose hit
policy looks at the values, an expression that is unknown or not finite on a deal, an output
combined as a ``list``; and the whole chunk is, when a ``dealdesk_combine`` plugin or clause
rendering could change a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dealdesk import jsoncodec
from dealdesk.combine import Combiner, PolicyPart, combine_values, format_value
from dealdesk.evaluate import value_of
from dealdesk.record import BRIEF_KEYS
from dealdesk.rules.expressions import Expr, Quantifier, children, fields

if TYPE_CHECKING:
    from dealdesk.evaluate import PolicyRun
    from dealdesk.rules.model import OutputSpec
    from dealdesk.rules.policyset import Policy, PolicySet

# hit policies whose choice depends on the rows' values, not only on which rows matched
_VALUED_HITS = frozenset(("any", "priority", "output order"))


def templated_set(policy_set: PolicySet) -> bool:
    """Whether every policy of ``policy_set`` allows record templates (:func:`templatable`),
    so that the columnar engine makes a book's records from them."""
    from dealdesk.evaluate import PolicyRunner

    runner = PolicyRunner(policy_set, {})
    return all(
        templatable(p, windowed=runner.windowed[n], reads_outputs=runner.reads_outputs[n])
        for n, p in policy_set.policies.items()
        if p.strata
    )


def templatable(policy: Policy, *, windowed: bool, reads_outputs: list[bool]) -> bool:
    """Whether ``policy``'s part of a record is the same for every deal with the same fired
    rules, but for outputs set by top-level ``=`` expressions (checked again per group)."""
    return not why_not_templated(policy, windowed=windowed, reads_outputs=reads_outputs)


def why_not_templated(policy: Policy, *, windowed: bool, reads_outputs: list[bool]) -> str:
    """Why ``policy``'s records are made deal by deal ('' when they come from templates)."""
    for rule in policy.rules:
        if rule.then.action is not None:
            return f"rule {rule.label} runs the action {rule.then.action!r}"
        if any(_nested_expression(v) for v in rule.sets.values() if not isinstance(v, Expr)):
            return f"rule {rule.label} sets an '=' expression inside a list or mapping"
        table = rule.table
        if table is not None and any(isinstance(v, Expr) for v in rule.sets.values()):
            if table.hit in _VALUED_HITS or (table.hit == "collect" and table.aggregation):
                return f"table {rule.id} (hit {table.hit}) sets '=' expressions"
    if windowed:
        return "a ruleset has an effective window"
    if len(reads_outputs) > 1 or any(reads_outputs):  # no stratum at all: no rule
        return "rules read outputs (later strata)"
    return ""


def _nested_expression(value: Any) -> bool:
    if isinstance(value, list):
        return any(isinstance(v, Expr) or _nested_expression(v) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, Expr) or _nested_expression(v) for v in value.values())
    return False


@dataclass(frozen=True)
class Hole:
    """An output whose value is one ``=`` expression's, different on every deal."""

    policy: str
    output: str
    expression: Expr
    spec: OutputSpec | None

    def text(self, data: Mapping[str, Any], currency: str) -> str | None:
        """The output as the record shows it, as JSON; None when this deal's value is not what
        the template stands for (unknown: the output falls back to another value)."""
        value = value_of(self.expression, data)
        if value is None:
            return None
        spec = self.spec
        if spec is not None and spec.combine != "first":
            # one value combined as the runner combines it: max/min/sum read text as a
            # number ("123" is 123) and a sum has the 28-digit context's rounding
            value = combine_values(spec.combine, [value])
        shown = format_value(self.policy, self.output, value, spec, currency)
        return jsoncodec.dumps_scalar(shown)


class Template:
    """A group's encoded record cut at its holes: ``fragments[0]``, the deal id,
    ``fragments[1]``, the first hole, ...; and the summary's keys, shared read-only."""

    __slots__ = ("brief", "fragments", "holes", "reads")

    def __init__(self, fragments: list[str], holes: list[Hole], brief: dict[str, Any]):
        self.fragments = fragments
        self.holes = holes
        self.brief = brief
        #: the deal paths the holes read (a reader's columns can give them), or None when one
        #: reads a list's elements (the whole deal is needed)
        self.reads: tuple[str, ...] | None = reads(h.expression for h in holes)

    def fill(
        self, deal_id: Any, data: Mapping[str, Any], currency: str
    ) -> tuple[dict[str, Any], str] | None:
        """The summary's keys and the encoded record of a deal of this group; None when one of
        its expressions makes it differ (it is decided in full)."""
        texts = []
        for hole in self.holes:
            try:
                text = hole.text(data, currency)
            except Exception:  # not finite, or an error: the full path says it as it does
                return None
            if text is None:
                return None
            texts.append(text)
        return self.join(deal_id, texts)

    def join(self, deal_id: Any, texts: Sequence[str]) -> tuple[dict[str, Any], str]:
        """The summary's keys and the encoded record of a deal of this group whose holes are
        ``texts`` (JSON, in the holes' order)."""
        fragments = self.fragments
        parts = [fragments[0], jsoncodec.dumps_scalar(deal_id)]
        for fragment, text in zip(fragments[1:], texts, strict=False):
            parts.append(fragment)
            parts.append(text)
        parts.append(fragments[-1])
        return {**self.brief, "deal_id": deal_id}, "".join(parts)


class Later:
    """:func:`part_template`'s word for "ask another deal of the group"."""


LATER = Later()


@dataclass(frozen=True)
class PartTemplate:
    """A policy's part of the records of its deals with one set of fired rules and one
    currency, and the outputs in it that each deal's ``=`` expressions fill."""

    part: PolicyPart
    holes: tuple[Hole, ...]
    #: the part's entry in ``policies`` as JSON, each hole's output a mark (:func:`_mark`)
    text: str


def part_template(
    name: str, run: PolicyRun, combiner: Combiner, currency: str
) -> PartTemplate | Later | None:
    """Policy ``name``'s part as a template, from its ``run`` on a deal of the group; None when
    the group's deals must be decided one by one (errors, a message with Jinja, an output an
    expression shares with other rules); :data:`LATER` when this deal cannot teach it (an
    expression unknown on it): the next deal with these fired rules is asked.

    :raises DealdeskError: an output of this deal that is not finite (a later deal may teach).
    """
    if run.errors:
        return None
    holes: list[Hole] = []
    for firing in run.firings:
        effects = firing.effects
        if any("{" in str(m) for m in (*effects.rejects, *effects.reasons, *effects.flags)):
            return None
    for output, entries in run.contributions.items():
        expressions = [
            run.firings[key[1]].rule.sets.get(output)
            for key, _ in entries
            if isinstance(run.firings[key[1]].rule.sets.get(output), Expr)
        ]
        if not expressions:
            continue
        spec = run.policy.outputs.get(output)
        if len(entries) != 1 or (spec and spec.combine == "list"):
            return None
        if entries[0][1] is None:  # unknown on this deal: learnt from another
            return LATER
        holes.append(Hole(name, output, expressions[0], spec))
    # no message renders (none has Jinja), so the part needs no deal and no earlier reasons
    part = combiner.part(name, run, {}, currency, ())
    result = part.result
    if holes:
        marks = {hole.output: _mark(name, hole.output) for hole in holes}
        result = {**result, "outputs": {**result["outputs"], **marks}}
    return PartTemplate(part, tuple(holes), jsoncodec.dumps(result))


def template(combiner: Combiner, parts: Mapping[str, PartTemplate]) -> Template | None:
    """The record template of the policies' ``parts`` (each policy's, in the set's order):
    the encoded record cut at the deal id and the holes; None when a ruleset's own text holds
    the marks that cut it.

    The record is encoded without its ``policies``, which are the parts' own texts (encoded
    once per part): JSON of a mapping is its items' JSON, joined.
    """
    record = combiner.assemble(_ID, {name: found.part for name, found in parts.items()})
    record["policies"] = _POLICIES
    policies = ",".join(f"{jsoncodec.dumps(name)}:{found.text}" for name, found in parts.items())
    text = jsoncodec.dumps(record)
    if text.count(_POLICIES_TEXT) != 1:
        return None
    text = text.replace(_POLICIES_TEXT, "{" + policies + "}")
    holes = {
        jsoncodec.dumps(_mark(h.policy, h.output)): h
        for found in parts.values()
        for h in found.holes
    }
    marks = [_ID_TEXT, *holes]
    if any(text.count(mark) != 1 for mark in marks):
        return None
    ordered = sorted(marks, key=text.index)  # the id first: deal_id is the first key
    fragments = []
    rest = text
    for mark in ordered:
        before, _, rest = rest.partition(mark)
        fragments.append(before)
    fragments.append(rest)
    brief = {key: record[key] for key in BRIEF_KEYS}
    return Template(fragments, [holes[mark] for mark in ordered[1:]], brief)


def _mark(policy: str, output: str) -> str:
    return f"\x00dealdesk-hole\x00{policy}\x00{output}\x00"


_ID = "\x00dealdesk-deal-id\x00"
_ID_TEXT = jsoncodec.dumps(_ID)
_POLICIES = "\x00dealdesk-policies\x00"
_POLICIES_TEXT = jsoncodec.dumps(_POLICIES)


def reads(expressions: Iterable[Expr]) -> tuple[str, ...] | None:
    """The paths ``expressions`` read, or None when one reads a list's elements."""
    paths: dict[str, None] = {}
    for expression in expressions:
        found = _reads(expression)
        if found is None:
            return None
        paths.update(dict.fromkeys(found))
    return tuple(paths)


@lru_cache(maxsize=1024)  # a book's groups share a few expressions
def _reads(expression: Expr) -> tuple[str, ...] | None:
    if any(isinstance(node, Quantifier) for node in _nodes(expression)):
        return None
    found = fields(expression)
    return None if any(node.item for node in found) else tuple(node.path for node in found)


def _nodes(expr: Expr) -> Iterator[Expr]:
    yield expr
    for child in children(expr):
        yield from _nodes(child)


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"totals.contract": v}`` as the deal holds it: ``{"totals": {"contract": v}}``
    (a missing value is left out, as the deal leaves it out)."""
    data: dict[str, Any] = {}
    for path, value in values.items():
        if value is None:
            continue
        *parents, last = path.split(".")
        at = data
        for key in parents:
            at = at.setdefault(key, {})
        at[last] = value
    return data
