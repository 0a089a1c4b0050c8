"""What the conformance suite needs besides its generators: the engines to run, a way to build an
app on one of them, the REFERENCE evaluator, and the byte-for-byte record comparison.

SPEC §9: every engine gives byte-identical records for the same deals, rulesets and plugins. The
suite checks each available engine against the REFERENCE: the same evaluator, except that a rule
matches when its condition's direct three-valued meaning (``dealdesk.rules.meaning.evaluate``,
SPEC §3) is true, instead of when an engine says so. Everything after matching (hit policies,
strata, combining, messages, the record) is the product's own code, so a difference between an
engine and the REFERENCE is a difference in which rules the engine matched.

The REFERENCE is an engine of its own (:class:`ReferenceEngine`) behind the same interface as
the product's engines, so everything after matching is shared.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.metadata
import importlib.util
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from dealdesk import app as dealdesk_app
from dealdesk import jsoncodec
from dealdesk.engines import available_engines
from dealdesk.engines.base import Engine
from dealdesk.evaluate import evaluation_order
from dealdesk.pipeline import Pipeline
from dealdesk.rules.meaning import evaluate
from dealdesk.rules.policyset import CompiledRule, Policy

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


#: The engines that import here; each conformance test runs once per engine.
ENGINES: list[str] = available_engines()


def build_app(
    rulesets: Sequence[str | Path] | None = None, *, engine: str, **options: Any
) -> dealdesk_app.App:
    """``app.build`` on ``engine`` (``-r`` semantics for ``rulesets``)."""
    return dealdesk_app.build(list(rulesets) if rulesets else None, engine=engine, **options)


def engine_args(engine: str) -> list[str]:
    """The ``dealdesk evaluate`` arguments that choose ``engine``."""
    return ["--engine", engine]


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
KNOWN_RECORD_ERRORS: dict[str, dict[str, str]] = {"durable": {}}


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


class ReferenceEngine(Engine):
    """Matching by the direct meaning of each condition (``evaluate``), SPEC §3."""

    name = REFERENCE

    def match(self, policy: Policy, stratum: int, view: Mapping[str, Any]) -> list[CompiledRule]:
        rules = policy.strata[stratum].rules
        matched = [rule for rule in rules if evaluate(rule.condition, view) is True]
        return sorted(matched, key=evaluation_order)


def reference_of(application: dealdesk_app.App) -> dealdesk_app.App:
    """A copy of ``application`` (same plugins, policy set, options) evaluating as the REFERENCE."""
    reference = copy.copy(application)
    engine = ReferenceEngine(application.policy_set, application.plugins.actions)
    reference.pipeline = Pipeline(  # type: ignore[misc]
        application.policy_set,
        application.plugins,
        application.renderer,
        engine,
        clauses=application.clauses,
    )
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


def batch_records(application: dealdesk_app.App, deals: Sequence[Any]) -> list[dict[str, Any]]:
    """The records of ``deals`` decided as one chunk the way a batch decides them (with the
    engine's group templates, if it has them: records already encoded), twice over, so that the
    second time every group has its template; each record as it is written, read back."""
    chunk = [copy.deepcopy(d) for d in [*deals, *deals]]
    return [
        json.loads(text) if text is not None else json.loads(jsoncodec.dumps(record))
        for record, text in application.pipeline.decide_encoded(chunk, jsoncodec.dumps)
    ]


def line_records(application: dealdesk_app.App, lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """The records of JSONL ``lines`` as ``dealdesk evaluate --workers 0`` makes them: unparsed
    lines handed over in chunks (an engine that reads them as columns itself does), records
    encoded; each read back."""
    from dealdesk.io.executor import InProcess
    from dealdesk.io.readers import SourceDeal

    sources = [SourceDeal(f"book.jsonl:{n + 1}", None, text=line) for n, line in enumerate(lines)]
    done = InProcess(application, encode=jsoncodec.dumps).run(sources)
    return [json.loads(d.text) for d in done if d.text is not None]


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
