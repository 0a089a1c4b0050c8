"""Decision-table analysis for ``dealdesk validate`` (SPEC §3): the warnings a valid set can
still deserve.

For each decision table: rows that overlap under hit policy ``unique``, or under ``any`` with
different outcomes, each with a witness input both rows match; gaps of single-hit tables (input
values no row matches), each with a witness; rows of a ``first`` table that earlier rows shadow
entirely. For each policy: conflicting writers of one output (see :func:`writer_conflicts`).

Everything is computed on the values the cells accept, never on their text: the values of one
input are cut into *atoms* — each constant a cell names, the open intervals between them, the
enumerated strings (or one fresh string), true and false — on which every cell of the column is
constant, and each cell becomes the set of atoms it accepts (a bit mask), found by evaluating the
cell with :func:`dealdesk.rules.meaning.evaluate` once per piece of its own constants. Overlaps
are pairwise mask intersections; gaps and shadowed rows are a search over the columns that splits
the atoms by the rows still able to match, prunes on a row that matches everything left, and
stops after :data:`SEARCH_LIMIT` steps (saying so). Only present values are considered: a
missing input matches only ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any

from dealdesk.errors import Location
from dealdesk.rules.expressions import (
    And,
    Compare,
    Const,
    Exists,
    Expr,
    ExpressionError,
    Field,
    InList,
    Not,
    Or,
    children,
    parse_expression,
)
from dealdesk.rules.meaning import evaluate, to_decimal
from dealdesk.rules.model import Table
from dealdesk.rules.policyset import CompiledRule, Environment, Policy, PolicySet, _Builder
from dealdesk.rules.tables import CellError, parse_cell

#: Steps (input values examined) the gap search of one table may take, and its shadowed-row
#: searches together, before they stop and say so; about half a second each.
SEARCH_LIMIT = 1_000_000
#: Rows that together shadow a row, up to which the fewest of them are named.
FEWEST_TRIED = 12
#: Gaps listed per table; more are summed up in one line.
GAPS_LISTED = 3
#: Uncovered regions the gap search collects (before merging neighbours) for that list.
GAP_REGIONS = 64
#: Overlapping row pairs listed per table; more are summed up in one line.
OVERLAPS_LISTED = 20
#: Conflicting writer pairs listed per output; more are summed up in one line.
CONFLICTS_LISTED = 10
#: Hit policies under which one row at most decides: a deal no row matches gets nothing from
#: the table, which is what a gap is. Under rule order, output order and collect every row is a
#: check of its own, and a deal that none matches is the ordinary case.
SINGLE_HIT = ("unique", "any", "first", "priority")

_SUBJECT = "value"  # the path the cells of a column are parsed on, to evaluate them on one value


@dataclass(frozen=True)
class Finding:
    """One warning: what and where, with the rows and the witness input behind it.

    :ivar kind: ``overlap``, ``gap``, ``unreachable``, ``conflict`` or ``limit``.
    :ivar rows: the table rows involved, 1-based (the shadowed or later row last).
    :ivar witness: input text → a value that shows the problem, in the table's input order.
    """

    kind: str
    message: str
    location: Location
    rows: tuple[int, ...] = ()
    witness: Mapping[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.location}: warning: {self.message}"


def analyse_policy_set(
    policy_set: PolicySet, facts: Mapping[str, str] | None = None
) -> list[Finding]:
    """Every finding of every table and output of a validated set, by location.

    :param facts: the paths plugins declare (``Plugins.fact_types``), to type table inputs.
    """
    findings: list[Finding] = []
    # the scope the set was checked in (deal fields, plugin facts, outputs): the same input types
    builder = _Builder(Environment({}, extra_facts=dict(facts or {})), [])
    for policy in policy_set.policies.values():
        scope = builder.scope(policy.outputs)
        overlaps: dict[int, set[tuple[int, int]]] = {}
        for ruleset in policy.rulesets:
            for table in ruleset.tables:
                try:
                    inputs = [parse_expression(t.value, scope, value=True) for t in table.inputs]
                except ExpressionError:
                    continue  # not in a validated set; nothing to say about it here
                analysis = TableAnalysis(table, inputs)
                if analysis.analysable:
                    findings.extend(analysis.findings(ruleset.location))
                    overlaps[id(table)] = analysis.overlapping
        findings.extend(writer_conflicts(policy, overlaps))
    return sorted(findings, key=lambda f: (f.location, f.message))


# ---------------------------------------------------------------------------------------------
# Atoms: the values of one input, cut where any of its tests can change


class Domain:
    """The values an input can take, cut into atoms on which each of ``tests`` is constant.

    :param kind: the input's type (number, string, date, boolean, any...).
    :param enum: the strings an enumerated input takes.
    :param tests: conditions on ``path`` alone, comparing it with constants.
    :param missing: add an atom for a missing value (conflicting writers reason about it).
    """

    def __init__(
        self,
        kind: str,
        enum: Sequence[str] | None,
        tests: Iterable[Expr | None],
        path: str = _SUBJECT,
        *,
        missing: bool = False,
    ):
        self.path = path
        constants = [c for t in tests if t is not None for c in _constants(t)]
        kinds = _kinds(kind, constants)
        numbers = sorted({n for n in map(_number, constants) if n is not None})
        self.finite = all(n.is_finite() for n in numbers)
        numbers = [n for n in numbers if n.is_finite()]
        self.values: list[Any] = []
        self.number_atoms = 0
        if "number" in kinds:
            self.values.extend(_number_representatives(numbers))
            self.number_atoms = len(self.values)
        self.index = {n: 2 * i + 1 for i, n in enumerate(numbers)}  # atom of each constant
        self.strings: dict[str, int] = {}
        if "string" in kinds:
            texts = list(enum) if enum else _unique(c for c in constants if _is_text(c))
            if not enum:
                texts.append(_fresh(texts))  # every other string behaves like this one
            for text in texts:
                self.strings[text] = len(self.values)
                self.values.append(text)
        self.booleans = len(self.values)
        if "boolean" in kinds:
            self.values.extend([True, False])
        self.missing = missing
        if missing:
            self.values.append(None)
        self.full = (1 << len(self.values)) - 1

    def holds(self, test: Expr, value: Any) -> bool:
        """Whether ``test`` is true on ``value`` (the real, three-valued evaluation)."""
        return evaluate(test, _nest(self.path, value)) is True

    def mask(self, test: Expr | None) -> int:
        """The atoms ``test`` accepts (every atom for ``-``)."""
        if test is None:
            return self.full
        mask = 0
        own = _constants(test)
        if self.number_atoms:
            # the test is constant between its own constants: one evaluation per piece
            cuts = sorted({self.index[n] for n in map(_number, own) if n in self.index})
            starts = [0]
            for cut in cuts:
                starts.extend([cut, cut + 1])
            ends = [s - 1 for s in starts[1:]] + [self.number_atoms - 1]
            for low, high in zip(starts, ends, strict=True):
                if low <= high and self.holds(test, self.values[low]):
                    mask |= (1 << (high + 1)) - (1 << low)
        if self.strings:
            named = {c for c in own if _is_text(c)}
            others = next((s for s in self.strings if s not in named), None)
            other_holds = others is not None and self.holds(test, others)
            for text, atom in self.strings.items():
                if self.holds(test, text) if text in named else other_holds:
                    mask |= 1 << atom
        for atom in range(self.booleans, len(self.values)):
            if self.holds(test, self.values[atom]):
                mask |= 1 << atom
        return mask

    def pick(self, mask: int) -> Any:
        """A representative of one atom of ``mask``: a number of at least 0 when there is one
        (amounts and fractions read better so), else the first atom's."""
        atoms = list(_bits(mask))
        for atom in atoms:
            value = self.values[atom]
            if atom < self.number_atoms and value >= 0:
                return value
        return self.values[atoms[0]]


def _kinds(kind: str, constants: Sequence[Any]) -> set[str]:
    if kind == "number":
        return {"number"}
    if kind in ("string", "date"):
        return {"string"}
    if kind == "boolean":
        return {"boolean"}
    # untyped (an `any` fact): the kinds its cells name; numbers when they name none
    found = {
        "boolean" if isinstance(c, bool) else "number" if _number(c) is not None else "string"
        for c in constants
    }
    return found or {"number"}


def _constants(test: Expr) -> list[Any]:
    found: list[Any] = []
    stack = [test]
    while stack:
        node = stack.pop()
        if isinstance(node, Const) and node.value is not None:
            found.append(node.value)
        stack.extend(children(node))
    return found


def _number(value: Any) -> Decimal | None:
    # strings such as "5" compare as numbers (meaning._compare), so they cut the numbers too
    return None if isinstance(value, bool) else to_decimal(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and to_decimal(value) is None


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _fresh(taken: Sequence[str]) -> str:
    name, n = "other", 1
    while name in taken:
        n += 1
        name = f"other{n}"
    return name


def _nest(path: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    data: Any = value
    for part in reversed(path.split(".")):
        data = {part: data}
    return dict(data)


def _bits(mask: int) -> Iterator[int]:
    atom = 0
    while mask:
        if mask & 1:
            yield atom
        mask >>= 1
        atom += 1


def _number_representatives(numbers: Sequence[Decimal]) -> list[Decimal]:
    """A value for each atom: below the first constant, each constant, each open interval
    between two, above the last — the roundest number inside."""
    if not numbers:
        return [Decimal(0)]
    values = [_between(None, numbers[0])]
    for low, high in zip(numbers, numbers[1:], strict=False):
        values.extend([low, _between(low, high)])
    values.extend([numbers[-1], _between(numbers[-1], None)])
    return values


def _between(low: Decimal | None, high: Decimal | None) -> Decimal:
    """The roundest number strictly between ``low`` and ``high`` (None: unbounded)."""
    if (low is None or low < 0) and (high is None or high > 0):
        return Decimal(0)
    if low is None:
        assert high is not None
        return -_between(-high, None)
    if high is None:
        if low < 1:
            return (low.to_integral_value(ROUND_FLOOR) + 1).normalize()
        high = 2 * low + 1
    top = max(abs(low), abs(high)).adjusted() + 1
    with localcontext() as exact:
        exact.prec = 200  # the steps below reach the digits where low and high differ
        for exponent in range(top, top - 150, -1):
            step = Decimal(1).scaleb(exponent)
            candidate = ((low / step).to_integral_value(ROUND_FLOOR) + 1) * step
            if low < candidate < high:
                return candidate.normalize() if candidate else Decimal(0)
        return (low + high) / 2


# ---------------------------------------------------------------------------------------------
# One table


class _Stopped(Exception):
    """A search used up its budget."""


@dataclass
class _Budget:
    """Steps (input values examined) the searches of one table may still take."""

    left: int

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise _Stopped


class _Search:
    """Input combinations inside ``domains`` (one atom mask per column) that none of the
    candidate rows matches, found column by column.

    :param masks: each row's atom mask per column.
    :param rows_at: per column, per atom, the rows whose cell accepts it.
    :param number_atoms: per column, how many of its first atoms are numbers.
    :param wanted: stop after this many combinations.
    """

    def __init__(
        self,
        masks: Sequence[Sequence[int]],
        rows_at: Sequence[Sequence[int]],
        domains: Sequence[int],
        number_atoms: Sequence[int],
        wanted: int,
        budget: _Budget,
    ):
        self.rows_at = rows_at
        self.domains = domains
        self.number_atoms = number_atoms
        self.atoms = [list(_bits(d)) for d in domains]
        self.wanted = wanted
        self.budget = budget
        self.found: list[list[int]] = []
        self.covered: set[tuple[int, int]] = set()
        width = len(domains)
        # rows that match every value left from column j on: a candidate among them covers all
        self.complete = [0] * (width + 1)
        for row, cells in enumerate(masks):
            for j in range(width - 1, -1, -1):
                if cells[j] & domains[j] != domains[j]:
                    break
                self.complete[j] |= 1 << row

    def run(self, candidates: int) -> bool:
        """Search; False when the budget ran out (what was found so far is kept)."""
        try:
            self._walk(0, candidates, [])
        except _Stopped:
            return False
        return True

    def _walk(self, j: int, candidates: int, prefix: list[int]) -> bool:
        if not candidates:
            self.found.append([*prefix, *self.domains[j:]])
            return True
        if j == len(self.domains) or candidates & self.complete[j]:
            return False
        if (j, candidates) in self.covered:
            return False
        self.budget.spend(len(self.atoms[j]))
        # the column's atoms, grouped by the candidates that match them
        groups: dict[int, int] = {}
        rows_at = self.rows_at[j]
        for atom in self.atoms[j]:
            rows = rows_at[atom] & candidates
            groups[rows] = groups.get(rows, 0) | 1 << atom
        gap = False
        for rows, atoms in groups.items():
            # values no row matches: one gap per stretch of numbers, so each gets a witness
            parts = _stretches(atoms, self.number_atoms[j]) if not rows else [atoms]
            for part in parts:
                gap = self._walk(j + 1, rows, [*prefix, part]) or gap
                if len(self.found) >= self.wanted:
                    return True
            if len(self.found) >= self.wanted:
                return True
        if not gap:
            self.covered.add((j, candidates))
        return gap


def _stretches(atoms: int, numbers: int) -> list[int]:
    """``atoms`` cut into runs of adjacent number atoms (and the other atoms, together)."""
    runs: list[int] = []
    run = 0
    for atom in range(numbers):
        if atoms >> atom & 1:
            run |= 1 << atom
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    rest = atoms >> numbers << numbers
    return [*runs, rest] if rest else runs


class TableAnalysis:
    """One decision table's cells as atom masks, and what they show.

    :param inputs: the table's parsed inputs (their types and enums type the columns).
    """

    def __init__(self, table: Table, inputs: Sequence[Expr]):
        self.table = table
        self.names = [text.value.strip() for text in table.inputs]
        self.analysable = len(inputs) == len(table.inputs) and all(
            len(row.cells) == len(inputs) for row in table.rows
        )
        self.overlapping: set[tuple[int, int]] = set()  # row index pairs that some input matches
        if not self.analysable:
            return
        tests: list[list[Expr | None]] = []
        try:
            for row in table.rows:
                tests.append(
                    [
                        parse_cell(cell, _subject(expr))
                        for cell, expr in zip(row.cells, inputs, strict=True)
                    ]
                )
        except CellError:
            self.analysable = False
            return
        self.domains = [
            Domain(getattr(expr, "type", "any"), _enum(expr), [r[j] for r in tests])
            for j, expr in enumerate(inputs)
        ]
        self.analysable = all(d.finite for d in self.domains)
        if not self.analysable:
            return
        self.masks = [[d.mask(t) for d, t in zip(self.domains, row, strict=True)] for row in tests]
        self.full = [d.full for d in self.domains]
        self.numbers = [d.number_atoms for d in self.domains]
        self.rows_at: list[list[int]] = []  # per column, per atom: the rows that accept it
        for j, domain in enumerate(self.domains):
            rows_at = [0] * len(domain.values)
            for number, cells in enumerate(self.masks):
                for atom in _bits(cells[j]):
                    rows_at[atom] |= 1 << number
            self.rows_at.append(rows_at)
        for s in range(len(self.masks)):
            for r in range(s):
                if all(a & b for a, b in zip(self.masks[r], self.masks[s], strict=True)):
                    self.overlapping.add((r, s))
        # the gaps and the rows never reached each have a budget: one cannot starve the other
        self.budget = _Budget(SEARCH_LIMIT)
        self.shadow_budget = _Budget(SEARCH_LIMIT)

    def witness(self, masks: Sequence[int]) -> dict[str, Any]:
        """A value per input, one from each column's mask."""
        return {
            name: domain.pick(mask)
            for name, domain, mask in zip(self.names, self.domains, masks, strict=True)
        }

    def findings(self, locate: Callable[[tuple[str | int, ...]], Location]) -> list[Finding]:
        """Overlaps, gaps and shadowed rows, as the table's hit policy makes them problems."""
        hit = self.table.hit
        found: list[Finding] = []
        if hit in ("unique", "any"):
            found.extend(self.overlaps(locate))
        if hit in SINGLE_HIT and self.table.complete:
            found.extend(self.gaps(locate))
        if hit == "first":
            found.extend(self.shadowed(locate))
        return found

    def overlaps(self, locate: Callable[[tuple[str | int, ...]], Location]) -> list[Finding]:
        table = self.table
        found: list[Finding] = []
        pairs = sorted(self.overlapping, key=lambda p: (p[1], p[0]))
        listed = 0
        for r, s in pairs:
            first, second = table.rows[r], table.rows[s]
            difference = ""
            if table.hit == "any":
                difference = _difference(first.then, second.then)
                if not difference:
                    continue
            listed += 1
            if listed > OVERLAPS_LISTED:
                continue
            both = [a & b for a, b in zip(self.masks[r], self.masks[s], strict=True)]
            witness = self.witness(both)
            if table.hit == "unique":
                message = (
                    f"rows {r + 1} and {s + 1} of table {table.id!r} both match "
                    f"{_show(witness)} (hit policy unique allows one)"
                )
            else:
                message = (
                    f"rows {r + 1} and {s + 1} of table {table.id!r} both match "
                    f"{_show(witness)} with different outcomes ({difference}; hit policy any "
                    "needs them equal)"
                )
            found.append(Finding("overlap", message, locate(second.path), (r + 1, s + 1), witness))
        if listed > OVERLAPS_LISTED:
            found.append(
                Finding(
                    "limit",
                    f"table {table.id!r}: {listed - OVERLAPS_LISTED} more overlapping row pairs "
                    f"(the first {OVERLAPS_LISTED} are listed)",
                    locate(table.path),
                )
            )
        return found

    def gaps(self, locate: Callable[[tuple[str | int, ...]], Location]) -> list[Finding]:
        table = self.table
        search = _Search(
            self.masks, self.rows_at, self.full, self.numbers, GAP_REGIONS, self.budget
        )
        finished = search.run((1 << len(self.masks)) - 1)
        complete = finished and len(search.found) < GAP_REGIONS
        regions = _merged(search.found, self.numbers)
        found = [
            Finding(
                "gap",
                f"table {table.id!r} (hit {table.hit}) has a gap: no row matches "
                f"{_show(self.witness(region))}",
                locate(table.path),
                (),
                self.witness(region),
            )
            for region in regions[:GAPS_LISTED]
        ]
        more = len(regions) - GAPS_LISTED
        if complete and more > 0:
            message = f"table {table.id!r}: {more} more gap{'s' if more > 1 else ''} not listed"
        elif not finished:
            message = (
                f"table {table.id!r}: the search for gaps stopped at its limit "
                f"({SEARCH_LIMIT} steps); there may be gaps it did not reach"
            )
        elif not complete:
            message = f"table {table.id!r}: more gaps not listed"
        else:
            return found
        return [*found, Finding("limit", message, locate(table.path))]

    def shadowed(self, locate: Callable[[tuple[str | int, ...]], Location]) -> list[Finding]:
        """Rows of a ``first`` table that earlier rows match entirely, so they never decide."""
        table = self.table
        found: list[Finding] = []
        undecided: list[int] = []
        for s, row in enumerate(table.rows):
            earlier = [r for r in range(s) if (r, s) in self.overlapping]
            if not earlier:
                continue
            cells = self.masks[s]
            single = next(
                (
                    r
                    for r in earlier
                    if all(a & b == b for a, b in zip(self.masks[r], cells, strict=True))
                ),
                None,
            )
            if single is not None:
                cover = [single]
            else:
                covered = self.covers(earlier, cells)
                if covered is None:
                    undecided.append(s + 1)
                    continue
                if not covered:
                    continue
                cover = self.fewest(earlier, cells)
            found.append(
                Finding(
                    "unreachable",
                    f"row {s + 1} of table {table.id!r} is never reached (hit first): "
                    + (
                        f"row {cover[0] + 1} matches everything it matches"
                        if len(cover) == 1
                        else f"rows {_and(_few([str(r + 1) for r in cover]))} together match "
                        "everything it matches"
                    ),
                    locate(row.path),
                    (*(r + 1 for r in cover), s + 1),
                )
            )
        if undecided:
            found.append(
                Finding(
                    "limit",
                    f"table {table.id!r}: the search stopped at its limit ({SEARCH_LIMIT} "
                    f"steps) before telling whether row{'s' if len(undecided) > 1 else ''} "
                    f"{_and(_few([str(u) for u in undecided]))} can be reached",
                    locate(table.path),
                )
            )
        return found

    def covers(self, rows: Sequence[int], cells: Sequence[int]) -> bool | None:
        """Whether ``rows`` together match every input ``cells`` match (None: undecided)."""
        search = _Search(self.masks, self.rows_at, cells, self.numbers, 1, self.shadow_budget)
        finished = search.run(sum(1 << r for r in rows))
        return False if search.found else (True if finished else None)

    def fewest(self, rows: Sequence[int], cells: Sequence[int]) -> list[int]:
        """A subset of ``rows`` that still covers ``cells``, none of them dispensable (rows
        dropped from the last); all of them when there are more than :data:`FEWEST_TRIED`."""
        kept = list(rows)
        if len(rows) > FEWEST_TRIED:
            return kept
        for row in reversed(rows):
            rest = [r for r in kept if r != row]
            if rest and self.covers(rest, cells) is True:
                kept = rest
        return kept


def _merged(regions: Sequence[Sequence[int]], numbers: Sequence[int]) -> list[list[int]]:
    """``regions`` (atom masks per column) with any two that differ in one column only made
    one, until no two do, when the numbers of the two stay one stretch (so that each stretch
    of numbers no row matches keeps a witness of its own); in the order they were found."""
    merged = [list(r) for r in regions]
    joined = True
    while joined:
        joined = False
        for i, first in enumerate(merged):
            for k in range(i + 1, len(merged)):
                second = merged[k]
                differ = [j for j, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
                if len(differ) == 0 or (
                    len(differ) == 1
                    and _joinable(first[differ[0]], second[differ[0]], numbers[differ[0]])
                ):
                    for j in differ:
                        first[j] |= second[j]
                    del merged[k]
                    joined = True
                    break
            if joined:
                break
    return merged


def _joinable(first: int, second: int, numbers: int) -> bool:
    low = (1 << numbers) - 1
    if first & low == second & low:
        return True
    return len(_stretches((first | second) & low, numbers)) == 1


def _subject(expr: Expr) -> Field:
    return Field(expr.pos, _SUBJECT, getattr(expr, "type", "any"), _enum(expr))


def _enum(expr: Expr) -> tuple[str, ...] | None:
    return expr.enum if isinstance(expr, Field) else None


_BARE = re.compile(r"[A-Za-z_][\w\-]*")


def _show(witness: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={_value(value)}" for name, value in witness.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, str) and _BARE.fullmatch(value) and value not in ("true", "false"):
        return value
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _few(items: Sequence[str], shown: int = 5) -> list[str]:
    """``items``, the ones past ``shown`` counted in a last item."""
    extra = len(items) - shown
    return [*items[:shown], f"{extra} more"] if extra > 1 else list(items)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


_EFFECTS = (
    ("sets", "set"),
    ("require", "require"),
    ("reject", "reject"),
    ("flag", "flag"),
    ("reason", "reason"),
    ("clauses", "clause"),
    ("action", "action"),
    ("args", "with"),
)


def _difference(first: Any, second: Any) -> str:
    """What two rows' ``then`` do differently, in words (empty when nothing)."""
    for attribute, key in _EFFECTS:
        a, b = getattr(first, attribute), getattr(second, attribute)
        if attribute in ("sets", "args"):
            for name in _unique([*a, *b]):
                if _canonical(a.get(name)) != _canonical(b.get(name)):
                    return f"{key} {name}: {_literal(a.get(name))} vs {_literal(b.get(name))}"
        elif _canonical(a) != _canonical(b):
            return f"{key}: {_literal(a)} vs {_literal(b)}"
    return ""


def _canonical(value: Any) -> Any:
    """A value as the comparison of outcomes sees it: expressions by their text, numbers
    exactly (0.3 and 0.30 are one value, 1 and true are not)."""
    text = getattr(value, "value", None)
    if isinstance(text, str) and hasattr(value, "path"):
        return ("text", text)
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float | Decimal):
        return ("number", Decimal(str(value)))
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("map", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    return ("literal", value)


def _literal(value: Any) -> str:
    text = getattr(value, "value", None)
    if isinstance(text, str) and hasattr(value, "path"):
        return repr(text)
    if value is None or value == []:
        return "nothing"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


# ---------------------------------------------------------------------------------------------
# Conflicting writers


def writer_conflicts(
    policy: Policy, overlapping: Mapping[int, set[tuple[int, int]]] | None = None
) -> list[Finding]:
    """Rules (or table rows) that set one output to values its combine mode does not
    reconcile, when nothing shows that they cannot fire on one deal.

    Outputs combine over all strata by (priority, file order) (:class:`dealdesk.evaluate.PolicyRun`),
    so a conflict is: under ``first`` (declared or not), two writers of the same priority that
    set different values — file (or row) order alone picks the value; under ``max``, ``min`` or
    ``sum``, a writer of a value that is not a number beside another writer — the non-number is
    dropped. ``list`` keeps every value. Two rows of one single-hit table never both fire; a
    ``collect`` table with an aggregation combines its rows itself. Writers cannot fire together
    when their rulesets' effective windows are disjoint, when they are rows of one table that no
    input matches both of (``overlapping``: row pairs by ``id(table)``), or when their conditions
    test one path with constants in ways no value (nor its absence) satisfies both. Values a plugin
    action sets are not known here and not compared.
    """
    overlapping = overlapping or {}
    found: list[Finding] = []
    writers: dict[str, list[CompiledRule]] = {}
    for rule in policy.rules:
        for name in rule.sets:
            writers.setdefault(name, []).append(rule)
    for name, rules in writers.items():
        spec = policy.outputs.get(name)
        mode = spec.combine if spec is not None else "first"
        if mode == "list":
            continue
        rules = sorted(rules, key=lambda r: (r.rank, r.order))
        conflicts = []
        for i, later in enumerate(rules):
            value = later.then.sets[name]
            if mode != "first" and _numeric(value):
                continue
            for earlier in rules[:i] if mode == "first" else rules:
                if earlier is later or not _both_count(earlier, later):
                    continue
                if mode == "first":
                    before = earlier.then.sets[name]
                    if earlier.priority != later.priority or _canonical(before) == _canonical(
                        value
                    ):
                        continue
                if not _together(earlier, later, overlapping):
                    continue
                conflicts.append((later, _conflict(mode, name, earlier, later)))
                break  # one other writer shows it: under first, the one whose value wins
        for later, message in conflicts[:CONFLICTS_LISTED]:
            path = (*later.then.path, "set", name)
            found.append(Finding("conflict", message, later.ruleset.location(path), _rows(later)))
        if len(conflicts) > CONFLICTS_LISTED:
            last = conflicts[-1][0]
            found.append(
                Finding(
                    "limit",
                    f"output {name!r}: {len(conflicts) - CONFLICTS_LISTED} more conflicting "
                    f"writers (the first {CONFLICTS_LISTED} are listed)",
                    last.ruleset.location((*last.then.path, "set", name)),
                )
            )
    return found


def _writer(rule: CompiledRule) -> str:
    if rule.table is not None and rule.row is not None:
        return f"row {rule.row + 1} of table {rule.id!r}"
    return f"rule {rule.id!r}"


def _rows(*rules: CompiledRule) -> tuple[int, ...]:
    return tuple(r.row + 1 for r in rules if r.row is not None)


def _both_count(a: CompiledRule, b: CompiledRule) -> bool:
    """Whether both writers' values reach the output when both match: not so for two rows of
    one single-hit table, or of a collect table that aggregates them itself."""
    table = a.table
    if table is None or table is not b.table:
        return True
    return not (table.hit in SINGLE_HIT or (table.hit == "collect" and table.aggregation))


def _conflict(mode: str, name: str, other: CompiledRule, writer: CompiledRule) -> str:
    """The message for ``writer``, whose value of ``name`` does not combine with ``other``'s."""
    value = _literal(writer.then.sets[name])
    if mode == "first":
        same_table = writer.table is not None and writer.table is other.table
        return (
            f"output {name!r} (combine first) is set to {value} by {_writer(writer)} and to "
            f"{_literal(other.then.sets[name])} by {_writer(other)} at {other.location}, at the "
            f"same priority ({writer.priority}): {'row' if same_table else 'file'} order alone "
            f"picks {_literal(other.then.sets[name])}"
        )
    return (
        f"output {name!r} (combine {mode}) is set to {value} by {_writer(writer)}, which is not "
        f"a number: combine {mode} keeps only numbers, so {value} is lost when "
        f"{_writer(other)} at {other.location} sets it too"
    )


def _numeric(value: Any) -> bool:
    text = getattr(value, "value", None)
    if isinstance(text, str) and hasattr(value, "path"):
        return True  # an expression: the checker typed it; its value is only known per deal
    return _number(value) is not None


def _together(
    a: CompiledRule, b: CompiledRule, overlapping: Mapping[int, set[tuple[int, int]]]
) -> bool:
    """Whether nothing shows that ``a`` and ``b`` cannot fire on one deal."""
    if _disjoint_windows(a, b):
        return False
    if a.table is not None and a.table is b.table and id(a.table) in overlapping:
        rows = (a.row or 0, b.row or 0)
        return (min(rows), max(rows)) in overlapping[id(a.table)]
    tests_a, tests_b = _unary_tests(a.condition), _unary_tests(b.condition)
    for path in tests_a.keys() & tests_b.keys():
        field_ = tests_a[path][0][0]
        mine = [t for _, t in tests_a[path]]
        theirs = [t for _, t in tests_b[path]]
        domain = Domain(field_.type, field_.enum, [*mine, *theirs], path, missing=True)
        if not domain.finite:
            continue
        both = domain.full
        for test in [*mine, *theirs]:
            both &= domain.mask(test)
        if not both:
            return False
    return True


def _disjoint_windows(a: CompiledRule, b: CompiledRule) -> bool:
    first, second = a.ruleset, b.ruleset
    starts = [d for d in (first.effective_from, second.effective_from) if d]
    ends = [d for d in (first.effective_to, second.effective_to) if d]
    return bool(starts and ends) and max(starts) > min(ends)


def _unary_tests(condition: Expr) -> dict[str, list[tuple[Field, Expr]]]:
    """The conjuncts of ``condition`` that test one deal path against constants, by path."""
    conjuncts: list[Expr] = []
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend(node.operands)
        else:
            conjuncts.append(node)
    found: dict[str, list[tuple[Field, Expr]]] = {}
    for conjunct in conjuncts:
        paths = _unary_paths(conjunct)
        if paths is not None and len(paths) == 1:
            [(path, field_)] = paths.items()
            found.setdefault(path, []).append((field_, conjunct))
    return found


def _unary_paths(expr: Expr) -> dict[str, Field] | None:
    """The paths ``expr`` tests, if it is made only of comparisons of a path with constants
    (and ``exists``, ``not``, ``and``, ``or`` of those); None otherwise."""
    match expr:
        case Compare(left=Field() as f, right=Const()) | Compare(left=Const(), right=Field() as f):
            return None if f.item else {f.path: f}
        case InList(operand=Field() as f):
            return None if f.item else {f.path: f}
        case Exists(target=f):
            return None if f.item else {f.path: f}
        case Not(operand=operand):
            return _unary_paths(operand)
        case And(operands=operands) | Or(operands=operands):
            merged: dict[str, Field] = {}
            for operand in operands:
                paths = _unary_paths(operand)
                if paths is None:
                    return None
                merged.update(paths)
            return merged
    return None
