"""Run the ``tests:`` cases written next to the rules (``dealdesk test``).

A case names a deal — ``{file: PATH, patch: {...}}`` with ``PATH`` relative to the ruleset file
and ``patch`` merged into it recursively (mappings merge; lists and scalars replace), or an
inline deal mapping — and what to expect of its evaluation by the whole loaded policy set:

- ``status``: the decision's status; ``approvals``: the decision's approvals, exactly (order
  does not matter).
- ``policy_status``: the status of the ruleset's own policy; ``fired`` / ``not_fired``: rule or
  table ids that did / did not fire in that policy; ``outputs``: a subset of that policy's
  outputs as the record shows them (money ``"300000.00"`` equals ``300000``; mappings match on
  the keys given); ``clauses``: the clause ids that policy's rules asked for, exactly;
  ``flags``: how many flags that policy raised.

:func:`run_tests` returns plain results; the CLI prints them pytest-style. Coverage counts, per
ruleset, the rules and table rows that fired in at least one case.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealdesk.errors import DealdeskError, RulesetError, UsageError, closest
from dealdesk.io.writers import format_message
from dealdesk.pipeline import requested_clauses
from dealdesk.rules.model import Ruleset, TestCase

if TYPE_CHECKING:
    from dealdesk.app import App

__all__ = [
    "CaseResult",
    "Coverage",
    "Mismatch",
    "TestReport",
    "format_coverage",
    "expectation_problems",
    "format_report",
    "load_case_deal",
    "merge_patch",
    "run_tests",
    "selector",
    "shown_path",
    "summary_line",
]


@dataclass(frozen=True)
class Mismatch:
    """One ``expect:`` field that did not hold: what a passing run would show, and what it did."""

    field: str
    expected: Any
    actual: Any


@dataclass
class CaseResult:
    """One case's outcome: ``failures`` is empty when it passed."""

    ruleset: Ruleset
    case: TestCase
    failures: list[str] = field(default_factory=list)
    fired: set[str] = field(default_factory=set)  # compiled rule keys that fired, every policy
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # failures no diff shows (a bad deal, not_fired)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def location(self) -> str:
        return str(self.ruleset.location(self.case.path))


@dataclass
class Coverage:
    """Which rules and table rows of one ruleset fired in at least one case."""

    ruleset: Ruleset
    units: list[tuple[str, str]]  # (compiled rule key, label: "PM-1" or "PM-5 row 2")
    fired: set[str]

    @property
    def covered(self) -> int:
        return sum(1 for key, _ in self.units if key in self.fired)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / len(self.units) if self.units else 100.0

    @property
    def never_fired(self) -> list[str]:
        return [label for key, label in self.units if key not in self.fired]

    def counts(self, rows: bool) -> tuple[int, int]:
        """(covered, total) of the rules (``rows`` False) or of the table rows (True)."""
        chosen = [key for key, label in self.units if (" row " in label) == rows]
        return sum(1 for key in chosen if key in self.fired), len(chosen)


@dataclass
class TestReport:
    """Every case's result and, per ruleset, the coverage."""

    __test__ = False  # not a pytest test class, whatever its name
    results: list[CaseResult]
    coverage: list[Coverage]
    deselected: int = 0

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed)

    @property
    def total_percent(self) -> float:
        """Rules and table rows fired by some case, of every chosen ruleset, in percent."""
        units = sum(len(c.units) for c in self.coverage)
        covered = sum(c.covered for c in self.coverage)
        return 100.0 * covered / units if units else 100.0


def merge_patch(base: Any, patch: Any) -> Any:
    """``patch`` merged into ``base``: mappings merge recursively, anything else replaces."""
    if isinstance(base, Mapping) and isinstance(patch, Mapping):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge_patch(base[key], value) if key in base else value
        return merged
    return patch


def load_case_deal(app: App, ruleset: Ruleset, case: TestCase) -> Any:
    """The raw deal a case describes.

    :raises DealdeskError: the deal file is missing, unreadable, or holds other than one deal.
    """
    spec = case.deal
    if "file" not in spec:
        return dict(spec)
    extra = sorted(set(spec) - {"file", "patch"})
    if extra:
        raise DealdeskError(f"deal: unknown key {extra[0]!r} next to file: (only file and patch)")
    path = Path(ruleset.file).parent / str(spec["file"])
    if not path.exists():
        raise DealdeskError(f"deal file {spec['file']} not found (looked for {path})")
    if path.is_dir():
        raise DealdeskError(f"deal file {spec['file']} is a directory; a case needs one deal file")
    if not path.is_file():
        # a FIFO or a device would block or read forever: a case reads a file it can reread
        raise DealdeskError(
            f"deal file {spec['file']} is not a regular file (a FIFO, device or socket); "
            "a case needs one deal file"
        )
    sources = list(app.read([str(path)]))
    if len(sources) != 1:
        raise DealdeskError(
            f"deal file {spec['file']} holds {len(sources)} deals; a case needs one"
        )
    source = sources[0]
    if source.error is not None:
        raise DealdeskError(source.error)
    patch = spec.get("patch")
    return source.deal if patch is None else merge_patch(source.deal, patch)


def run_tests(
    app: App,
    rulesets: Iterable[Ruleset] | None = None,
    select: Callable[[Ruleset, TestCase], bool] | None = None,
) -> TestReport:
    """Run the cases of ``rulesets`` (default: every loaded ruleset) against the loaded set.

    With ``select``, only the cases it accepts run (the others are counted as deselected).
    """
    chosen = list(app.policy_set.rulesets if rulesets is None else rulesets)
    cases = [(ruleset, case) for ruleset in chosen for case in ruleset.tests]
    kept = [(r, c) for r, c in cases if select is None or select(r, c)]
    results = [run_case(app, ruleset, case) for ruleset, case in kept]
    fired = set().union(*(r.fired for r in results)) if results else set()
    coverage = [Coverage(ruleset, _units(app, ruleset), fired) for ruleset in chosen]
    return TestReport(results, coverage, len(cases) - len(kept))


def selector(
    expression: str, shown: Callable[[Ruleset], str]
) -> Callable[[Ruleset, TestCase], bool]:
    """``-k``, as pytest reads it: words joined with ``and``, ``or``, ``not`` and parentheses,
    each word matching the cases whose ``file::name`` holds it, case-insensitively. Words
    written side by side are one phrase (``-k "risk offer"``), since case names have spaces.

    :raises UsageError: an expression that does not parse, saying where.
    """
    match = _parse_keywords(expression)

    def select(ruleset: Ruleset, case: TestCase) -> bool:
        return match(f"{shown(ruleset)}::{case.name}".casefold())

    return select


_KEYWORD_TOKEN = re.compile(r"\s*(?:(\()|(\))|([^\s()]+))")
_OPERATORS = ("and", "or", "not")


def _parse_keywords(expression: str) -> Callable[[str], bool]:
    """``expression`` as a predicate on a lower-cased ``file::name`` (recursive descent, as
    pytest's ``-k`` grammar: ``or`` binds loosest, then ``and``, then ``not``)."""
    tokens: list[tuple[str, str, int]] = []  # (kind, text, column)
    position = 0
    while position < len(expression):
        found = _KEYWORD_TOKEN.match(expression, position)
        if found is None or found.end() == position:
            break  # only trailing spaces are left
        column = found.start(found.lastindex or 0) + 1
        if found.group(1) or found.group(2):
            tokens.append((found.group(1) or found.group(2), found.group(0).strip(), column))
        else:
            word = found.group(3)
            kind = word.lower() if word.lower() in _OPERATORS else "word"
            tokens.append((kind, word, column))
        position = found.end()
    at = 0

    def fail(message: str) -> UsageError:
        where = f"column {tokens[at][2]}" if at < len(tokens) else "the end"
        return UsageError(f"-k {expression!r}: at {where}: {message}")

    def peek() -> str | None:
        return tokens[at][0] if at < len(tokens) else None

    def either() -> Callable[[str], bool]:
        nonlocal at
        parts = [both()]
        while peek() == "or":
            at += 1
            parts.append(both())
        return parts[0] if len(parts) == 1 else (lambda text: any(p(text) for p in parts))

    def both() -> Callable[[str], bool]:
        nonlocal at
        parts = [negation()]
        while peek() == "and":
            at += 1
            parts.append(negation())
        return parts[0] if len(parts) == 1 else (lambda text: all(p(text) for p in parts))

    def negation() -> Callable[[str], bool]:
        nonlocal at
        if peek() == "not":
            at += 1
            inner = negation()
            return lambda text: not inner(text)
        if peek() == "(":
            at += 1
            inner = either()
            if peek() != ")":
                raise fail("expected ')'")
            at += 1
            return inner
        if peek() != "word":
            raise fail("expected a word, 'not' or '('")
        words = []
        while peek() == "word":
            words.append(tokens[at][1])
            at += 1
        needle = " ".join(words).casefold()
        return lambda text: needle in text

    if not tokens:
        raise UsageError("-k: empty expression")
    predicate = either()
    if at < len(tokens):
        raise fail(f"unexpected {tokens[at][1]!r}")
    return predicate


def expectation_problems(app: App, rulesets: Iterable[Ruleset] | None = None) -> list[RulesetError]:
    """The names in the cases' ``expect:`` that nothing loaded knows, each at its place with a
    "did you mean", as validation reports a ruleset's names: a ``fired``/``not_fired`` id that
    is no rule or table of the ruleset's policy, an ``approvals`` role that is not ranked, a
    ``clauses`` id with no template, an ``outputs`` name no rule of the policy sets or declares.

    Checked before any case runs, so that a misspelt name fails loudly instead of passing
    (``not_fired: [PM_13]`` would hold for every deal) or failing as a diff.
    """
    chosen = list(app.policy_set.rulesets if rulesets is None else rulesets)
    problems: list[RulesetError] = []
    clause_ids: list[str] | None = None
    for ruleset in chosen:
        policy = app.policy_set.policies.get(ruleset.policy)
        if policy is None or not ruleset.tests:
            continue
        ids = _unique(rule.id for rule in policy.rules)
        outputs = set(policy.outputs).union(*(rule.sets for rule in policy.rules))
        # a plugin action may set any output (ctx.set), so only a policy without one is known
        outputs_known = not any(rule.then.action for rule in policy.rules)
        for case in ruleset.tests:
            expect = case.expect

            def problem(
                key: tuple[str | int, ...],
                message: str,
                near: str | None,
                ruleset: Ruleset = ruleset,
                case: TestCase = case,
            ) -> None:
                path = (*case.path, "expect", *key)
                # an output is named by its key; an id or a role is a list item
                location = (
                    ruleset.document.key_location(path)
                    if key[0] == "outputs"
                    else ruleset.location(path)
                )
                problems.append(RulesetError(message, location, near))

            for key in ("fired", "not_fired"):
                for i, rule_id in enumerate(expect.get(key) or ()):
                    if rule_id not in ids:
                        problem(
                            (key, i),
                            f"expect.{key}: no rule or table {rule_id!r} in policy "
                            f"{ruleset.policy!r}",
                            _near(str(rule_id), ids),
                        )
            ranks = app.policy_set.approvers
            for i, role in enumerate(expect.get("approvals") or ()):
                if ranks and role not in ranks:
                    problem(
                        ("approvals", i),
                        f"expect.approvals: unknown approver role {role!r}",
                        _near(str(role), ranks),
                    )
            for i, clause in enumerate(expect.get("clauses") or ()):
                if not app.renderer.has_clause(str(clause)):
                    if clause_ids is None:  # listing loads Jinja: only when a name is wrong
                        clause_ids = app.renderer.clause_ids()
                    problem(
                        ("clauses", i),
                        f"expect.clauses: unknown clause template {clause!r} "
                        f"(no {clause}.md.j2 in any template directory)",
                        closest(str(clause), clause_ids, cutoff=0.8),
                    )
            if outputs_known:
                for name in expect.get("outputs") or {}:
                    if name not in outputs:
                        problem(
                            ("outputs", name),
                            f"expect.outputs: policy {ruleset.policy!r} has no output {name!r} "
                            "(no rule sets it and no outputs: entry declares it)",
                            _near(str(name), sorted(outputs)),
                        )
    return problems


def _near(word: str, names: Sequence[str]) -> str | None:
    """A "did you mean": the name written in another case (``pm-13``), else the closest."""
    same = [name for name in names if name.casefold() == word.casefold()]
    return same[0] if same else closest(word, names)


def _units(app: App, ruleset: Ruleset) -> list[tuple[str, str]]:
    policy = app.policy_set.policies.get(ruleset.policy)
    if policy is None:
        return []
    return [(rule.key, rule.label) for rule in policy.rules if rule.ruleset is ruleset]


def run_case(app: App, ruleset: Ruleset, case: TestCase) -> CaseResult:
    """Evaluate one case and compare it with its ``expect``."""
    result = CaseResult(ruleset, case)
    try:
        raw = load_case_deal(app, ruleset, case)
    except DealdeskError as exc:
        result.failures.append(f"deal: {exc}")
        result.notes.append(f"deal: {exc}")
        return result
    decision = app.decide(raw)
    record, runs = decision.record, decision.runs
    result.fired = {f.rule.key for run in runs.values() for f in run.firings}
    own = (record.get("policies") or {}).get(ruleset.policy)
    own_run = runs.get(ruleset.policy)
    expect = case.expect
    failures = result.failures

    mismatches = result.mismatches

    def check(name: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            failures.append(f"{name}: expected {_show(expected)}, got {_show(actual)}")
            mismatches.append(Mismatch(name, expected, actual))

    if "status" in expect:
        check("status", expect["status"], record["status"])
    if "policy_status" in expect:
        actual = own["status"] if own else ("invalid" if record["status"] == "invalid" else None)
        check("policy_status", expect["policy_status"], actual)
    fired_ids = list(own["fired"]) if own else []
    for rule_id in expect.get("fired") or ():
        if rule_id not in fired_ids:
            failures.append(f"fired: expected {rule_id} to fire; fired: {_ids(fired_ids)}")
    for rule_id in expect.get("not_fired") or ():
        if rule_id in fired_ids:
            # said as it is, not as a diff of `fired:` lines the case never wrote
            message = f"not_fired: {rule_id} fired, expected not to fire"
            failures.append(message)
            result.notes.append(message)
    missing = [r for r in expect.get("fired") or () if r not in fired_ids]
    if missing:
        # what would have passed: the rules that fired plus the missing ones
        mismatches.append(Mismatch("fired", fired_ids + missing, fired_ids))
    if "approvals" in expect:
        expected = list(expect["approvals"] or [])
        if sorted(set(expected)) != sorted(set(record["approvals"])) or len(set(expected)) != len(
            expected
        ):
            failures.append(
                f"approvals: expected {_show(expected)}, got {_show(record['approvals'])}"
            )
            order = list(record["approvals"])
            ranked = sorted(expected, key=lambda r: order.index(r) if r in order else len(order))
            mismatches.append(Mismatch("approvals", ranked, order))
    if "outputs" in expect:
        outputs = own["outputs"] if own else {}
        wrong_expected: dict[str, Any] = {}
        wrong_actual: dict[str, Any] = {}
        for name, wanted in (expect["outputs"] or {}).items():
            if name not in outputs:
                failures.append(
                    f"outputs.{name}: expected {_show(wanted)}, but the policy has no such output"
                )
                wrong_expected[name] = wanted
            elif not _matches(wanted, outputs[name]):
                failures.append(
                    f"outputs.{name}: expected {_show(wanted)}, got {_show(outputs[name])}"
                )
                wrong_expected[name], wrong_actual[name] = wanted, outputs[name]
        if wrong_expected:
            mismatches.append(Mismatch("outputs", wrong_expected, wrong_actual))
    if "clauses" in expect:
        asked = _unique(
            c["id"] for c in requested_clauses({ruleset.policy: own_run} if own_run else {})
        )
        if sorted(set(expect["clauses"] or [])) != sorted(asked):
            failures.append(
                f"clauses: expected {_show(list(expect['clauses'] or []))}, got {_show(asked)}"
            )
            mismatches.append(Mismatch("clauses", sorted(set(expect["clauses"] or [])), asked))
    if "flags" in expect:
        flags = [f for f in record.get("flags") or () if f.get("policy") == ruleset.policy]
        check("flags", expect["flags"], len(flags))
    if failures and record["status"] == "invalid" and expect.get("status") != "invalid":
        note = "the deal is invalid: " + "; ".join(
            format_message(e) for e in record.get("errors") or ()
        )
        failures.append(note)
        result.notes.append(note)
    return result


def _matches(expected: Any, actual: Any) -> bool:
    """Subset match: mappings on the keys given, lists item by item, numbers by value."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return expected == actual and type(expected) is type(actual)
    a, b = _number(expected), _number(actual)
    if a is not None and b is not None:
        return a == b
    return bool(expected == actual)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _unique(items: Iterable[str]) -> list[str]:
    return sorted(set(items))


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids) if ids else "nothing"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# -- the report --------------------------------------------------------------------------------


def shown_path(file: str) -> str:
    """A ruleset file as the report names it: relative to the working directory when below it,
    ``dealdesk/rulesets/...`` for the house's, else as it is."""
    from importlib.resources import files

    path = Path(file).resolve()
    house = Path(str(files("dealdesk.rulesets"))).resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (house, "dealdesk/rulesets/")):
        try:
            return prefix + str(path.relative_to(base))
        except ValueError:
            continue
    return os.fspath(file)


def format_report(report: TestReport, *, verbose: bool = False) -> list[str]:
    """The lines ``dealdesk test`` prints, pytest-style, styled for a terminal.

    One line per ruleset file (a ``.`` or ``F`` per case), or with ``verbose`` one per case; then
    each failing case with the expected fields against the actual ones as a unified diff; then
    the summary. The caller strips the styles when the output is no terminal.
    """
    import click  # the styles only; the report itself is plain text

    lines: list[str] = []
    by_file: dict[str, list[CaseResult]] = {}
    for result in report.results:
        by_file.setdefault(shown_path(result.ruleset.file), []).append(result)
    for shown, results in by_file.items():
        if verbose:
            for r in results:
                word = (
                    click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
                )
                lines.append(f"{word} {shown}::{r.case.name}")
        else:
            marks = "".join(
                "." if r.passed else click.style("F", fg="red", bold=True) for r in results
            )
            lines.append(f"{shown} {marks} [{_count(len(results), 'case')}]")
    failed = [r for r in report.results if not r.passed]
    if failed:
        lines += ["", click.style("FAILURES", bold=True)]
        for r in failed:
            shown = shown_path(r.ruleset.file)
            location = r.ruleset.location(r.case.path)
            at = f"{shown}:{location.line}:{location.column}"
            lines += ["", click.style(f"{shown}::{r.case.name}", fg="red", bold=True) + f" at {at}"]
            lines += [f"  {line}" for line in _diff(r.mismatches)]
            lines += [f"  {note}" for note in r.notes]
    if lines:
        lines.append("")  # the summary stands apart, as in pytest
    return lines


def format_coverage(report: TestReport) -> list[str]:
    """Per ruleset file: rules and table rows fired by some case, the percentage, the others."""
    lines = ["Coverage (rules and table rows fired by at least one case):"]
    width = max((len(shown_path(c.ruleset.file)) for c in report.coverage), default=5)
    for cov in report.coverage:
        rules, rows = cov.counts(rows=False), cov.counts(rows=True)
        lines.append(
            f"  {shown_path(cov.ruleset.file):<{width}}  rules {rules[0]}/{rules[1]}"
            f"  table rows {rows[0]}/{rows[1]}  {cov.percent:5.1f}%"
        )
        if cov.never_fired:
            lines.append(f"    never fired: {', '.join(cov.never_fired)}")
    covered = sum(c.covered for c in report.coverage)
    units = sum(len(c.units) for c in report.coverage)
    lines += [f"  total {covered}/{units}  {report.total_percent:5.1f}%", ""]
    return lines


def summary_line(report: TestReport, elapsed: float | None = None) -> str:
    """``N passed, M failed[, K deselected] in 0.12s``, green or red."""
    import click

    text = f"{report.passed} passed, {report.failed} failed"
    if report.deselected:
        text += f", {report.deselected} deselected"
    if elapsed is not None:
        text += f" in {elapsed:.2f}s"
    return click.style(text, fg="red" if report.failed else "green", bold=True)


def _diff(mismatches: Sequence[Mismatch]) -> list[str]:
    """Expected against actual, field by field, as a unified diff of their YAML."""
    if not mismatches:
        return []
    import yaml

    def dump(side: str) -> list[str]:
        data = {m.field: _plain(getattr(m, side)) for m in mismatches}
        text = yaml.dump(
            data,
            Dumper=_indented_dumper(),
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
        )
        return text.splitlines()

    diff = difflib.unified_diff(
        dump("expected"), dump("actual"), "expected", "actual", lineterm="", n=1_000_000
    )
    return [line for line in diff if not line.startswith("@@")]


def _indented_dumper() -> type:
    import yaml

    class Indented(yaml.SafeDumper):
        """Lists indented below their key, so that each item reads as one line of the diff."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    return Indented


def _plain(value: Any) -> Any:
    """``value`` as JSON carries it, so that YAML prints money and dates as the record does."""
    return json.loads(json.dumps(value, default=str))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"
