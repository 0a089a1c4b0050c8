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

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealdesk.errors import DealdeskError
from dealdesk.io.writers import format_message
from dealdesk.pipeline import requested_clauses
from dealdesk.rules.model import Ruleset, TestCase

if TYPE_CHECKING:
    from dealdesk.app import App

__all__ = ["CaseResult", "Coverage", "TestReport", "load_case_deal", "merge_patch", "run_tests"]


@dataclass
class CaseResult:
    """One case's outcome: ``failures`` is empty when it passed."""

    ruleset: Ruleset
    case: TestCase
    failures: list[str] = field(default_factory=list)
    fired: set[str] = field(default_factory=set)  # compiled rule keys that fired, every policy

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


@dataclass
class TestReport:
    """Every case's result and, per ruleset, the coverage."""

    __test__ = False  # not a pytest test class, whatever its name
    results: list[CaseResult]
    coverage: list[Coverage]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed)


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
    if not path.is_file():
        raise DealdeskError(f"deal file {spec['file']} not found (looked for {path})")
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


def run_tests(app: App, rulesets: Iterable[Ruleset] | None = None) -> TestReport:
    """Run the cases of ``rulesets`` (default: every loaded ruleset) against the loaded set."""
    chosen = list(app.policy_set.rulesets if rulesets is None else rulesets)
    results = [run_case(app, ruleset, case) for ruleset in chosen for case in ruleset.tests]
    fired = set().union(*(r.fired for r in results)) if results else set()
    coverage = [Coverage(ruleset, _units(app, ruleset), fired) for ruleset in chosen]
    return TestReport(results, coverage)


def _units(app: App, ruleset: Ruleset) -> list[tuple[str, str]]:
    policy = app.policy_set.policies.get(ruleset.policy)
    if policy is None:
        return []
    return [
        (rule.key, rule.id if rule.row is None else f"{rule.id} row {rule.row + 1}")
        for rule in policy.rules
        if rule.ruleset is ruleset
    ]


def run_case(app: App, ruleset: Ruleset, case: TestCase) -> CaseResult:
    """Evaluate one case and compare it with its ``expect``."""
    result = CaseResult(ruleset, case)
    try:
        raw = load_case_deal(app, ruleset, case)
    except DealdeskError as exc:
        result.failures.append(f"deal: {exc}")
        return result
    decision = app.decide(raw)
    record, runs = decision.record, decision.runs
    result.fired = {f.rule.key for run in runs.values() for f in run.firings}
    own = (record.get("policies") or {}).get(ruleset.policy)
    own_run = runs.get(ruleset.policy)
    expect = case.expect
    failures = result.failures

    def check(name: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            failures.append(f"{name}: expected {_show(expected)}, got {_show(actual)}")

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
            failures.append(f"not_fired: expected {rule_id} not to fire; fired: {_ids(fired_ids)}")
    if "approvals" in expect:
        expected = list(expect["approvals"] or [])
        if sorted(set(expected)) != sorted(set(record["approvals"])) or len(set(expected)) != len(
            expected
        ):
            failures.append(
                f"approvals: expected {_show(expected)}, got {_show(record['approvals'])}"
            )
    if "outputs" in expect:
        outputs = own["outputs"] if own else {}
        for name, wanted in (expect["outputs"] or {}).items():
            if name not in outputs:
                failures.append(
                    f"outputs.{name}: expected {_show(wanted)}, but the policy has no such output"
                )
            elif not _matches(wanted, outputs[name]):
                failures.append(
                    f"outputs.{name}: expected {_show(wanted)}, got {_show(outputs[name])}"
                )
    if "clauses" in expect:
        asked = _unique(
            c["id"] for c in requested_clauses({ruleset.policy: own_run} if own_run else {})
        )
        if sorted(set(expect["clauses"] or [])) != sorted(asked):
            failures.append(
                f"clauses: expected {_show(list(expect['clauses'] or []))}, got {_show(asked)}"
            )
    if "flags" in expect:
        flags = [f for f in record.get("flags") or () if f.get("policy") == ruleset.policy]
        check("flags", expect["flags"], len(flags))
    if failures and record["status"] == "invalid" and expect.get("status") != "invalid":
        failures.append(
            "the deal is invalid: "
            + "; ".join(format_message(e) for e in record.get("errors") or ())
        )
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
