"""What the conformance suite needs besides its generators: the engines to run, a way to build an
app on one of them, the REFERENCE evaluator, and the byte-for-byte record comparison.

SPEC §9: every engine gives byte-identical records for the same deals, rulesets and plugins. The
suite checks each available engine against the REFERENCE: the same evaluator, except that a rule
matches when its condition's direct three-valued meaning (``dealdesk.rules.expressions.evaluate``,
SPEC §3) is true, instead of when an engine says so. Everything after matching (hit policies,
strata, combining, messages, the record) is the product's own code, so a difference between an
engine and the REFERENCE is a difference in which rules the engine matched.

When the engine interface moves (``app.build(..., engine=...)``, ``dealdesk.engines``), this module
is the one place to adapt: :data:`ENGINES`, :func:`build_app` and :class:`ReferenceEvaluator`.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from dealdesk import app as dealdesk_app
from dealdesk import cli
from dealdesk.evaluate import Evaluator, Firing, PolicyRun
from dealdesk.rules.expressions import evaluate, lookup
from dealdesk.rules.policyset import Policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DEALS = ROOT / "examples" / "deals"
#: The name :func:`app_on` gives the REFERENCE.
REFERENCE = "reference"

#: tox installs the example plugin and sets DEALDESK_REQUIRE_EXAMPLE_PLUGIN: there these tests
#: run or fail, never skip.
needs_example = pytest.mark.skipif(
    importlib.util.find_spec("dealdesk_example_plugin") is None
    and not os.environ.get("DEALDESK_REQUIRE_EXAMPLE_PLUGIN"),
    reason="dealdesk-example-plugin is not installed (tox installs it)",
)


def _available_engines() -> list[str]:
    try:
        from dealdesk.engines import available_engines  # type: ignore[attr-defined]
    except ImportError:
        return ["durable"]  # before the engine interface: every deal runs on durable_rules
    return list(available_engines())


#: The engines that import here; each conformance test runs once per engine.
ENGINES: list[str] = _available_engines()

#: Whether ``app.build`` chooses an engine yet (``engine="native" | "durable"``).
BUILD_TAKES_ENGINE = "engine" in inspect.signature(dealdesk_app.build).parameters


def build_app(
    rulesets: Sequence[str | Path] | None = None, *, engine: str, **options: Any
) -> dealdesk_app.App:
    """``app.build`` on ``engine`` (``-r`` semantics for ``rulesets``)."""
    if BUILD_TAKES_ENGINE:
        options["engine"] = engine
    elif engine != "durable":
        raise AssertionError(f"engine {engine!r} is listed, but app.build() takes no engine=")
    return dealdesk_app.build(list(rulesets) if rulesets else None, **options)


#: Whether ``dealdesk evaluate`` takes ``--engine`` yet.
CLI_TAKES_ENGINE = any(param.name == "engine" for param in cli.evaluate.params)


def engine_args(engine: str) -> list[str]:
    """The ``dealdesk evaluate`` arguments that choose ``engine``."""
    if CLI_TAKES_ENGINE:
        return ["--engine", engine]
    assert engine == "durable", f"engine {engine!r} is listed, but the CLI takes no --engine"
    return []


def examples(default: int) -> int:
    """Hypothesis example count: ``default`` in CI, ``DEALDESK_CONFORMANCE_EXAMPLES`` locally."""
    return int(os.environ.get("DEALDESK_CONFORMANCE_EXAMPLES", default))


# ---------------------------------------------------------------------------------------------
# Known engine bugs: each has a dedicated test (test_conformance_known_bugs.py), a known failure
# on those engines only. Generated examples hitting one are set aside there, so the generated
# tests keep finding new differences; every other engine is held to them.

#: Engines that compare numbers as doubles, not as exact decimals (SPEC §2: derived facts are
#: exact; PM: "comparisons use full precision"): they are not given literals or amounts beyond a
#: double's precision (EDGE_NUMBERS, a price of 999999999999999.99).
IMPRECISE_ENGINES = frozenset({"durable"})
#: Engines that compare a value whose type the ruleset does not fix (an output declared without
#: a type, a string default or numeral in a number output) with their own coercions: "none" != 0
#: and True == 1 are true there, unknown in SPEC §3's meaning. They are not given such outputs.
UNTYPED_ENGINES = frozenset({"durable"})
#: Error text a known engine failure leaves in a record, with why.
KNOWN_RECORD_ERRORS: dict[str, dict[str, str]] = {
    "durable": {
        "error code 204 (cannot parse object)": (
            "durable_rules cannot parse a number written with an exponent and a one-digit "
            "mantissa (1e-05, 5e-05, 1e+16): a margin of 0.00005 makes the deal invalid"
        ),
        "error code 303 (max stack size)": (
            "durable_rules fails when 65 or more distinct conditions match one fact"
        ),
    }
}


def known_failure(engine: str, records: Iterable[Mapping[str, Any]]) -> str | None:
    """Why ``engine``'s records show a known failure of that engine, or None."""
    signatures = KNOWN_RECORD_ERRORS.get(engine, {})
    for record in records:
        for error in record.get("errors", ()):
            for text, why in signatures.items():
                if text in str(error.get("message", "")):
                    return why
    return None


# ---------------------------------------------------------------------------------------------
# The REFERENCE


class _NoEngine:
    """Stands in for the durable driver: the REFERENCE registers nothing and asks no engine."""

    def register(self, name: str, definition: Mapping[str, Any]) -> None:
        pass

    def match(self, name: str, fact: Mapping[str, Any], **kwargs: Any) -> list[str]:
        raise AssertionError("the REFERENCE never asks an engine")


class ReferenceEvaluator(Evaluator):
    """The product's evaluator with matching by the direct meaning of each condition."""

    def __init__(self, application: dealdesk_app.App):
        super().__init__(
            application.policy_set,
            application.plugins,
            application.renderer,
            clauses=application.clauses,
            driver=_NoEngine(),  # type: ignore[arg-type]
        )

    def run_policy(self, policy: Policy, data: Mapping[str, Any]) -> PolicyRun:
        run = PolicyRun(policy)
        applicable = policy.applicable(lookup(data, "dates.close"))
        for stratum in sorted({rule.stratum for rule in policy.rules}):
            view = {**data, "outputs": run.outputs()}
            matched = sorted(
                (
                    rule
                    for rule in policy.rules
                    if rule.stratum == stratum
                    and rule.ruleset.name in applicable
                    and evaluate(rule.condition, view) is True
                ),
                key=lambda r: (-r.priority, r.order),
            )
            for rule, extra in self.select_rows(matched, view, run):
                firing = Firing(rule)
                self.apply(rule, firing, view, run, extra)
                run.firings.append(firing)
        return run


def reference_of(application: dealdesk_app.App) -> dealdesk_app.App:
    """A copy of ``application`` (same plugins, policy set, options) evaluating as the REFERENCE."""
    reference = copy.copy(application)
    reference.evaluator = ReferenceEvaluator(application)  # type: ignore[misc]
    return reference


def reference_app(rulesets: Sequence[str | Path] | None = None, **options: Any) -> dealdesk_app.App:
    """``app.build`` (default engine, never asked) with the REFERENCE evaluator."""
    return reference_of(dealdesk_app.build(list(rulesets) if rulesets else None, **options))


# app.build looks up the version of every plugin registered by module name (the conformance
# plugin) with importlib.metadata.packages_distributions(), a scan of every installed
# distribution: 0.3 s per build. Generated rulesets build hundreds of apps; the answer does not
# change within a run, so those builds share one scan.
_packages_distributions = functools.cache(importlib.metadata.packages_distributions)


def generated_app(engine: str, rulesets: Sequence[str | Path], **options: Any) -> dealdesk_app.App:
    """:func:`app_on` for generated rulesets, with the conformance plugin (``-p``) loaded."""
    with mock.patch.object(importlib.metadata, "packages_distributions", _packages_distributions):
        return app_on(engine, rulesets, autoload=False, enabled=["conformance_plugin"], **options)


def app_on(
    engine: str, rulesets: Sequence[str | Path] | None = None, **options: Any
) -> dealdesk_app.App:
    """:func:`build_app` on ``engine``, or :func:`reference_app` for ``"reference"``."""
    if engine == REFERENCE:
        return reference_app(rulesets, **options)
    return build_app(rulesets, engine=engine, **options)


# ---------------------------------------------------------------------------------------------
# Comparing records


def record_text(record: Mapping[str, Any]) -> str:
    """The record as compared: key order kept, strict JSON (a Decimal or NaN fails here)."""
    return json.dumps(record, sort_keys=False, ensure_ascii=False, allow_nan=False)


def jsonl_text(application: dealdesk_app.App, records: Iterable[Mapping[str, Any]]) -> str:
    """``records`` written by the app's own ``jsonl`` writer, as ``dealdesk evaluate`` writes them."""
    out = io.StringIO()
    application.writers["jsonl"](records, out)
    return out.getvalue()


def _shown(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, default=str)


def assert_identical(
    got: Sequence[Mapping[str, Any]],
    want: Sequence[Mapping[str, Any]],
    *,
    engine: str,
    deals: Sequence[Any] | None = None,
    context: str = "",
) -> None:
    """Every record of ``engine`` is byte-identical to the REFERENCE's, or a readable failure.

    :param deals: the raw deals, shown with the first difference.
    :param context: what was evaluated (a ruleset, a case), shown with the first difference.
    """
    assert len(got) == len(want), f"{engine}: {len(got)} records, REFERENCE {len(want)}"
    for index, (mine, theirs) in enumerate(zip(got, want, strict=True)):
        if record_text(mine) == record_text(theirs):
            continue
        diff = "\n".join(
            difflib.unified_diff(
                _shown(theirs).splitlines(),
                _shown(mine).splitlines(),
                "REFERENCE",
                engine,
                lineterm="",
            )
        )
        if not diff:  # same content, different key order or number spelling
            diff = f"REFERENCE {record_text(theirs)}\n{engine} {record_text(mine)}"
        parts = [f"record {index} differs between {engine} and the REFERENCE"]
        if context:
            parts.append(context)
        if deals is not None:
            parts.append(f"deal: {json.dumps(deals[index], ensure_ascii=False, default=str)}")
        parts.append(diff)
        raise AssertionError("\n".join(parts))
